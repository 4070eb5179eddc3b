"""Crash drill of the case plane (in process): CaseTrigger, CM and LS die at random points - inside the
transaction, after it committed but before the offsets, after publishing but before the outbox knew -
and restart as new processes of the same group. Every triggered subject ends with exactly one case,
no timeline event or label is duplicated, and the durable case and label digests equal what the
pure domain computes from the same decisions without any crash."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord, Publisher
from runtime.case.cm.handler import CaseManagementHandler
from runtime.case.cm.store import run_events
from runtime.case.digest import case_digest, label_digest
from runtime.case.figures import case_labels_state
from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import assertion
from runtime.case.ls.handler import LABEL_ASSERTION, LabelStoreHandler
from runtime.case.trigger.handler import CaseTriggerHandler
from runtime.contracts.canonical import canonical_json
from runtime.db.postgres import Database
from runtime.decision.lane import lane_envelope
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.records import InputRecord, OutputRecord
from runtime.worker.store import WorkerStore
from tests.runtime.case.lane import AUDIT_TOPIC, CASE_TOPIC, RTDL_TOPIC, admit, audit_envelope, decisions, domain_case_events
from tests.runtime.worker.contract import Crash, CrashOnCommit
from tests.support.events import random_run_id

LABEL_TOPIC = "fp.bus.labels.events.v1"
DECISIONS = 160
CRASH_RATE = 0.25


class Dice:
    """Seeded coin flips shared by the crash points (the drill is reproducible)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.crashes = 0

    def roll(self) -> bool:
        hit = self.rng.random() < CRASH_RATE
        self.crashes += hit
        return hit


class CrashingHandler(StreamHandler):
    """Dies inside the transaction, after the handler wrote, now and then."""

    def __init__(self, inner: StreamHandler, dice: Dice):
        self.inner, self.dice, self.component = inner, dice, inner.component

    def input_topics(self) -> list[str]:
        return self.inner.input_topics()

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        out = self.inner.apply(conn, records)
        if self.dice.roll():
            raise Crash("killed inside the transaction")
        return out


class CrashingPublisher(Publisher):
    """Publishes, then sometimes dies before the outbox records it: the rows are published again."""

    def __init__(self, inner: Publisher, dice: Dice):
        self.inner, self.dice = inner, dice

    def publish(self, records: list[OutboundRecord]) -> list[Any]:
        results = self.inner.publish(records)
        if self.dice.roll():
            raise Crash("killed after publishing, before marking the outbox")
        return results

    def close(self) -> None:
        self.inner.close()


def _run_until_idle(broker: MemoryBroker, db: Database, make: Any, run: str, group: str, dice: Dice) -> int:
    """Run a worker of `group`, restarting it after every crash, until it is idle; returns restarts."""
    restarts = 0
    while True:
        handler = make()
        inner = broker.consumer(handler.input_topics(), group, run)
        consumer = CrashOnCommit(inner) if dice.roll() else inner
        worker = StreamWorker(CrashingHandler(handler, dice), consumer, CrashingPublisher(broker.publisher(), dice),
                              db.transaction, WorkerStore(group, handler.component, run), admin=broker.admin(),
                              config=WorkerConfig(batch_size=9, poll_timeout_s=0.01, backoff_initial_s=0.0),
                              sleep=lambda s: None)
        try:
            worker.run(threading.Event(), idle_exit_after=3)
            inner.close()
            return restarts
        except Crash:
            inner.close()  # the process is gone, and its group membership with it
            restarts += 1
            assert restarts < 500, "the drill does not converge"


def test_random_crashes_leave_one_case_per_subject_and_the_digests_of_a_run_without_crashes(runtime_dsn: str) -> None:
    run, tag, dice = random_run_id(), uuid.uuid4().hex[:8], Dice(20261129)
    broker = MemoryBroker()
    for topic in (RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC, LABEL_TOPIC):
        broker.admin().ensure_topic(topic, 1, 24)
    lane = decisions(run, DECISIONS)
    records = []
    for d in lane:
        records.append(OutboundRecord(RTDL_TOPIC, d["event_id"], canonical_json(d)))
        records.append(OutboundRecord(AUDIT_TOPIC, d["event_id"], canonical_json(audit_envelope(run, d))))
    labels = []
    for i, d in enumerate(lane):
        a = assertion(LabelSubjectKey(run, d["payload"]["event_id"], "fraud"), source="dispute", value="disputed",
                      observed_at=f"2026-02-{1 + i % 28:02d}T10:00:00Z", effective_at=d["payload"]["event_ts_utc"])
        labels.append(a)
        records.append(OutboundRecord(LABEL_TOPIC, a.subject.event_id, canonical_json(lane_envelope(
            LABEL_ASSERTION, a.assertion_id, a.row(), platform_run_id=run, scenario_run_id=None, ts_utc=a.observed_at_utc,
            producer="drill"))))
    broker.publisher().publish(records)

    with Database(runtime_dsn, name="case-drill", max_size=2) as db:
        with db.transaction() as conn:
            admit(conn, run, sorted({d["payload"]["event_id"] for d in lane}))
        restarts = sum(_run_until_idle(broker, db, make, run, f"fp-{name}-{tag}", dice) for name, make in (
            ("case-trigger", lambda: CaseTriggerHandler(RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC, run)),
            ("cm", lambda: CaseManagementHandler(CASE_TOPIC, run)),
            ("ls", lambda: LabelStoreHandler(LABEL_TOPIC, run))))
        with db.transaction() as conn:
            state = case_labels_state(conn, run)
            events = run_events(conn, run)

    # the same decisions through the pure domain, once, without any crash
    expected, cases = domain_case_events(lane)

    print(f"drill: {restarts} restarts, {dice.crashes} crashes, {len(broker.records(CASE_TOPIC))} triggers on the bus")
    assert restarts >= 10 and dice.crashes >= 10
    published = len(broker.records(CASE_TOPIC))
    assert published > state.triggers.triggers_published == cases  # crashes after publishing re-published some
    assert state.every_trigger_has_its_case and state.dead_letters == {"case_trigger": 0, "cm": 0, "ls": 0}
    assert len({e.timeline_event_id for e in events}) == len(events) == len(expected)
    assert state.case_summary["counts"]["cases"] == cases
    assert state.case_summary["case_digest"] == case_digest(expected)
    assert state.label_summary["label_digest"] == label_digest(labels)
