"""DF decide(): deterministic ids and bytes, reasons with the values that fired them, explicit degrade, posture floors."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from runtime.contracts.canonical import canonical_json
from runtime.contracts.schemas import compiled_validator
from runtime.decision.bundle import SIGNALS, PolicyDrift, parse_policy
from runtime.decision.df.domain import (
    DecisionInputs,
    PostureUnknown,
    Provenance,
    action_intents,
    decision_digest,
    ordered_decision_digest,
    signals,
)
from runtime.decision.ids import decision_id, idempotency_key, intent_id
from runtime.rtdl.events import RtdlPayloadInvalid, admitted
from tests.runtime.decision.support import World, decide_one, habitual_world, policy
from tests.runtime.rtdl.envelopes import RUN, anchor, arrival, traffic


def _clean():
    world = habitual_world()
    event = traffic(600, amount=22.0, seq=5)
    return event, world.inputs(event)


def test_a_habitual_payment_is_approved_with_no_reasons():
    event, inputs = _clean()
    record = decide_one(event, inputs)
    assert record.outcome == "APPROVE" and record.score == 0 and record.reasons == () and record.degrade_reasons == ()
    assert record.actions == ("approve",)


def test_decide_is_deterministic_to_the_byte():
    event, inputs = _clean()
    first, second = decide_one(event, inputs), decide_one(dict(event), dataclasses.replace(inputs))
    assert canonical_json(first.canonical()) == canonical_json(second.canonical())


def test_the_decision_id_is_h_of_run_event_class_event_id_and_policy_digest():
    event, inputs = _clean()
    p = policy()
    record = decide_one(event, inputs)
    assert record.decision_id == decision_id(RUN, "traffic_fraud", event["event_id"], p.digest)
    other = parse_policy({**p.document, "version": p.version + 1})
    assert decide_one(event, inputs, p=other).decision_id != record.decision_id


def test_transport_provenance_does_not_change_the_decision_core_or_digest():
    event, inputs = _clean()
    a = decide_one(event, inputs)
    b = decide_one(event, dataclasses.replace(inputs, provenance=Provenance({"shard": "x", "sequence": "9"}, "b" * 32, None)))
    assert a.core() == b.core() and a.canonical() != b.canonical()
    assert decision_digest([a]) == decision_digest([b]) == decision_digest([b.canonical()])


def test_deciding_with_a_bundle_other_than_the_pinned_one_is_policy_drift():
    event, inputs = _clean()
    p = policy()
    from runtime.decision.df.domain import decide

    with pytest.raises(PolicyDrift) as e:
        decide(event, inputs, p, "GREEN", pinned_digest="0" * 64)
    assert e.value.code == "POLICY_DRIFT"


def test_a_card_testing_burst_is_declined_with_the_values_that_fired():
    w = World()
    w.feed(arrival(0, device="dev_new"), anchor(0, device="dev_new"))
    for i in range(3):
        w.feed(traffic(30 * i + 1, amount=1.5, device="dev_new", merchant=f"mer_{i}", flow=f"flw_{i}"))
    probe = traffic(100, amount=1.2, device="dev_new", merchant="mer_9", flow="flw_1")
    record = decide_one(probe, w.inputs(probe))
    assert record.outcome == "DECLINE" and record.actions == ("decline", "block_card")
    burst = next(r for r in record.reasons if r["code"] == "CARD_TESTING_BURST")
    assert burst["values"] == {"event.amount": 1.2, "card.count_10m": 3, "card.amount_mean_10m": 1.5,
                               "card.first_seen_merchant": True, "device.age_seconds": 100.0}


def test_a_round_p2p_transfer_to_a_collector_with_many_senders_is_declined():
    w = World()
    for i in range(4):
        w.feed(traffic(10 * i, amount=500.0, channel="p2p", merchant="mer_collector", account=f"acc_s{i}", customer=f"cus_s{i}",
                       card=f"crd_s{i}", device=f"dev_s{i}", flow=f"flw_s{i}"))
    probe = traffic(100, amount=250.0, channel="p2p", merchant="mer_collector")
    record = decide_one(probe, w.inputs(probe))
    assert record.outcome == "DECLINE"
    assert {r["code"] for r in record.reasons} >= {"ROUND_P2P_TO_COLLECTOR", "ROUND_P2P_TRANSFER"}
    assert next(r for r in record.reasons if r["code"] == "ROUND_P2P_TO_COLLECTOR")["values"]["collector.senders"] == 4


def test_missing_inputs_are_named_and_never_approved():
    event, inputs = _clean()
    record = decide_one(event, DecisionInputs(None, None, None, inputs.provenance))
    assert [d["code"] for d in record.degrade_reasons] == ["FEATURES_LATE", "GRAPH_LATE", "CONTEXT_MISSING"]
    assert record.score_outcome == "APPROVE" and record.outcome == "STEP_UP" and record.outcome_floor == "DEGRADED_INPUTS"


def test_a_traffic_event_without_its_flow_anchor_is_context_missing_with_what_is_missing():
    w = World()
    w.feed(arrival(0))
    event = traffic(5, flow="flw_unanchored")
    record = decide_one(event, w.inputs(event))
    assert record.degrade_reasons == ({"code": "CONTEXT_MISSING", "input": "csfb", "detail": "flow_anchor_missing"},)
    assert record.outcome != "APPROVE"


def test_posture_red_never_approves_and_holds_for_review():
    event, inputs = _clean()
    assert decide_one(event, inputs).outcome == "APPROVE"
    record = decide_one(event, inputs, posture="RED")
    assert record.outcome == "REVIEW" and record.outcome_floor == "POSTURE_RED" and record.posture_mark == "HELD_UNDER_RED"
    assert record.actions == ("queue_for_review",)
    degraded = decide_one(event, DecisionInputs(None, None, None), posture="RED")
    assert degraded.outcome == "REVIEW"


def test_posture_amber_decides_on_what_is_available_and_marks_it():
    event, inputs = _clean()
    record = decide_one(event, inputs, posture="AMBER")
    assert record.outcome == "APPROVE" and record.posture == "AMBER" and record.posture_mark == "DECIDED_UNDER_AMBER"
    assert decide_one(event, DecisionInputs(inputs.features, None, inputs.join), posture="AMBER").outcome == "STEP_UP"


def test_an_unknown_posture_is_refused():
    event, inputs = _clean()
    with pytest.raises(PostureUnknown):
        decide_one(event, inputs, posture="PURPLE")


def test_a_record_that_is_not_traffic_is_refused():
    with pytest.raises(RtdlPayloadInvalid):
        decide_one(anchor(1), DecisionInputs(None, None, None))


def test_signals_cover_exactly_the_policy_language():
    event, inputs = _clean()
    assert set(signals(admitted(event), inputs)) == set(SIGNALS)


def test_intents_have_stable_ids_and_the_registry_idempotency_key():
    w = World()
    w.feed(arrival(0, device="dev_new"), anchor(0, device="dev_new"))
    for i in range(3):
        w.feed(traffic(30 * i + 1, amount=1.5, device="dev_new", merchant=f"mer_{i}", flow=f"flw_{i}"))
    probe = traffic(100, amount=1.2, device="dev_new", merchant="mer_9")
    record = decide_one(probe, w.inputs(probe))
    intents = action_intents(record)
    assert [i.action_type for i in intents] == ["decline", "block_card"]
    for intent in intents:
        assert intent.intent_id == intent_id(record.decision_id, intent.action_type)
        assert intent.idempotency_key == idempotency_key(("platform_run_id", "decision_id", "action_type"), intent.canonical())
        assert compiled_validator("events/payloads/action_intent.schema.json").is_valid(intent.canonical())
    assert action_intents(record) == intents


def test_decision_records_meet_the_decision_response_schema():
    validator = compiled_validator("events/payloads/decision_response.schema.json")
    event, inputs = _clean()
    for record in (decide_one(event, inputs), decide_one(event, DecisionInputs(None, None, None), posture="RED")):
        errors = [e.message for e in validator.iter_errors(record.canonical())]
        assert errors == []
    broken = {**decide_one(event, inputs).canonical(), "outcome": "MAYBE"}
    assert not validator.is_valid(broken)


def test_the_decision_digest_does_not_depend_on_record_order():
    event, inputs = _clean()
    a = decide_one(event, inputs)
    b = decide_one(traffic(700, amount=900.0, seq=6), inputs)
    assert decision_digest([a, b]) == decision_digest([b, a]) != decision_digest([a])


def test_the_digest_of_records_in_order_is_the_sha256_of_the_sorted_cores_list_and_refuses_disorder():
    event, inputs = _clean()
    records = [dataclasses.replace(decide_one(event, inputs), event_id=i) for i in ("a1", "B2", "\u00e93", "Z4")]
    cores = sorted(({k: v for k, v in r.core().items() if k not in ("decision_id", "platform_run_id", "scenario_run_id")}
                    for r in records), key=lambda c: (c["event_class"], c["event_id"]))
    expected = hashlib.sha256(canonical_json(cores)).hexdigest()
    in_order = sorted(records, key=lambda r: (r.event_class, r.event_id))
    assert [r.event_id for r in in_order] == ["B2", "Z4", "a1", "\u00e93"]
    assert ordered_decision_digest(in_order) == decision_digest(records) == expected
    with pytest.raises(ValueError, match="comes after"):
        ordered_decision_digest(records)


def test_the_decision_digest_is_equal_for_the_same_events_decided_in_two_runs_and_differs_on_content():
    world = habitual_world()
    big, small = traffic(600, seq=10, amount=900.0), traffic(600, seq=10, amount=20.0)
    first, second = (decide_one({**big, "platform_run_id": run}, world.inputs(big))
                     for run in ("platform_20260105T000000Z", "platform_20260106T000000Z"))
    assert first.decision_id != second.decision_id
    assert decision_digest([first]) == decision_digest([second])
    assert decision_digest([decide_one(small, world.inputs(small))]) != decision_digest([first])
