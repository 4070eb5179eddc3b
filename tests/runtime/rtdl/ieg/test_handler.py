"""IEG's handler under the stream-handler contract, and its Postgres store's merge and queries."""

from __future__ import annotations

from typing import Any

from runtime.rtdl.ieg import store
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ieg.handler import INPUT_CLASSES, IegHandler, build
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.rtdl.envelopes import SECOND, T0, anchor, arrival, arrival_entity, engine_run, traffic
from tests.runtime.rtdl.feeding import feed, order_key, section_state, topic_of, with_run
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv
from tests.support.events import random_run_id


class TestIegHandlerContract(StreamHandlerContract):
    """Every record of every class merges into the graph once; a bad payload is dead-lettered."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return IegHandler(env.platform_run_id, [topic_of(c) for c in INPUT_CLASSES])

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        picked: dict[str, list[dict[str, Any]]] = {}
        for event_class, e in engine_run():
            picked.setdefault(event_class, []).append(e)
        return [(topic_of(c), e["event_id"][:4], with_run(e, env.platform_run_id)) for c, items in sorted(picked.items())
                for e in items[:12]]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        bad = with_run(arrival_entity(5, "planet", "mars"), env.platform_run_id)
        return (topic_of("context_arrival_entities"), "arr_1", bad)

    def state(self, env: WorkerEnv) -> Any:
        return section_state(env.db, env.platform_run_id, "ieg")

    def test_reconciliation_explains_every_record_and_counts_the_dead_lettered_one(self, env: WorkerEnv) -> None:
        good = self.inputs(env)
        self.publish(env, [*good[:3], self.poison(env), *good[3:]])
        self.drain(env)
        with env.db.connection() as conn:
            doc = store.reconciliation(conn, env.platform_run_id)
        assert doc["status"] == "PASS" and doc["records_in"] == len(good) and doc["records_rejected"] == 1
        assert set(doc["per_class"]) == set(INPUT_CLASSES) - {"traffic_baseline", "context_flow_anchor_baseline"}


def test_first_and_last_seen_merge_across_batches_whatever_their_order(db):
    run = random_run_id()
    events = [traffic(s) for s in (30, 10, 20)]
    feed(db, run, [("traffic_fraud", e) for e in [events[0], events[2], events[1], events[0]]], batch=1)
    memory = IegState()
    for e in events:
        memory.apply(e)
    with db.connection() as conn:
        assert sorted(map(str, store.state_rows(conn, run))) == sorted(map(str, memory.canonical_rows()))
        assert store.first_seen(conn, run, "card", "crd_1") == order_key(events[1])
        assert store.first_seen(conn, run, "card", "crd_unknown") is None


def test_queries_as_of_an_event_see_only_edges_first_seen_strictly_before_it(db):
    run = random_run_id()
    first = traffic(10, customer="cus_1", device="dev_x")
    second = traffic(20, customer="cus_2", device="dev_x", account="acc_2", card="crd_2")
    feed(db, run, [("traffic_fraud", second), ("traffic_fraud", first), ("context_arrival_events", arrival(5, device="dev_home")),
                   ("context_flow_anchor_fraud", anchor(7, card="crd_9", device="dev_x")),
                   ("context_arrival_entities", arrival_entity(6, "device", "dev_x"))], batch=2)
    with db.connection() as conn:
        assert store.customers_of_device(conn, run, "dev_x", as_of=order_key(second)) == ["cus_1"]
        assert store.customers_of_device(conn, run, "dev_x", as_of=order_key(first)) == ["cus_1"]  # the anchor at 7 s
        assert store.customers_of_device(conn, run, "dev_x", as_of=(T0 + 7 * SECOND, "0" * 32)) == []
        assert store.customers_of_device(conn, run, "dev_x") == ["cus_1", "cus_2"]
        assert store.devices_of_customer(conn, run, "cus_1") == ["dev_home", "dev_x"]
        assert store.cards_of_device(conn, run, "dev_x") == ["crd_1", "crd_2", "crd_9"]
        assert store.neighbours(conn, run, "device", "dev_x", "seen_at", "arrival") == ["arr_1"]


def test_distinct_senders_per_p2p_collector_from_postgres(db):
    run = random_run_id()
    events = [traffic(i, channel="p2p", account=f"acc_{i}", customer=f"cus_{i}", card=f"crd_{i}", merchant="mer_mule")
              for i in range(3)]
    events.append(traffic(9, channel="web", account="acc_9", customer="cus_9", card="crd_9", merchant="mer_mule"))
    feed(db, run, [("traffic_fraud", e) for e in events])
    with db.connection() as conn:
        assert store.senders_of_collector(conn, run, "mer_mule") == ["acc_0", "acc_1", "acc_2"]
        assert store.senders_of_collector(conn, run, "mer_mule", as_of=order_key(events[2])) == ["acc_0", "acc_1"]


def test_build_reads_traffic_arrivals_arrival_entities_and_anchors_from_the_registry():
    settings = load_settings({})
    handler = build(settings, "platform_20260105T000000Z")
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")
    assert handler.component == "ieg"
    assert sorted(handler.input_topics()) == sorted(settings.registry.topic(spec["topic"]).name for spec in class_map.values())


def test_the_digest_rows_stream_through_a_server_side_cursor_a_batch_at_a_time(db, monkeypatch):
    run = random_run_id()
    feed(db, run, [("traffic_fraud", traffic(s)) for s in range(1, 6)], batch=5)
    monkeypatch.setattr(store, "STATE_ROWS_BATCH", 2)
    with db.connection() as conn:
        rows = store.state_rows(conn, run)
        first = next(rows)
        open_cursors = conn.execute("SELECT count(*) FROM pg_cursors WHERE NOT is_holdable").fetchone()[0]
        rest = list(rows)
    assert open_cursors == 1  # the rows come from a cursor on the server, not a result held whole in the client
    assert sorted(map(str, [first, *rest])) == sorted(map(str, _memory_rows([traffic(s) for s in range(1, 6)])))


def _memory_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    memory = IegState()
    for e in events:
        memory.apply(e)
    return list(memory.canonical_rows())
