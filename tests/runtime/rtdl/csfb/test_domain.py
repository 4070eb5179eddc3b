"""CSFB: FlowBinding index, join frames, join readiness and its counters."""

from __future__ import annotations

import pytest

from runtime.rtdl.csfb.domain import MISSING_ANCHOR, MISSING_ARRIVAL, CsfbState
from runtime.rtdl.events import RtdlPayloadInvalid
from tests.runtime.rtdl.envelopes import anchor, arrival, arrival_entity, traffic


def test_an_anchored_flow_resolves_to_its_session_and_entities():
    c = CsfbState()
    c.apply(anchor(5, flow="flw_9", session="ses_9", card="crd_7"))
    binding = c.resolve_flow_binding("flw_9")
    assert binding is not None and binding.session_id == "ses_9" and binding.card_id == "crd_7"
    assert c.resolve_flow_binding("flw_unknown") is None


def test_traffic_with_anchor_and_arrival_is_ready_with_its_join_frame():
    c = CsfbState()
    c.apply(arrival(0))
    c.apply(anchor(1))
    readiness = c.apply(traffic(2))
    assert readiness is not None and readiness.status == "READY" and readiness.missing == ()
    frame = readiness.frame()
    assert frame is not None and frame["binding"]["flow_id"] == "flw_1" and frame["arrival"]["arrival_id"] == "arr_1"
    assert c.counters.join_hits == 1 and c.counters.join_misses == 0


def test_missing_context_names_what_is_missing_and_a_later_context_counts_a_late_join():
    c = CsfbState()
    event = traffic(2)
    readiness = c.apply(event)
    assert readiness is not None and readiness.status == "MISSING_CONTEXT"
    assert readiness.missing == (MISSING_ANCHOR, MISSING_ARRIVAL) and readiness.frame() is None
    c.apply(anchor(1))
    assert c.join_readiness("flw_1").missing == (MISSING_ARRIVAL,)
    assert c.counters.late_joins == 0
    c.apply(arrival(0))
    assert c.counters.join_misses == 1 and c.counters.late_joins == 1 and not c.pending and not c.pending_by_session
    assert c.join_readiness("flw_1", event_id=event["event_id"]).status == "LATE_JOIN"
    assert c.join_readiness("flw_1", event_id="0" * 32).status == "READY"


def test_two_anchors_for_one_flow_keep_the_earlier_whatever_the_order_and_redelivery_is_a_no_op():
    early, late = anchor(1, card="crd_a"), anchor(2, card="crd_b")
    a, b = CsfbState(), CsfbState()
    a.apply(early)
    a.apply(late)
    b.apply(late)
    b.apply(early)
    b.apply(early)
    assert a.resolve_flow_binding("flw_1") == b.resolve_flow_binding("flw_1")
    assert a.resolve_flow_binding("flw_1").card_id == "crd_a"  # type: ignore[union-attr]
    assert a.counters.context_conflicts == 1 and b.counters.duplicates == 1


def test_arrival_entities_are_not_csfb_input_and_a_broken_anchor_is_permanent():
    with pytest.raises(RtdlPayloadInvalid, match="event_class"):
        CsfbState().apply(arrival_entity(0, "card", "crd_1"))
    broken = anchor(1)
    del broken["payload"]["session_id"]
    with pytest.raises(RtdlPayloadInvalid, match="session_id"):
        CsfbState().apply(broken)
