"""case_digest and label_digest: independent of arrival order and duplicates, sensitive to content."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.case.cm.domain import CaseTimeline, TimelineEvent, assign, close, comment, start_investigation, trigger_events
from runtime.case.digest import case_digest, label_digest
from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import LabelAssertion, assertion
from runtime.case.trigger.domain import trigger_for
from tests.runtime.case.records import RUN, decision_record, hex32


def _run_timeline() -> list[TimelineEvent]:
    timelines: dict[str, CaseTimeline] = {}
    for n in range(1, 7):
        trigger = trigger_for(decision_record(n, event=n % 4, outcome="DECLINE" if n % 2 else "REVIEW"))
        assert trigger is not None
        timeline = timelines.setdefault(trigger.case_id, CaseTimeline())
        trigger_events(trigger, timeline)
        if n % 3 == 0:
            assign(timeline, actor="lead", assignee="ana", at="2026-01-05T11:00:00Z")
            start_investigation(timeline, actor="ana", at="2026-01-05T11:01:00Z")
            comment(timeline, actor="ana", text=f"case {n}", at="2026-01-05T11:02:00Z")
            close(timeline, actor="ana", outcome="false_positive", at="2026-01-05T11:03:00Z")
    return [e for t in timelines.values() for e in t.events]


EVENTS = _run_timeline()
ASSERTIONS = [
    assertion(LabelSubjectKey(RUN, hex32(("event", n)), "fraud"), source=source, value=value,
              observed_at=f"2026-01-0{6 + n % 3}T10:00:00Z", effective_at="2026-01-05T10:00:00Z")
    for n in range(8) for source, value in (("bank_view", "fraud"), ("case_closure", "legit"))
]


@settings(max_examples=60, deadline=None)
@given(st.permutations(EVENTS), st.lists(st.sampled_from(EVENTS), max_size=5))
def test_case_digest_is_independent_of_arrival_order_and_redelivery(order: list[TimelineEvent],
                                                                     redelivered: list[TimelineEvent]) -> None:
    assert case_digest(order + redelivered) == case_digest(EVENTS)
    assert case_digest([e.row() for e in order]) == case_digest(EVENTS)  # rows read back from a store


@settings(max_examples=60, deadline=None)
@given(st.permutations(ASSERTIONS), st.lists(st.sampled_from(ASSERTIONS), max_size=5))
def test_label_digest_is_independent_of_arrival_order_and_redelivery(order: list[LabelAssertion],
                                                                      redelivered: list[LabelAssertion]) -> None:
    assert label_digest(order + redelivered) == label_digest(ASSERTIONS)
    assert label_digest([a.row() for a in order]) == label_digest(ASSERTIONS)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=len(EVENTS) - 1))
def test_case_digest_changes_when_any_event_is_missing_or_altered(i: int) -> None:
    rows = [e.row() for e in EVENTS]
    assert case_digest(rows[:i] + rows[i + 1:]) != case_digest(rows)
    altered = copy.deepcopy(rows)
    altered[i]["at_utc"] = "2030-01-01T00:00:00.000000Z"
    assert case_digest(altered) != case_digest(rows)


def test_label_digest_changes_with_content_and_the_two_digests_are_separate() -> None:
    rows = [a.row() for a in ASSERTIONS]
    rows[0] = rows[0] | {"label_value": "legit"}
    assert label_digest(rows) != label_digest(ASSERTIONS)
    assert case_digest([]) != label_digest([])


def test_case_digest_ignores_transport_references_but_not_the_evidence_it_names() -> None:
    rows = [e.row() for e in EVENTS]
    i = next(n for n, r in enumerate(rows) if r["kind"] == "evidence_attached")
    other_bus = copy.deepcopy(rows)
    other_bus[i]["details"]["evidence_refs"]["eb_ref"] = {"offset_kind": "kinesis_sequence", "topic": "t", "partition": "0",
                                                          "offset": "49650000000000000000000000000000000000000000000000"}
    other_bus[i]["details"]["evidence_refs"]["receipt_id"] = hex32("another admission")
    assert case_digest(other_bus) == case_digest(rows)
    other_decision = copy.deepcopy(rows)
    other_decision[i]["details"]["reason_codes"] = ["ANOTHER_REASON"]
    assert case_digest(other_decision) != case_digest(rows)


def test_both_digests_leave_out_the_run_scoped_ids_so_another_run_of_the_same_events_gives_the_same_values() -> None:
    rows = [e.row() for e in EVENTS]
    other_run = copy.deepcopy(rows)
    for n, row in enumerate(other_run):
        row["timeline_event_id"], row["case_id"] = hex32(f"other run event {n}"), hex32(f"other run case {row['case_id']}")
        if row["kind"] == "case_opened":
            row["details"]["case_subject_key"]["platform_run_id"] = "platform_20300101T000000Z"
        if row["kind"] == "evidence_attached":
            row["details"]["trigger_id"] = hex32(f"other trigger {n}")
            row["details"]["evidence_refs"]["decision_id"] = hex32(f"other decision {n}")
    assert case_digest(other_run) == case_digest(rows)
    moved = copy.deepcopy(rows)
    opened = next(r for r in moved if r["kind"] == "case_opened")
    opened["details"]["case_subject_key"]["event_id"] = hex32("another event")  # another subject: another case
    assert case_digest(moved) != case_digest(rows)
    labels = [a.row() for a in ASSERTIONS]
    relabelled = [r | {"assertion_id": hex32(f"x{n}"), "platform_run_id": "platform_20300101T000000Z"} for n, r in enumerate(labels)]
    assert label_digest(relabelled) == label_digest(labels)
