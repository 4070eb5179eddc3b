"""OFP: event facts and point-in-time window features."""

from __future__ import annotations

import pytest

from runtime.rtdl.events import RtdlPayloadInvalid
from runtime.rtdl.ofp.domain import EventFact, OfpState
from tests.runtime.rtdl.envelopes import SECOND, T0, traffic


def test_windows_count_only_events_strictly_before_and_inside_each_window():
    state = OfpState()
    events = [traffic(s, amount=a, merchant=m) for s, a, m in
              [(0, 5.0, "mer_a"), (3000, 7.0, "mer_b"), (3550, 11.0, "mer_c"), (3590, 13.0, "mer_c"), (3600, 99.0, "mer_d")]]
    for env in events:
        state.apply(env)
    last = events[-1]
    f = state.features_as_of("card", "crd_1", T0 + 3600 * SECOND, last["event_id"])
    assert f.windows["1m"].count == 2 and f.windows["1m"].amount_sum == 24.0  # 3550 and 3590 (3540 < ts)
    assert f.windows["10m"].count == 2  # 3000 is exactly 600 s back: outside (window is ts > T - w)
    assert f.windows["1h"].count == 3  # 0 is exactly 3600 s back: outside
    assert f.windows["24h"].count == 4 and f.windows["24h"].amount_max == 13.0
    assert f.windows["24h"].distinct_merchants == 3
    assert f.seconds_since_previous == 10.0
    assert f.first_seen_merchant is True and f.first_seen_device is False and f.first_seen_entity is False


def test_same_timestamp_events_are_ordered_by_event_id():
    state = OfpState()
    a, b = traffic(10, amount=1.0), traffic(10, amount=2.0)
    first, second = sorted([a, b], key=lambda e: e["event_id"])
    state.apply(second)
    state.apply(first)
    ts = T0 + 10 * SECOND
    assert state.features_as_of("card", "crd_1", ts, first["event_id"]).windows["1m"].count == 0
    after = state.features_as_of("card", "crd_1", ts, second["event_id"])
    assert after.windows["1m"].count == 1 and after.seconds_since_previous == 0.0


def test_baseline_excludes_the_current_event_and_compares_its_amount():
    state = OfpState()
    for s, amount in [(0, 10.0), (60, 30.0), (120, 400.0)]:
        state.apply(traffic(s, amount=amount))
    current = traffic(120, amount=400.0)
    f = state.event_features(current)["customer"]
    assert f.baseline_count_24h == 2 and f.baseline_amount_mean_24h == 20.0
    assert f.amount_to_baseline_ratio == 20.0


def test_first_event_of_an_entity_is_first_seen_with_no_baseline():
    state = OfpState()
    env = traffic(5)
    state.apply(env)
    f = state.event_features(env)["device"]
    assert f.first_seen_entity and f.first_seen_merchant and f.seconds_since_previous is None
    assert f.baseline_amount_mean_24h is None and f.amount_to_baseline_ratio is None
    assert f.canonical()["windows"]["24h"]["count"] == 0


def test_p2p_and_round_amounts_are_counted_per_collector_and_sender():
    state = OfpState()
    state.apply(traffic(0, channel="p2p", amount=250.0, merchant="mer_mule"))
    state.apply(traffic(10, channel="p2p", amount=99.99, merchant="mer_mule"))
    state.apply(traffic(20, amount=100.0))
    f = state.features_as_of("account", "acc_1", T0 + 30 * SECOND, "f" * 32)
    assert f.windows["1m"].p2p_count == 2 and f.windows["1m"].round_amount_count == 2
    assert f.first_seen_merchant is None  # the asked event is not in the store: its attributes are unknown


def test_a_redelivered_event_writes_nothing():
    state = OfpState()
    env = traffic(1)
    assert len(state.apply(env)) == 5
    assert state.apply(env) == []
    assert state.counters.duplicates == 1 and state.counters.facts_written == 5
    assert len(state.facts["card:crd_1"]) == 1


def test_late_events_are_applied_counted_and_still_answer_point_in_time():
    state = OfpState()
    early, late = traffic(10), traffic(100)
    state.apply(late, "t", 0)
    state.apply(early, "t", 0)
    assert state.counters.late_events == 1 and state.watermarks.late_total == 1
    f = state.features_as_of("card", "crd_1", T0 + 100 * SECOND, late["event_id"])
    assert f.windows["10m"].count == 1


def test_eviction_keeps_the_horizon_and_leaves_the_digest_rows_unchanged():
    state = OfpState(grace_micros=0)
    old, new = traffic(0), traffic(90_000)
    state.apply(old)
    state.apply(new)
    before = sorted(map(str, state.canonical_rows()))
    assert state.evict() == 5
    assert sorted(map(str, state.canonical_rows())) == before
    assert state.features_as_of("card", "crd_1", T0 + 90_000 * SECOND, new["event_id"]).windows["24h"].count == 0


@pytest.mark.parametrize("field, value", [("amount", -1), ("amount", "12"), ("amount", True), ("card_id", ""),
                                          ("merchant_country", None), ("channel", 7)])
def test_a_traffic_payload_that_breaks_its_schema_is_a_permanent_error(field, value):
    env = traffic(1)
    env["payload"][field] = value
    with pytest.raises(RtdlPayloadInvalid) as e:
        OfpState().apply(env)
    assert e.value.code == "RTDL_PAYLOAD_INVALID" and field in e.value.message


def test_context_records_are_not_ofp_input():
    from tests.runtime.rtdl.envelopes import anchor
    with pytest.raises(RtdlPayloadInvalid, match="event_class"):
        OfpState().apply(anchor(1))


def test_a_fact_round_trips_through_its_persisted_row():
    state = OfpState()
    state.apply(traffic(1, channel="p2p", amount=500.0))
    fact = next(iter(state.facts["merchant:mer_1"].fact(0, "merchant", "mer_1") for _ in [0]))
    assert EventFact.from_row(fact.to_row()) == fact
    assert fact.to_row()["entity_key"] == "merchant:mer_1" and fact.amount_minor == 50_000 and fact.is_round
