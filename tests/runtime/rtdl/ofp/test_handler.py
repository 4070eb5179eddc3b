"""OFP's handler under the stream-handler contract, and its Postgres store's point-in-time read."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from runtime.rtdl import store as progress
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.rtdl.ofp import store
from runtime.rtdl.ofp.domain import HORIZON_MICROS, OfpState
from runtime.rtdl.ofp.handler import OfpHandler, build
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.rtdl.envelopes import SECOND, T0, engine_run, traffic
from tests.runtime.rtdl.feeding import feed, order_key, section_state, topic_of, with_run
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv
from tests.support.events import random_run_id

TOPICS = [topic_of(c) for c in TRAFFIC_CLASSES]


class TestOfpHandlerContract(StreamHandlerContract):
    """Every traffic record becomes its facts once; a bad payload is dead-lettered."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return OfpHandler(env.platform_run_id, TOPICS)

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        traffic_records = [e for c, e in engine_run() if c in TRAFFIC_CLASSES][:40]
        return [(TOPICS[0], e["payload"]["card_id"], with_run(e, env.platform_run_id)) for e in traffic_records]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        bad = with_run(traffic(5, amount=1.0), env.platform_run_id)
        bad["payload"] = {**bad["payload"], "amount": "a lot"}
        return (TOPICS[0], "crd_1", bad)

    def state(self, env: WorkerEnv) -> Any:
        return section_state(env.db, env.platform_run_id, "ofp")


def test_features_count_only_facts_strictly_before_the_event_in_ts_then_event_id_order(db):
    run = random_run_id()
    a, b = sorted([traffic(10, amount=1.0), traffic(10, amount=2.0)], key=lambda e: e["event_id"])
    events = [traffic(0, amount=5.0, merchant="mer_a"), b, a, traffic(3600, amount=99.0, merchant="mer_d")]
    feed(db, run, [("traffic_fraud", e) for e in events], batch=2)
    with db.connection() as conn:
        first = store.features_as_of(conn, run, "card", "crd_1", T0 + 10 * SECOND, a["event_id"])
        second = store.features_as_of(conn, run, "card", "crd_1", T0 + 10 * SECOND, b["event_id"])
        last = store.event_features(conn, run, events[-1])["card"]
    assert first.windows["1m"].count == 1 and second.windows["1m"].count == 2 and second.seconds_since_previous == 0.0
    assert last.windows["1h"].count == 2 and last.windows["24h"].count == 3 and last.first_seen_merchant is True
    assert last.amount_to_baseline_ratio == round(9900 * 3 / 800, 6)


def test_a_redelivered_event_writes_nothing_and_counts_a_duplicate(db):
    run = random_run_id()
    env = traffic(1)
    feed(db, run, [("traffic_fraud", env)])
    with db.connection() as conn:
        before = list(store.state_rows(conn, run))
    feed(db, run, [("traffic_fraud", env), ("traffic_fraud", env)])
    with db.connection() as conn:
        assert list(store.state_rows(conn, run)) == before and len(before) == 5
        assert progress.counter_totals(conn, run, "ofp") == {"duplicates": 2, "events_applied": 1, "facts_written": 5}


def test_facts_past_the_horizon_are_evicted_and_left_out_of_the_digest_like_in_memory(db):
    run = random_run_id()
    events = [traffic(0, amount=1.0), traffic(3600, amount=2.0), traffic(3 * 86_400, amount=3.0)]
    handler = OfpHandler(run, TOPICS)
    feed(db, run, [("traffic_fraud", e) for e in events[:2]], components=[handler])
    memory = OfpState()
    for e in events:
        memory.apply(e)
    feed(db, run, [("traffic_fraud", events[2])], components=[handler])
    with db.connection() as conn:
        rows = list(store.state_rows(conn, run))
        held = conn.execute("SELECT count(*) FROM rtdl_ofp_facts WHERE platform_run_id = %s", (run,)).fetchone()
        index = conn.execute("SELECT (SELECT count(*) FROM rtdl_ofp_chain WHERE platform_run_id = %(r)s),"
                             " (SELECT count(*) FROM rtdl_ofp_blocks WHERE platform_run_id = %(r)s)", {"r": run}).fetchone()
    assert rows == list(memory.canonical_rows()) and len(rows) == 5
    assert held == (5,)  # the first two events' facts are gone: 3 days later they are past 24 h + grace
    assert index == (1, 1)  # and so are the merchant's chain and block rows
    assert handler.counters()["facts_evicted"] == 10


