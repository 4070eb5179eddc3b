"""Run scope and safe commit positions (plain data, no bus)."""

from __future__ import annotations

import json

from runtime.bus.scope import CommitTracker, RunScope, record_run_id

P = ("topic", "0")


def test_record_run_id_reads_the_top_level_field_only() -> None:
    assert record_run_id(json.dumps({"platform_run_id": "r1"}).encode()) == "r1"
    assert record_run_id(json.dumps({"payload": {"platform_run_id": "r1"}}).encode()) is None
    assert record_run_id(b"\xff not json") is None
    assert record_run_id(b"[1, 2]") is None


def test_run_scope_counts_delivered_other_run_and_unscoped() -> None:
    scope = RunScope("r1")
    results = [scope.admits(v) for v in (b'{"platform_run_id": "r1"}', b'{"platform_run_id": "r2"}', b"x")]
    assert results == [True, False, False]
    assert scope.counts.as_dict() == {"delivered": 1, "skipped_other_run": 1, "skipped_unscoped": 1}
    assert RunScope(None).admits(b"anything") is True


def test_run_scope_hands_on_the_document_it_parsed_so_a_reader_parses_each_record_once() -> None:
    scope = RunScope("r1")
    admitted, document = scope.admit(b'{"platform_run_id": "r1", "payload": {"a": 1}}')
    assert admitted and document == {"platform_run_id": "r1", "payload": {"a": 1}}
    assert scope.admit(b'{"platform_run_id": "r2"}') == (False, None)
    assert RunScope(None).admit(b'{"platform_run_id": "r1"}') == (True, None)


def test_skipped_records_commit_only_up_to_the_first_outstanding_one() -> None:
    tracker = CommitTracker()
    tracker.skipped(P, 0)
    tracker.handed_out(P, 1)
    tracker.skipped(P, 2)
    assert tracker.due() == {P: 0}
    tracker.mark_committed(P, 0)
    assert tracker.due() == {}
    tracker.acknowledged(P, 1)
    assert tracker.due() == {P: 2}


def test_acknowledging_a_later_record_first_never_passes_an_earlier_one() -> None:
    tracker = CommitTracker()
    for position in (10, 20, 30):
        tracker.handed_out(P, position)
    tracker.acknowledged(P, 30)
    assert tracker.due() == {}
    tracker.acknowledged(P, 10)
    assert tracker.due() == {P: 10}
    tracker.mark_committed(P, 10)
    tracker.acknowledged(P, 20)
    assert tracker.due() == {P: 30}


def test_partitions_are_independent() -> None:
    tracker = CommitTracker()
    other = ("topic", "1")
    tracker.handed_out(P, 5)
    tracker.skipped(other, 7)
    assert tracker.due() == {other: 7}
