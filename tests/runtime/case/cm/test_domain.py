"""CM's domain: triggers open or join one case per subject, the timeline is append-only and
idempotent, the state is a fold, moves go open -> investigating -> closed and nothing else."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.case.cm.domain import (
    CaseEventInvalid,
    CaseMoveIllegal,
    CaseNotOpen,
    CaseTimeline,
    TimelineConflict,
    TimelineEvent,
    TimelineOutOfOrder,
    assign,
    attach_label,
    case_state,
    cases_from_events,
    close,
    comment,
    select_cases,
    start_investigation,
    take_action,
    timeline_event,
    trigger_events,
)
from runtime.case.ls.domain import LabelBook
from runtime.case.trigger.domain import CaseTrigger, trigger_for
from tests.runtime.case.records import decision_record

T0 = "2026-01-05T10:00:00Z"


def _trigger(n: int = 1, **kw: object) -> CaseTrigger:
    trigger = trigger_for(decision_record(n, **kw))  # type: ignore[arg-type]
    assert trigger is not None
    return trigger


def _opened(n: int = 1) -> CaseTimeline:
    timeline = CaseTimeline()
    trigger_events(_trigger(n), timeline)
    return timeline


def _investigating() -> CaseTimeline:
    timeline = _opened()
    assign(timeline, actor="lead", assignee="analyst.ana", at="2026-01-05T11:00:00Z")
    start_investigation(timeline, actor="analyst.ana", at="2026-01-05T11:05:00Z")
    return timeline


def test_a_first_trigger_opens_the_case_with_its_evidence_by_reference() -> None:
    trigger = _trigger()
    timeline = CaseTimeline()
    appended = trigger_events(trigger, timeline)
    assert [e.kind for e in appended] == ["case_opened", "evidence_attached"]
    assert all(e.case_id == trigger.case_id and e.actor == "case_trigger" for e in appended)
    evidence = appended[1].details
    assert set(evidence["evidence_refs"]) == {"receipt_id", "eb_ref", "decision_id", "audit_record_id"}
    assert "payload" not in evidence and "amount" not in str(evidence)
    state = timeline.state
    assert state is not None and state.status == "open" and state.queue == "card_testing"
    assert state.trigger_ids == (trigger.trigger_id,) and state.decision_ids == (trigger.decision_id,)


def test_several_triggers_for_one_subject_join_one_case() -> None:
    timeline = CaseTimeline()
    trigger_events(_trigger(1, event=9, reasons=["AMOUNT_FAR_ABOVE_HABIT"]), timeline)
    joined = trigger_events(_trigger(2, event=9, reasons=["ROUND_P2P_TO_COLLECTOR"]), timeline)
    assert [e.kind for e in joined] == ["evidence_attached"]
    state = timeline.state
    assert state is not None and len(state.trigger_ids) == 2
    assert state.queue == "mule_transfer"  # the higher-priority queue of the two
    assert [e.kind for e in timeline.events].count("case_opened") == 1


def test_a_replayed_trigger_appends_nothing() -> None:
    timeline = _opened()
    before = timeline.events
    assert trigger_events(_trigger(), timeline) == []
    assert timeline.events == before


def test_a_case_moves_open_investigating_closed_and_closing_yields_a_label_for_ls() -> None:
    timeline = _investigating()
    take_action(timeline, actor="analyst.ana", action="contact_customer", at="2026-01-05T11:10:00Z")
    comment(timeline, actor="analyst.ana", text="customer denies the payments", at="2026-01-05T11:20:00Z")
    closed, label = close(timeline, actor="analyst.ana", outcome="confirmed_fraud", at="2026-01-05T11:30:00Z")
    state = timeline.state
    assert state is not None and state.status == "closed" and state.outcome == "confirmed_fraud"
    assert state.assignee == "analyst.ana" and state.actions == ("contact_customer",)
    assert label.source == "case_closure" and label.value == "fraud"
    assert label.subject.event_id == state.subject.event_id and label.subject.label_type == "fraud"
    assert label.observed_at_utc == closed.at_utc and label.effective_at_utc == state.event_ts_utc
    assert LabelBook().append(label) is True
    attach_label(timeline, label, actor="cm", at="2026-01-05T11:30:00Z")
    assert timeline.state is not None and timeline.state.label_assertion_ids == (label.assertion_id,)


@pytest.mark.parametrize(("outcome", "value"), [("false_positive", "legit"), ("inconclusive", "inconclusive")])
def test_each_closing_outcome_asserts_its_label_value(outcome: str, value: str) -> None:
    _, label = close(_investigating(), actor="analyst.ana", outcome=outcome, at="2026-01-05T12:00:00Z")
    assert label.value == value


def test_the_state_is_a_pure_fold_independent_of_the_order_rows_are_read() -> None:
    timeline = _investigating()
    trigger_events(_trigger(2, event=1, reasons=["VELOCITY_HIGH"], decided_at="2026-01-05T10:30:00Z"), timeline)
    close(timeline, actor="analyst.ana", outcome="false_positive", at="2026-01-05T12:00:00Z")
    rows = [e.row() for e in timeline.events]
    for seed in range(5):
        random.Random(seed).shuffle(rows)
        assert case_state(TimelineEvent.from_row(r) for r in rows) == timeline.state
    assert CaseTimeline(TimelineEvent.from_row(r) for r in rows).state == timeline.state


def _busy_case() -> CaseTimeline:
    timeline = _investigating()
    trigger_events(_trigger(2, event=1, reasons=["VELOCITY_HIGH"], decided_at="2026-01-05T10:30:00Z"), timeline)
    trigger_events(_trigger(3, event=1, reasons=["ROUND_P2P"], decided_at="2026-01-05T10:00:00Z"), timeline)
    take_action(timeline, actor="analyst.ana", action="block_card", at="2026-01-05T11:05:00Z")
    comment(timeline, actor="analyst.ana", text="same minute", at="2026-01-05T11:05:00Z")
    closed, label = close(timeline, actor="analyst.ana", outcome="confirmed_fraud", at="2026-01-05T11:05:00Z")
    attach_label(timeline, label, actor="cm", at=closed.at_utc)
    return timeline


BUSY = _busy_case()


@settings(max_examples=80, deadline=None)
@given(st.permutations(BUSY.events))
def test_the_fold_gives_the_same_state_for_every_order_of_the_rows(order: list[TimelineEvent]) -> None:
    assert case_state(order) == BUSY.state
    assert BUSY.state is not None and BUSY.state.queue == "mule_transfer" and BUSY.state.status == "closed"


def test_a_repeated_command_appends_nothing_but_a_new_one_does() -> None:
    timeline = _opened()
    first = comment(timeline, actor="ana", text="looking", at="2026-01-05T11:00:00Z")
    count = len(timeline.events)
    again = comment(timeline, actor="ana", text="looking", at="2026-01-05T11:00:00Z")
    assert again == first and len(timeline.events) == count
    comment(timeline, actor="ana", text="looking again", at="2026-01-05T11:00:00Z")
    assert len(timeline.events) == count + 1


@pytest.mark.parametrize("move", ["close_while_open", "reopen", "investigate_twice", "assign_closed",
                                  "act_closed", "close_twice", "close_twice_same", "label_before_close"])
def test_an_illegal_move_is_refused_and_nothing_is_appended(move: str) -> None:
    timeline = _opened() if move in ("close_while_open", "label_before_close") else _investigating()
    if move in ("reopen", "assign_closed", "act_closed", "close_twice", "close_twice_same"):
        close(timeline, actor="ana", outcome="confirmed_fraud", at="2026-01-05T12:00:00Z")
    before = timeline.events
    with pytest.raises(CaseMoveIllegal) as e:
        if move == "close_while_open":
            close(timeline, actor="ana", outcome="false_positive", at="2026-01-05T12:00:00Z")
        elif move == "reopen":
            timeline.append(timeline_event(timeline.events[0].case_id, "status_changed", actor="ana",
                                           at="2026-01-05T13:00:00Z", details={"from": "closed", "to": "open"}))
        elif move == "investigate_twice":
            start_investigation(timeline, actor="ana", at="2026-01-05T12:00:00Z")
        elif move == "assign_closed":
            assign(timeline, actor="ana", assignee="bob", at="2026-01-05T13:00:00Z")
        elif move == "act_closed":
            take_action(timeline, actor="ana", action="block_card", at="2026-01-05T13:00:00Z")
        elif move == "close_twice":
            close(timeline, actor="ana", outcome="false_positive", at="2026-01-05T13:00:00Z")
        elif move == "close_twice_same":
            close(timeline, actor="ana", outcome="confirmed_fraud", at="2026-01-05T13:00:00Z")
        else:
            _, label = close(_investigating(), actor="ana", outcome="confirmed_fraud", at="2026-01-05T12:00:00Z")
            attach_label(timeline, label, actor="cm", at="2026-01-05T12:00:00Z")
    assert e.value.code == "CASE_MOVE_ILLEGAL" and e.value.next_step
    assert timeline.events == before


def test_an_event_dated_before_the_last_move_is_out_of_order_and_refused() -> None:
    timeline = _investigating()
    before = timeline.events
    with pytest.raises(TimelineOutOfOrder) as e:
        comment(timeline, actor="ana", text="late note", at="2026-01-05T11:01:00Z")
    assert e.value.code == "CASE_TIMELINE_OUT_OF_ORDER"
    with pytest.raises(TimelineOutOfOrder):
        assign(_opened(), actor="lead", assignee="ana", at="2026-01-05T09:00:00Z")  # before the opening
    assert timeline.events == before


def test_evidence_may_join_later_with_an_earlier_decision_time_and_on_a_closed_case() -> None:
    timeline = _investigating()
    close(timeline, actor="ana", outcome="confirmed_fraud", at="2026-01-05T12:00:00Z")
    late = trigger_events(_trigger(2, event=1, decided_at="2026-01-05T10:00:01Z"), timeline)
    assert [e.kind for e in late] == ["evidence_attached"]
    assert timeline.state is not None and timeline.state.status == "closed" and len(timeline.state.trigger_ids) == 2


def test_an_event_for_a_case_that_was_never_opened_is_refused() -> None:
    opened = _opened()
    case_id = opened.events[0].case_id
    with pytest.raises(CaseNotOpen) as e:
        CaseTimeline().append(timeline_event(case_id, "commented", actor="ana", at=T0, details={"text": "hi"}))
    assert e.value.code == "CASE_NOT_OPEN"
    with pytest.raises(CaseNotOpen):
        comment(CaseTimeline(), actor="ana", text="hi", at=T0)
    with pytest.raises(CaseNotOpen):
        case_state([])


def test_a_stored_event_id_with_other_content_is_a_conflict_never_a_rewrite() -> None:
    timeline = _opened()
    evidence = timeline.events[1]
    forged = TimelineEvent(evidence.timeline_event_id, evidence.case_id, evidence.kind, evidence.actor,
                           evidence.at_utc, {**evidence.details, "queue": "general_review"})
    with pytest.raises(TimelineConflict) as e:
        timeline.append(forged)
    assert e.value.code == "CASE_TIMELINE_CONFLICT"
    assert timeline.events[1] == evidence


def test_a_stored_row_that_does_not_hash_to_its_id_is_refused() -> None:
    row = _opened().events[1].row()
    row["details"]["trigger_id"] = "0" * 32
    with pytest.raises(CaseEventInvalid):
        TimelineEvent.from_row(row)


@pytest.mark.parametrize(("kind", "actor", "details"), [
    ("escalated", "ana", {}),
    ("commented", "", {"text": "x"}),
    ("commented", "ana smith", {"text": "x"}),
    ("commented", "ana", {"text": "   "}),
    ("commented", "ana", {"text": "x" * 2001}),
    ("assigned", "ana", {}),
    ("action_taken", "ana", {"action": "Block Card!"}),
    ("closed", "ana", {"outcome": "fraud"}),
    ("label_attached", "cm", {"assertion_id": "nope"}),
    ("evidence_attached", "case_trigger", {"trigger_id": "0" * 32, "queue": "general_review", "reason_codes": [],
                                           "evidence_refs": {"receipt_id": "0" * 32, "payload": {"amount": 3}}}),
])
def test_a_malformed_event_is_refused(kind: str, actor: str, details: dict) -> None:
    case_id = _opened().events[0].case_id
    with pytest.raises(CaseEventInvalid):
        timeline_event(case_id, kind, actor=actor, at=T0, details=details)


def test_cases_are_listed_by_queue_status_and_outcome() -> None:
    events: list[TimelineEvent] = []
    a = _investigating()
    close(a, actor="ana", outcome="confirmed_fraud", at="2026-01-05T12:00:00Z")
    b = CaseTimeline()
    trigger_events(_trigger(2, reasons=["FEATURES_LATE"]), b)
    for t in (a, b):
        events.extend(t.events)
    cases = cases_from_events(reversed(events)).values()
    assert [c.status for c in select_cases(cases, status="closed")] == ["closed"]
    assert [c.queue for c in select_cases(cases, queue="degraded")] == ["degraded"]
    assert len(select_cases(cases, outcome="confirmed_fraud")) == 1
    assert len(select_cases(cases)) == 2
