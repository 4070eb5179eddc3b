"""Order independence, idempotence and the state digest, on a whole synthetic-engine run."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.digest import rows_digest, state_digest
from runtime.rtdl.events import ANCHOR_CLASSES, ARRIVAL_EVENTS, TRAFFIC_CLASSES, parse_ts_micros
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ofp.domain import OfpState
from tests.runtime.rtdl.envelopes import engine_run, traffic


def _feed(records: list[tuple[str, dict[str, Any]]]) -> tuple[OfpState, IegState, CsfbState]:
    ofp, ieg, csfb = OfpState(), IegState(), CsfbState()
    for event_class, env in records:
        partition = int(env["event_id"][:2], 16) % 2
        if event_class in TRAFFIC_CLASSES:
            ofp.apply(env, event_class, partition)
        ieg.apply(env)
        if event_class in TRAFFIC_CLASSES or event_class in ANCHOR_CLASSES or event_class == ARRIVAL_EVENTS:
            csfb.apply(env)
    return ofp, ieg, csfb


def _answers(ofp: OfpState, ieg: IegState, csfb: CsfbState) -> list[Any]:
    out: list[Any] = []
    for event_class, env in engine_run():
        if event_class not in TRAFFIC_CLASSES:
            continue
        p = env["payload"]
        at = (parse_ts_micros(env["ts_utc"]), env["event_id"])
        out.append({k: f.canonical() for k, f in ofp.event_features(env).items()})
        out.append([ieg.customers_of_device(p["device_id"], as_of=at), ieg.senders_of_collector(p["merchant_id"], as_of=at)])
        binding = csfb.resolve_flow_binding(p["flow_id"])
        out.append(None if binding is None else binding.canonical())
    return out


@pytest.fixture(scope="module")
def in_order() -> tuple[str, list[Any]]:
    states = _feed(list(engine_run()))
    return state_digest(*states), _answers(*states)


def test_the_engine_run_exercises_every_domain(in_order):
    ofp, ieg, csfb = _feed(list(engine_run()))
    classes = {c for c, _ in engine_run()}
    assert classes == {"traffic_fraud", "context_arrival_events", "context_arrival_entities", "context_flow_anchor_fraud"}
    assert ofp.counters.events_applied > 100 and ieg.reconciliation()["status"] == "PASS"
    assert ieg.reconciliation()["edges_by_relation"].get("sent_p2p", 0) > 0
    assert csfb.counters.join_hits + csfb.counters.join_misses == ofp.counters.events_applied
    assert len(in_order[0]) == 64
    features = [a for a in in_order[1] if isinstance(a, dict) and "card" in a]
    assert any(f["merchant"]["windows"]["24h"]["count"] > 0 for f in features)
    assert any(len(a[1]) > 1 for a in in_order[1] if isinstance(a, list))  # a collector with several senders


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), duplicates=st.integers(min_value=0, max_value=50))
def test_a_shuffled_and_redelivered_stream_gives_the_same_features_and_state_digest(in_order, seed, duplicates):
    rng = random.Random(seed)
    records = list(engine_run())
    records += rng.sample(records, duplicates)
    rng.shuffle(records)
    states = _feed(records)
    assert state_digest(*states) == in_order[0]
    assert _answers(*states) == in_order[1]


def test_a_shuffled_stream_counts_late_events_but_the_sorted_one_does_not():
    ordered = sorted(engine_run(), key=lambda r: (r[1]["ts_utc"], r[1]["event_id"]))
    assert _feed(ordered)[0].counters.late_events == 0
    shuffled = list(engine_run())
    random.Random(3).shuffle(shuffled)
    ofp = _feed(shuffled)[0]
    assert ofp.counters.late_events > 0 and ofp.counters.late_events == ofp.watermarks.late_total


def test_the_digest_changes_when_any_state_row_changes():
    ofp, ieg, csfb = _feed(list(engine_run()))
    before = state_digest(ofp, ieg, csfb)
    ofp.apply(traffic(1, card="crd_extra"))
    assert state_digest(ofp, ieg, csfb) != before


def test_the_digest_of_rows_read_back_from_a_store_equals_the_in_memory_digest():
    ofp, ieg, csfb = _feed(list(engine_run()))
    stored = {"ofp": list(reversed(list(ofp.canonical_rows()))), "ieg": list(ieg.canonical_rows()),
              "csfb": list(csfb.canonical_rows())}
    assert rows_digest(stored) == state_digest(ofp, ieg, csfb)
    assert rows_digest({}) != rows_digest({"ofp": [{"x": 1}]})
    with pytest.raises(ValueError, match="unknown"):
        rows_digest({"decisions": []})


def test_the_digest_holds_about_a_rows_canonical_length_per_row() -> None:
    """P8 sorts a section's canonical rows in memory: at 500k traffic events, millions of rows, which
    at 4 KB each (orjson's buffer) had the job OOM-killed."""
    def rows() -> Iterator[dict[str, Any]]:
        for i in range(20_000):
            yield {"row": "edge", "from_kind": "account", "from_id": f"acc_{i:012d}", "relation": "uses_device",
                   "to_kind": "device", "to_id": f"dev_{i:016x}", "first_event_id": f"{i:032x}", "last_event_id": f"{i:032x}"}

    tracemalloc.start()
    try:
        rows_digest({"ieg": rows()})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000 * 600  # a row is ~230 bytes of JSON, ~300 with its object and list slot
