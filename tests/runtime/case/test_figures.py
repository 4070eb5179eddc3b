"""The plane end to end on the stream worker: decisions and DLA's audit records -> CaseTrigger -> the case
topic -> CM; P10's durable figures; replays append nothing; the digests are the same on the other bus."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord
from runtime.case.cm import commands
from runtime.case.cm.handler import CaseManagementHandler
from runtime.case.cm.store import run_events
from runtime.case.figures import case_labels_state
from runtime.case.ls.store import run_assertions
from runtime.case.summaries import case_summary_body, label_summary_body
from runtime.case.trigger.handler import CaseTriggerHandler
from runtime.contracts.canonical import canonical_json
from runtime.contracts.schemas import compiled_validator
from runtime.db.postgres import Database
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore
from tests.runtime.case.lane import AUDIT_TOPIC, CASE_TOPIC, RTDL_TOPIC, admit, audit_envelope, decisions
from tests.support.events import random_run_id

#: What P10's job adds to the summary bodies (health, the join, dead letters, groups).
_GATE_FIELDS = {"health", "health_by_component", "trigger_join", "cases_missing", "triggers_unattached", "dead_letters",
                "consumer_groups"}
DECISIONS = 48  # half REVIEW/DECLINE: 24 cases


def _drain(broker: MemoryBroker, db: Database, handler: StreamHandler, run: str, group: str) -> StreamWorker:
    consumer = broker.consumer(handler.input_topics(), group, run)
    worker = StreamWorker(handler, consumer, broker.publisher(), db.transaction, WorkerStore(group, handler.component, run),
                          admin=broker.admin(), health=None, health_base=lambda: {},
                          config=WorkerConfig(batch_size=20, poll_timeout_s=0.01, backoff_initial_s=0.0), sleep=lambda s: None)
    worker.run(threading.Event(), idle_exit_after=2)
    consumer.close()
    return worker


def _other_bus(decision: dict[str, Any], n: int) -> dict[str, Any]:
    """The same decision as it reads when the traffic came through Kinesis: other eb_ref, other IG receipt."""
    moved = copy.deepcopy(decision)
    moved["payload"]["provenance"]["eb_ref"] = {"offset_kind": "kinesis_sequence", "topic": "fp.bus.traffic.fraud.v1",
                                                "partition": "shardId-000000000000", "offset": f"4965{n:040d}"}
    moved["payload"]["provenance"]["receipt_id"] = f"{n:032x}"
    return moved


class Pipeline:
    """One bus and one database running CaseTrigger then CM for a run."""

    def __init__(self, db: Database, run: str, *, other_bus: bool = False):
        self.db, self.run, self.broker = db, run, MemoryBroker()
        self.tag = uuid.uuid4().hex[:12]  # consumer groups of their own: positions live in the shared database
        for topic in (RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC):
            self.broker.admin().ensure_topic(topic, 1, 24)
        self.decisions = decisions(run, DECISIONS)
        if other_bus:
            self.decisions = [_other_bus(d, n) for n, d in enumerate(self.decisions)]
        records = []
        for d in self.decisions:
            records.append(OutboundRecord(RTDL_TOPIC, d["event_id"], canonical_json(d)))
            records.append(OutboundRecord(AUDIT_TOPIC, d["event_id"], canonical_json(audit_envelope(run, d))))
        self.broker.publisher().publish(records)
        with db.transaction() as conn:
            admit(conn, run, sorted({d["payload"]["event_id"] for d in self.decisions}))

    def run_workers(self, suffix: str = "") -> tuple[StreamWorker, StreamWorker]:
        trigger = _drain(self.broker, self.db, CaseTriggerHandler(RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC, self.run), self.run,
                         f"fp-case-trigger-{self.tag}{suffix}")
        cm = _drain(self.broker, self.db, CaseManagementHandler(CASE_TOPIC, self.run), self.run, f"fp-cm-{self.tag}{suffix}")
        return trigger, cm

    def close_first_case(self) -> None:
        with self.db.transaction() as conn:
            case_id = min(e.case_id for e in run_events(conn, self.run))
            commands.start_investigation(conn, self.run, case_id, actor="ana", at="2026-02-01T10:00:00Z")
            commands.close(conn, self.run, case_id, actor="ana", outcome="confirmed_fraud", at="2026-02-01T11:00:00Z")


@pytest.fixture
def pipeline(runtime_dsn: str) -> Iterator[Pipeline]:
    with Database(runtime_dsn, name="case-pipeline", max_size=2) as db:
        yield Pipeline(db, random_run_id())


def test_every_triggered_subject_has_one_case_and_the_figures_match_the_domain(pipeline: Pipeline) -> None:
    pipeline.run_workers()
    pipeline.close_first_case()
    with pipeline.db.transaction() as conn:
        state = case_labels_state(conn, pipeline.run)
        events = run_events(conn, pipeline.run)
        assertions = run_assertions(conn, pipeline.run)
    needing = [d for d in pipeline.decisions if d["payload"]["outcome"] in ("REVIEW", "DECLINE")]
    assert state.every_trigger_has_its_case and state.triggers.triggers_published == len(needing) == 24
    assert state.dead_letters == {"case_trigger": 0, "cm": 0, "ls": 0}
    assert state.case_summary == case_summary_body(events, triggers_published=24)
    assert state.case_summary["counts"]["cases"] == 24 and state.case_summary["counts"]["triggers_processed"] == 24
    assert state.case_summary["cases_by_status"] == {"open": 23, "investigating": 0, "closed": 1}
    assert state.label_summary == label_summary_body(assertions)
    assert state.label_summary["assertions_by_source"]["case_closure"] == 1
    # the bodies validate inside the whole P10 files: tests/runtime/case/test_committed.py
    for name, body in (("case_summary", state.case_summary), ("label_summary", state.label_summary)):
        schema = compiled_validator(f"evidence/{name}.schema.json").schema
        assert set(body) <= set(schema["properties"]) and set(schema["required"]) - set(body) <= _GATE_FIELDS


def test_replaying_the_rtdl_and_case_topics_under_new_groups_appends_nothing(pipeline: Pipeline) -> None:
    pipeline.run_workers()
    with pipeline.db.transaction() as conn:
        before = case_labels_state(conn, pipeline.run)
    published = len(pipeline.broker.records(CASE_TOPIC))
    trigger, cm = pipeline.run_workers(suffix="-replay")
    assert trigger.counters.applied == 2 * DECISIONS and cm.counters.applied == published
    assert trigger.counters.outputs_added == 0 and cm.handler.counters()["cm_events_appended"] == 0
    assert len(pipeline.broker.records(CASE_TOPIC)) == published
    with pipeline.db.transaction() as conn:
        assert case_labels_state(conn, pipeline.run) == before


def test_the_case_and_label_digests_are_the_same_on_the_other_bus(runtime_dsn: str, scratch_dsn: str) -> None:
    run = random_run_id()
    digests = []
    for dsn, other_bus in ((runtime_dsn, False), (scratch_dsn, True)):
        with Database(dsn, name="case-bus", max_size=2) as db:
            pipeline = Pipeline(db, run, other_bus=other_bus)
            pipeline.run_workers()
            pipeline.close_first_case()
            with db.transaction() as conn:
                state = case_labels_state(conn, run)
                refs = {e.details["evidence_refs"]["receipt_id"] for e in run_events(conn, run) if e.kind == "evidence_attached"}
            digests.append((state.case_summary["case_digest"], state.label_summary["label_digest"], refs))
    (case_a, label_a, refs_a), (case_b, label_b, refs_b) = digests
    assert refs_a != refs_b  # the timelines hold each bus's own evidence references
    assert (case_a, label_a) == (case_b, label_b)
