"""The Postgres stores of OFP, IEG and CSFB on a whole synthetic-engine run: the same digest and the
same point-in-time answers as the in-memory domains, whatever the order, batching or redelivery."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.db.postgres import Database
from runtime.rtdl import store as progress
from runtime.rtdl.csfb import store as csfb_store
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.digest import state_digest
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.rtdl.ieg import store as ieg_store
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ofp import store as ofp_store
from runtime.rtdl.ofp.domain import OfpState
from tests.runtime.rtdl.envelopes import engine_run
from tests.runtime.rtdl.feeding import as_inputs, feed, feed_memory, handlers, order_key
from tests.support.events import random_run_id

#: Traffic events whose answers are compared (every 7th: a spread over the day, quick to ask).
SAMPLE_STEP = 7


@pytest.fixture(scope="module")
def db(runtime_dsn: str) -> Iterator[Database]:
    database = Database(runtime_dsn, name="rtdl stores", max_size=2)
    yield database
    database.close()


@pytest.fixture(scope="module")
def memory() -> tuple[OfpState, IegState, CsfbState]:
    return feed_memory(list(engine_run()))


@pytest.fixture(scope="module")
def in_order(db: Database) -> str:
    run = random_run_id()
    feed(db, run, list(engine_run()))
    return run


def _sample() -> list[dict[str, Any]]:
    return [env for c, env in engine_run() if c in TRAFFIC_CLASSES][::SAMPLE_STEP]


def memory_answers(ofp: OfpState, ieg: IegState, csfb: CsfbState) -> list[Any]:
    out: list[Any] = []
    for env in _sample():
        p, at = env["payload"], order_key(env)
        out.append({k: f.canonical() for k, f in ofp.event_features(env).items()})
        out.append([ieg.customers_of_device(p["device_id"], as_of=at), ieg.cards_of_device(p["device_id"], as_of=at),
                    ieg.devices_of_customer(p["customer_id"], as_of=at), ieg.senders_of_collector(p["merchant_id"], as_of=at)])
        binding = csfb.resolve_flow_binding(p["flow_id"])
        out.append(None if binding is None else binding.canonical())
        out.append(csfb.join_readiness(p["flow_id"], p["session_id"]).status)
    return out


def store_answers(db: Database, run: str) -> list[Any]:
    out: list[Any] = []
    with db.connection() as conn:
        for env in _sample():
            p, at = env["payload"], order_key(env)
            out.append({k: f.canonical() for k, f in ofp_store.event_features(conn, run, env).items()})
            out.append([ieg_store.customers_of_device(conn, run, p["device_id"], as_of=at),
                        ieg_store.cards_of_device(conn, run, p["device_id"], as_of=at),
                        ieg_store.devices_of_customer(conn, run, p["customer_id"], as_of=at),
                        ieg_store.senders_of_collector(conn, run, p["merchant_id"], as_of=at)])
            binding = csfb_store.resolve_flow_binding(conn, run, p["flow_id"])
            out.append(None if binding is None else binding.canonical())
            out.append(csfb_store.join_readiness(conn, run, p["flow_id"], p["session_id"]).status)
    return out


def digest_of(db: Database, run: str) -> str:
    with db.connection() as conn:
        return progress.state_digest(conn, run)


def test_the_postgres_digest_equals_the_in_memory_digest_of_the_same_engine_run(db, memory, in_order):
    assert digest_of(db, in_order) == state_digest(*memory)
    with db.connection() as conn:
        assert len(list(ofp_store.state_rows(conn, in_order))) == len(list(memory[0].canonical_rows())) > 1000


def test_point_in_time_answers_from_postgres_equal_the_in_memory_answers(db, memory, in_order):
    answers = store_answers(db, in_order)
    assert answers == memory_answers(*memory)
    assert any(isinstance(a, dict) and "merchant" in a and a["merchant"]["windows"]["24h"]["count"] > 0 for a in answers)
    assert any(isinstance(a, list) and len(a[3]) > 1 for a in answers)  # a collector with several senders


@pytest.mark.parametrize("seed", [1, 2])
def test_a_shuffled_redelivered_stream_in_other_batches_gives_the_same_digest_and_answers(db, memory, in_order, seed):
    rng = random.Random(seed)
    records = list(engine_run())
    records += rng.sample(records, 200)
    rng.shuffle(records)
    run = random_run_id()
    feed(db, run, records, batch=41 if seed == 1 else 500)
    assert digest_of(db, run) == digest_of(db, in_order) == state_digest(*memory)
    assert store_answers(db, run) == memory_answers(*memory)
    with db.connection() as conn:
        assert progress.counter_totals(conn, run, "ofp")["duplicates"] == sum(1 for c, _ in records if c in TRAFFIC_CLASSES) - 1091


def test_redelivering_every_batch_changes_no_state(db, memory):
    run = random_run_id()
    records = list(engine_run())
    feed(db, run, records, batch=300)
    feed(db, run, records[:900], batch=300)
    assert digest_of(db, run) == state_digest(*memory)
    with db.connection() as conn:
        totals = progress.counter_totals(conn, run, "ofp")
    assert totals["events_applied"] == 1091 and totals["duplicates"] == sum(1 for c, _ in records[:900] if c in TRAFFIC_CLASSES)


def test_many_applies_in_one_transaction_write_and_count_each_record_once(db, memory):
    """The worker's record-by-record retry applies many small batches in ONE transaction (each in
    a savepoint): the COPY stages the writes go through start empty every time."""
    records = list(engine_run())
    run = random_run_id()
    components = handlers(run)
    inputs = as_inputs(records)
    with db.transaction() as conn:
        for start in range(0, len(inputs), 97):
            for handler in components:
                mine = [r for r in inputs[start:start + 97] if r.eb_ref.topic in handler.input_topics()]
                if mine:
                    with conn.transaction():
                        handler.apply(conn, mine)
    assert digest_of(db, run) == state_digest(*memory)
    with db.connection() as conn:
        totals = progress.counter_totals(conn, run, "ofp")
    assert totals == {"events_applied": 1091, "facts_written": 5 * 1091}


def test_late_events_are_counted_per_partition_when_the_stream_is_out_of_order(db):
    ordered = sorted(engine_run(), key=lambda r: order_key(r[1]))
    sorted_run, shuffled_run = random_run_id(), random_run_id()
    feed(db, sorted_run, ordered)
    shuffled = list(engine_run())
    random.Random(3).shuffle(shuffled)
    feed(db, shuffled_run, shuffled)
    with db.connection() as conn:
        for component in ("ofp", "ieg", "csfb"):
            assert sum(r["late_events"] for r in progress.watermark_rows(conn, sorted_run, component)) == 0
            marks = progress.watermark_rows(conn, shuffled_run, component)
            late = sum(r["late_events"] for r in marks)
            assert late > 0 and late == progress.counter_totals(conn, shuffled_run, component)["late_events"]
            assert {r["partition"] for r in marks} == {"0", "1"}
            assert progress.complete_up_to(conn, shuffled_run, component) == min(r["max_event_ts_micros"] for r in marks)
            assert progress.complete_up_to(conn, shuffled_run, component, [*((r["topic"], r["partition"]) for r in marks),
                                                                           ("rtdl.test.never_read", 0)]) is None
        assert progress.state_digest(conn, sorted_run) == progress.state_digest(conn, shuffled_run)


def test_reconciliation_and_join_counts_from_postgres_match_the_domain(db, memory, in_order):
    with db.connection() as conn:
        reconciliation = ieg_store.reconciliation(conn, in_order)
        csfb_counts = progress.counter_totals(conn, in_order, "csfb")
    assert reconciliation == memory[1].reconciliation()
    assert reconciliation["status"] == "PASS"
    expected = memory[2].counters
    assert (csfb_counts.get("join_hits", 0), csfb_counts["join_misses"], csfb_counts["late_joins"]) == \
        (expected.join_hits, expected.join_misses, expected.late_joins)