def test_build_reads_both_traffic_topics_of_the_registry():
    settings = load_settings({})
    handler = build(settings, "platform_20260105T000000Z")
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")
    assert handler.component == "ofp"
    assert handler.input_topics() == [settings.registry.topic(class_map[c]["topic"]).name for c in TRAFFIC_CLASSES]


def test_features_of_a_busy_merchant_from_postgres_equal_the_domain_and_report_latency(db, capsys):
    """A merchant with 5000 facts over 25 h (the window holds up to ~4.8k): the store's answer is the
    domain's; p50/p99 of one `features_as_of` call (read + domain) are printed for the report."""
    rng = random.Random(5)
    run = random_run_id()
    events = [traffic(rng.uniform(0, 25 * 3600), card=f"crd_{rng.randrange(400)}", amount=round(rng.uniform(1, 900), 2),
                      merchant="mer_busy", device=f"dev_{rng.randrange(300)}", country=rng.choice(["GB", "DE", "FR"]))
              for _ in range(5000)]
    feed(db, run, [("traffic_fraud", e) for e in events], batch=500)
    memory = OfpState()
    for e in events:
        memory.apply(e)
    asked = rng.sample(events, 300)
    took = []
    with db.connection() as conn:
        for env in asked:
            ts, eid = order_key(env)
            t0 = time.perf_counter()
            got = store.features_as_of(conn, run, "merchant", "mer_busy", ts, eid)
            took.append(time.perf_counter() - t0)
            assert got == memory.features_as_of("merchant", "mer_busy", ts, eid)
    took.sort()
    p50, p99 = statistics.median(took) * 1000, took[int(len(took) * 0.99) - 1] * 1000
    with capsys.disabled():
        print(f"\nOFP features_as_of from Postgres, busy merchant (5000 facts / 25 h): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    assert max(order_key(e)[0] for e in events) - min(order_key(e)[0] for e in events) > HORIZON_MICROS


def _bounded_rows(db, run: str) -> tuple[list[Any], list[Any]]:
    with db.connection() as conn:
        chain = conn.execute("SELECT entity_kind, entity_id, ts_micros, event_id, country_prev_ts,"
                             " country_next_ts, device_prev_ts, device_next_ts FROM rtdl_ofp_chain WHERE platform_run_id = %s"
                             " ORDER BY 1, 2, 3, 4", (run,)).fetchall()
        blocks = conn.execute("SELECT entity_kind, entity_id, block, fact_count, amount_sum, amount_max, p2p_count, round_count,"
                              " country_firsts, device_firsts FROM rtdl_ofp_blocks WHERE platform_run_id = %s"
                              " ORDER BY 1, 2, 3", (run,)).fetchall()
    return chain, blocks


def test_a_shuffled_insert_with_late_events_in_aggregated_blocks_gives_the_domain_features_and_the_same_block_rows(db):
    """One run fed in time order, one shuffled in small batches with redeliveries (late events land
    in blocks already aggregated, between facts already linked): the bounded read of the merchant
    equals the domain function for every event, and both runs hold identical chain and block rows
    (24.9 h of events: nothing is evicted, so the whole tables compare)."""
    rng = random.Random(23)
    events = [traffic(rng.uniform(0, 24.9 * 3600), card=f"crd_{rng.randrange(50)}", amount=round(rng.uniform(1, 900), 2),
                      merchant="mer_busy", device=f"dev_{rng.randrange(60 if i % 2 else 3)}", country=rng.choice(["GB", "DE", "FR"]),
                      channel=rng.choice(["web", "p2p"]))
              for i in range(700)]
    events += [traffic((order_key(e)[0] - T0) / SECOND, amount=7.0, merchant="mer_busy", device=e["payload"]["device_id"],
                       country="GB") for e in events[:40]]  # the same instants: ordered by event id
    in_order, shuffled = random_run_id(), random_run_id()
    feed(db, in_order, [("traffic_fraud", e) for e in sorted(events, key=order_key)], batch=300)
    late = events[:]
    rng.shuffle(late)
    feed(db, shuffled, [("traffic_fraud", e) for e in late + late[:30]], batch=37)
    memory = OfpState()
    for e in events:
        memory.apply(e)
    with db.connection() as conn:
        for env in events:
            ts, eid = order_key(env)
            want = memory.features_as_of("merchant", "mer_busy", ts, eid)
            assert store.features_as_of(conn, shuffled, "merchant", "mer_busy", ts, eid) == want
    assert _bounded_rows(db, shuffled) == _bounded_rows(db, in_order)
    assert len(_bounded_rows(db, shuffled)[1]) > 100
