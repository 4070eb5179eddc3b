"""CaseTrigger's domain: which decisions need a human, stable trigger ids, refusals of bad decisions."""

from __future__ import annotations

import copy

import pytest

from runtime.case.trigger.domain import (
    CaseTriggerInvalid,
    DecisionRecordInvalid,
    DecisionUnknown,
    TriggerBook,
    TriggerPolicy,
    read_trigger,
    trigger_for,
)
from runtime.contracts.schemas import compiled_validator
from tests.runtime.case.records import decision_record, hex32


@pytest.mark.parametrize("outcome", ["REVIEW", "DECLINE"])
def test_review_and_decline_decisions_become_case_triggers(outcome: str) -> None:
    trigger = trigger_for(decision_record(outcome=outcome))
    assert trigger is not None
    assert trigger.trigger_reason == f"outcome:{outcome}"
    assert trigger.case_id == trigger.subject.case_id
    assert trigger.evidence_refs() == {"receipt_id": hex32(("receipt", 1)), "decision_id": hex32(("decision", 1)),
                                       "audit_record_id": hex32(("audit", 1)),
                                       "eb_ref": decision_record()["eb_ref"]}


@pytest.mark.parametrize("outcome", ["APPROVE", "STEP_UP"])
def test_approve_and_step_up_need_no_human_by_default(outcome: str) -> None:
    assert trigger_for(decision_record(outcome=outcome)) is None


def test_a_reason_the_policy_marks_or_case_required_triggers_whatever_the_outcome() -> None:
    policy = TriggerPolicy(marked_reasons=frozenset({"MULE_COLLECTOR_ACCOUNT"}))
    marked = trigger_for(decision_record(outcome="APPROVE", reasons=["MULE_COLLECTOR_ACCOUNT"]), policy)
    assert marked is not None and marked.trigger_reason == "reason:MULE_COLLECTOR_ACCOUNT"
    required = trigger_for(decision_record(outcome="STEP_UP", case_required=True))
    assert required is not None and required.trigger_reason == "case_required"
    review_only = TriggerPolicy(outcomes=frozenset({"REVIEW"}))
    assert trigger_for(decision_record(outcome="DECLINE"), review_only) is None


def test_a_replayed_decision_has_the_same_trigger_id_and_triggers_nothing_new() -> None:
    first, replay = trigger_for(decision_record()), trigger_for(copy.deepcopy(decision_record()))
    assert first is not None and replay is not None
    assert first == replay and first.trigger_id == replay.trigger_id
    book = TriggerBook()
    assert book.admit(first) is True
    assert book.admit(replay) is False
    other = trigger_for(decision_record(2))
    assert other is not None and other.trigger_id != first.trigger_id and book.admit(other) is True


def test_two_decisions_about_one_event_trigger_twice_into_the_same_case() -> None:
    a, b = trigger_for(decision_record(1, event=7)), trigger_for(decision_record(2, event=7))
    assert a is not None and b is not None
    assert a.trigger_id != b.trigger_id and a.case_id == b.case_id


@pytest.mark.parametrize(("reasons", "queue"), [
    (["CARD_TESTING_BURST"], "card_testing"),
    ([{"code": "NEW_DEVICE_ABROAD", "value": True}], "account_takeover"),
    (["AMOUNT_FAR_ABOVE_HABIT"], "amount_anomaly"),
    (["AMOUNT_FAR_ABOVE_HABIT", "ROUND_P2P_TO_COLLECTOR"], "mule_transfer"),
    (["FEATURES_LATE"], "degraded"),
    (["SOMETHING_ELSE"], "general_review"),
    ([], "general_review"),
])
def test_the_queue_is_routed_from_the_decisions_reasons(reasons: list, queue: str) -> None:
    trigger = trigger_for(decision_record(reasons=reasons))
    assert trigger is not None and trigger.queue == queue


def test_the_trigger_payload_meets_its_schema_and_reads_back_equal() -> None:
    trigger = trigger_for(decision_record(audit_record_id=None))
    assert trigger is not None
    payload = trigger.payload()
    validator = compiled_validator("events/payloads/case_trigger.schema.json")
    assert list(validator.iter_errors(payload)) == []
    assert read_trigger(payload) == trigger
    assert "payload" not in str(payload.keys())  # references only, never the traffic payload


