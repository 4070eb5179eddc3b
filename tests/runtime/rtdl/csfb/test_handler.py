"""CSFB's handler under the stream-handler contract, and its Postgres store's binding and join readiness."""

from __future__ import annotations

import threading
from typing import Any

from runtime.rtdl import store as progress
from runtime.rtdl.csfb import store
from runtime.rtdl.csfb.domain import MISSING_ANCHOR, MISSING_ARRIVAL
from runtime.rtdl.csfb.handler import INPUT_CLASSES, CsfbHandler, build
from runtime.rtdl.digest import rows_digest
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.rtdl.envelopes import anchor, arrival, engine_run, traffic
from tests.runtime.rtdl.feeding import as_inputs, feed, section_state, topic_of, with_run
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv
from tests.support.events import random_run_id


class TestCsfbHandlerContract(StreamHandlerContract):
    """Anchors and arrivals are kept once, traffic joins are counted once; a bad payload is dead-lettered."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return CsfbHandler(env.platform_run_id, [topic_of(c) for c in INPUT_CLASSES])

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        picked: dict[str, list[dict[str, Any]]] = {}
        for event_class, e in engine_run():
            if event_class in INPUT_CLASSES:
                picked.setdefault(event_class, []).append(e)
        return [(topic_of(c), e["event_id"][:4], with_run(e, env.platform_run_id)) for c, items in sorted(picked.items())
                for e in items[:14]]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        bad = with_run(anchor(5), env.platform_run_id)
        bad["payload"] = {k: v for k, v in bad["payload"].items() if k != "session_id"}
        return (topic_of("context_flow_anchor_fraud"), "flw_1", bad)

    def state(self, env: WorkerEnv) -> Any:
        return section_state(env.db, env.platform_run_id, "csfb")


def test_the_earlier_anchor_of_a_flow_is_kept_in_either_order_and_across_batches(db):
    early, late = anchor(10, session="ses_early"), anchor(20, session="ses_late")
    runs = []
    for order in ([early, late], [late, early]):
        run = random_run_id()
        feed(db, run, [("context_flow_anchor_fraud", e) for e in order], batch=1)
        runs.append(run)
    with db.connection() as conn:
        for run in runs:
            binding = store.resolve_flow_binding(conn, run, "flw_1")
            assert binding is not None and binding.session_id == "ses_early"
            assert progress.counter_totals(conn, run, "csfb")["context_conflicts"] == 1
        assert rows_digest({"csfb": store.state_rows(conn, runs[0])}) == rows_digest({"csfb": store.state_rows(conn, runs[1])})
        assert store.resolve_flow_binding(conn, runs[0], "flw_unknown") is None


def test_a_miss_waits_for_its_context_and_becomes_a_late_join_when_it_arrives_in_a_later_batch(db):
    run = random_run_id()
    event = traffic(30)
    feed(db, run, [("traffic_fraud", event)])
    with db.connection() as conn:
        missed = store.join_readiness(conn, run, "flw_1", "ses_1", event["event_id"])
        assert missed.status == "MISSING_CONTEXT" and missed.missing == (MISSING_ANCHOR, MISSING_ARRIVAL)
        assert conn.execute("SELECT count(*) FROM rtdl_csfb_pending WHERE platform_run_id = %s", (run,)).fetchone() == (1,)
    feed(db, run, [("context_flow_anchor_fraud", anchor(5))])
    with db.connection() as conn:
        assert store.join_readiness(conn, run, "flw_1", "ses_1", event["event_id"]).missing == (MISSING_ARRIVAL,)
    feed(db, run, [("context_arrival_events", arrival(1))])
    with db.connection() as conn:
        joined = store.join_readiness(conn, run, "flw_1", "ses_1", event["event_id"])
        assert joined.status == "LATE_JOIN" and joined.frame() is not None
        assert conn.execute("SELECT count(*) FROM rtdl_csfb_pending WHERE platform_run_id = %s", (run,)).fetchone() == (0,)
        counts = progress.counter_totals(conn, run, "csfb")
    assert (counts["join_misses"], counts["late_joins"], counts.get("join_hits", 0)) == (1, 1, 0)


def test_a_traffic_event_with_its_context_already_there_is_ready(db):
    run = random_run_id()
    event = traffic(30)
    feed(db, run, [("context_arrival_events", arrival(1)), ("context_flow_anchor_fraud", anchor(5)), ("traffic_fraud", event)])
    with db.connection() as conn:
        ready = store.join_readiness(conn, run, "flw_1", event_id=event["event_id"])
        assert ready.status == "READY" and ready.binding is not None and ready.arrival is not None
        assert progress.counter_totals(conn, run, "csfb")["join_hits"] == 1


def test_build_reads_anchors_arrivals_and_traffic_from_the_registry():
    settings = load_settings({})
    handler = build(settings, "platform_20260105T000000Z")
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")
    assert handler.component == "csfb"
    assert handler.input_topics() == [settings.registry.topic(class_map[c]["topic"]).name for c in INPUT_CLASSES]


def test_two_members_sharing_a_flow_apply_one_after_the_other_so_no_pending_miss_is_lost(db):
    """Member A holds a traffic miss in an open transaction; member B's anchor and arrival for the
    same flow wait for A's commit and then turn the miss into a late join."""
    run = random_run_id()
    topics = [topic_of(c) for c in INPUT_CLASSES]
    event = traffic(30)
    missed, release = threading.Event(), threading.Event()

    def member_a() -> None:
        with db.transaction() as conn:
            CsfbHandler(run, topics).apply(conn, as_inputs([("traffic_fraud", event)]))
            missed.set()
            release.wait(10)

    a = threading.Thread(target=member_a)
    a.start()
    assert missed.wait(10)
    b = threading.Thread(target=feed, args=(db, run, [("context_flow_anchor_fraud", anchor(5)),
                                                      ("context_arrival_events", arrival(1))]),
                         kwargs={"components": [CsfbHandler(run, topics)]})
    b.start()
    b.join(0.5)
    assert b.is_alive()  # B waits on A's flow and session locks
    release.set()
    a.join(10)
    b.join(10)
    with db.connection() as conn:
        assert store.join_readiness(conn, run, "flw_1", "ses_1", event["event_id"]).status == "LATE_JOIN"
        assert progress.counter_totals(conn, run, "csfb")["late_joins"] == 1
