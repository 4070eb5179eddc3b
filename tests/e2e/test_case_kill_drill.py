"""Kill drill of the case and labels plane (issue 14 acceptance).

P1..P8 on the Kafka spine, then the decision lane and the case_labels pack over the run; label
assertions for admitted events arrive on the label topic. While the lane produces decisions, every
case_labels worker (CaseTrigger, CM, LS) is SIGKILLed at random moments (only our own pack's
children, by pid) and its pack restarts it. Afterwards P10 must pass with no dead letters, one case
per triggered subject, no duplicated timeline event or label, and the case and label digests of an
uninterrupted run: the pure domain over the same decisions (read back from the rtdl topic) and the
same assertions. Sizes: FP_DRILL_CASE_KILLS kills per worker (default 2; `make drills`: 20) and
FP_DRILL_CASE_GATE events per output (default 100; `make drills`: 5000, i.e. 20k events).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controller.phases.base import execute
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from runtime.bus.port import OutboundRecord
from runtime.case.cm.store import run_events
from runtime.case.digest import case_digest, label_digest
from runtime.case.figures import case_labels_state
from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import LabelAssertion, assertion
from runtime.case.ls.handler import LABEL_ASSERTION
from runtime.case.ls.store import run_assertions
from runtime.components import consumer_group_id
from runtime.contracts.canonical import canonical_json
from runtime.db.postgres import connect
from runtime.decision.lane import lane_envelope
from tests.runtime.case.lane import domain_case_events
from tests.support.drills import Killer
from tests.support.kafka_bus import RealKafkaPublisher, read_all
from tests.support.spine import LANE, spine_at_p8, spine_down, wait_for_lane

KILLS = int(os.environ.get("FP_DRILL_CASE_KILLS", "2"))
GATE = int(os.environ.get("FP_DRILL_CASE_GATE", "100"))
PACK = "case_labels"
LABELS = 200
WAIT_S = 600.0


def _labels(dsn: str, run_id: str) -> list[LabelAssertion]:
    """Disputes for (up to) LABELS admitted events of the run, as an outside label source sends them."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT event_id FROM ig_admissions WHERE platform_run_id = %s AND state = 'ADMITTED'"
                            " ORDER BY event_id LIMIT %s", (run_id, LABELS)).fetchall()
    return [assertion(LabelSubjectKey(run_id, str(r[0]), "fraud"), source="dispute", value="disputed",
                      observed_at=f"2027-01-{1 + i % 28:02d}T10:00:00Z", effective_at="2026-01-01T00:00:00Z")
            for i, r in enumerate(rows)]


def _publish_labels(bootstrap: str, topic: str, run_id: str, labels: list[LabelAssertion]) -> None:
    publisher = RealKafkaPublisher(bootstrap)
    try:
        publisher.publish([OutboundRecord(topic, a.subject.event_id, canonical_json(lane_envelope(
            LABEL_ASSERTION, a.assertion_id, a.row(), platform_run_id=run_id, scenario_run_id=None, ts_utc=a.observed_at_utc,
            producer="drill"))) for a in labels])
    finally:
        publisher.close()


class Flowing:
    """Sets `event` once CaseTrigger made a position durable: decisions reach the plane, the killer may start."""

    def __init__(self, dsn: str, group: str):
        self.dsn, self.group, self.event = dsn, group, threading.Event()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.event.is_set():
            with connect(self.dsn) as conn:
                if conn.execute("SELECT 1 FROM worker_positions WHERE consumer_group = %s", (self.group,)).fetchone():
                    self.event.set()
            stop.wait(0.2)


@pytest.mark.slow
def test_sigkilled_case_workers_leave_one_case_per_subject_and_the_digests_of_an_uninterrupted_run(
        spine_workdir: Path) -> None:
    spine = spine_at_p8("kafka", GATE)
    registry, run_id = spine.registry, spine.run_id
    bootstrap = str(spine.settings.kafka_bootstrap)
    labels = _labels(spine.dsn, run_id)
    stop = threading.Event()
    flowing = Flowing(spine.dsn, consumer_group_id(registry, "case_trigger", run_id))
    killer = Killer(spine.folders.root, registry, PACK, run_id, flowing.event, victims=registry.mapping("PACKS")[PACK],
                    kills=KILLS)
    threads = [threading.Thread(target=t.run, args=(stop,)) for t in (flowing, killer)]
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        assert spine.backend.start_pack(PACK, run_id).running
        _publish_labels(bootstrap, registry.topic("FP_BUS_LABELS_EVENTS_V1").name, run_id, labels)
        deadline = time.monotonic() + WAIT_S
        wait_for_lane(spine, WAIT_S)
        while threads[1].is_alive() and time.monotonic() < deadline:
            time.sleep(0.5)  # the lane settled first: the remaining kills land while the plane catches up
        stop.set()
        for t in threads:
            t.join()
        record = execute(CaseLabelsCommitted(), spine.context(bus="kafka", gate=GATE))
        decisions = [r for r in (_envelope(rec.value) for rec in read_all(bootstrap, [registry.topic("FP_BUS_RTDL_V1").name]))
                     if r.get("event_class") == "decision_response" and r.get("platform_run_id") == run_id]
        with connect(spine.dsn) as conn:
            state = case_labels_state(conn, run_id)
            events = run_events(conn, run_id)
            stored = run_assertions(conn, run_id)
    finally:
        stop.set()
        spine_down(spine, (PACK, LANE))
    print(f"case drill: gate {GATE}, kills {dict(killer.kills)}, {len(decisions)} decisions, "
          f"{state.triggers.triggers_published} triggers, {len(labels)} labels, {time.monotonic() - t0:.0f}s")
    assert record["state"] == "PASS", record
    assert all(killer.kills[c] >= KILLS for c in killer.components), killer.kills
    expected, cases = domain_case_events(decisions)
    assert cases > 0 and state.every_trigger_has_its_case
    assert state.dead_letters == {"case_trigger": 0, "cm": 0, "ls": 0}
    assert state.case_summary["counts"]["cases"] == state.triggers.triggers_published == cases  # one case per subject
    assert len({e.timeline_event_id for e in events}) == len(events) == len(expected)  # nothing duplicated
    assert state.case_summary["case_digest"] == case_digest(expected)
    mine = {a.assertion_id for a in labels}
    held = [a for a in stored if a.assertion_id in mine]
    assert len(held) == len(labels) and len({a.assertion_id for a in stored}) == len(stored)
    assert label_digest(held) == label_digest(labels)


def _envelope(value: bytes) -> dict[str, Any]:
    import json

    doc = json.loads(value)
    return doc if isinstance(doc, dict) else {}