def test_a_trigger_for_an_unknown_decision_is_refused() -> None:
    known = {hex32(("decision", 1))}
    assert trigger_for(decision_record(1), known_decisions=known) is not None
    with pytest.raises(DecisionUnknown) as e:
        trigger_for(decision_record(2), known_decisions=known)
    assert e.value.code == "CASE_TRIGGER_DECISION_UNKNOWN" and e.value.next_step


@pytest.mark.parametrize("broken", [
    {"decision_id": None},
    {"decision_id": "not-hex"},
    {"outcome": "MAYBE"},
    {"platform_run_id": "run-1"},
    {"event_id": hex32(1) + "\n"},
    {"reasons": "CARD_TESTING"},
    {"reasons": [{"value": 3}]},
    {"reasons": ["lower_case"]},
    {"reasons": [f"REASON_{i}" for i in range(65)]},
    {"decided_at_utc": "2026-01-05T10:00:00"},
    {"eb_ref": {"topic": "t", "partition": 0}},
    {"eb_ref": {"topic": "t", "partition": True, "offset": 1}},
    {"receipt_id": ""},
    {"audit_record_id": "zz"},
    {"case_required": "yes"},
])
def test_an_ill_formed_decision_is_refused_with_a_specific_error(broken: dict) -> None:
    record = decision_record()
    for key, value in broken.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    with pytest.raises(DecisionRecordInvalid) as e:
        trigger_for(record)
    assert e.value.code == "CASE_TRIGGER_DECISION_INVALID" and e.value.next_step


def test_a_reason_fired_twice_is_carried_once_in_its_order() -> None:
    trigger = trigger_for(decision_record(reasons=["VELOCITY_HIGH", "CARD_TESTING_BURST", "VELOCITY_HIGH"]))
    assert trigger is not None and trigger.reason_codes == ("VELOCITY_HIGH", "CARD_TESTING_BURST")


def test_a_decision_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(DecisionRecordInvalid):
        trigger_for(["REVIEW"])


@pytest.mark.parametrize("tamper", ["trigger_id", "case_id", "subject", "decision_ref", "queue", "missing"])
def test_cm_refuses_a_trigger_whose_ids_do_not_add_up(tamper: str) -> None:
    trigger = trigger_for(decision_record())
    assert trigger is not None
    payload = trigger.payload()
    if tamper == "trigger_id":
        payload["trigger_id"] = hex32("forged")
    elif tamper == "case_id":
        payload["case_id"] = hex32("other case")
    elif tamper == "subject":
        payload["case_subject_key"]["event_id"] = hex32("other event")
    elif tamper == "decision_ref":
        payload["evidence_refs"]["decision_id"] = hex32("other decision")
    elif tamper == "queue":
        payload["queue"] = "vip"
    else:
        payload.pop("evidence_refs")
    with pytest.raises(CaseTriggerInvalid) as e:
        read_trigger(payload)
    assert e.value.code == "CASE_TRIGGER_INVALID"


def test_a_policy_naming_unknown_outcomes_or_queues_is_refused() -> None:
    with pytest.raises(DecisionRecordInvalid):
        TriggerPolicy(outcomes=frozenset({"ESCALATE"}))
    with pytest.raises(DecisionRecordInvalid):
        TriggerPolicy(routes=(("X", "vip"),))


def test_cm_refuses_a_trailing_newline_in_every_patterned_trigger_field() -> None:
    from tests.support.patterns import patterned_fields

    fields = [f for f in patterned_fields() if f.schema == "events/payloads/case_trigger.schema.json" and f.property_path]
    assert {f.property_path[-1] for f in fields} >= {"trigger_id", "case_id", "decision_id", "event_id", "receipt_id"}
    trigger = trigger_for(decision_record())
    assert trigger is not None
    for f in fields:
        payload = trigger.payload()
        *parents, leaf = f.property_path
        target = payload
        for p in parents:
            target = target[p]
        if leaf not in target or not isinstance(target[leaf], str):
            continue
        target[leaf] += "\n"
        with pytest.raises(CaseTriggerInvalid):
            read_trigger(payload)
