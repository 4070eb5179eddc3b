"""LS's writer boundary on Postgres: idempotent appends, refusals before anything is written,
`label_as_of` over the durable assertions, and append-only tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import LabelConflict, LabelSourceNotAllowed, LabelSubjectUnknown, assertion
from runtime.case.ls.store import append_assertions, label_as_of_stored, label_summary, run_assertions
from runtime.case.summaries import label_summary_body
from runtime.db.postgres import Database
from tests.runtime.case.lane import admit
from tests.runtime.case.records import hex32
from tests.runtime.decision.support import assert_truth_tables_refuse_change
from tests.support.events import random_run_id

EVENT_AT = "2026-01-05T10:00:00Z"


@pytest.fixture
def db(runtime_dsn: str) -> Iterator[Database]:
    with Database(runtime_dsn, name="ls-store", max_size=1) as database:
        yield database


def _fraud(run: str, n: int, *, observed: str = "2026-01-08T10:00:00Z", source: str = "bank_view", value: str = "fraud",
           **kw: Any) -> Any:
    return assertion(LabelSubjectKey(run, hex32(("event", n)), "fraud"), source=source, value=value,
                     observed_at=observed, effective_at=EVENT_AT, evidence={"flow_id": f"flw_{n}"}, **kw)


def test_an_append_is_idempotent_under_the_assertion_id(db: Database) -> None:
    run = random_run_id()
    batch = [_fraud(run, 1), _fraud(run, 2), _fraud(run, 2, observed="2026-01-09T00:00:00Z")]
    with db.transaction() as conn:
        admit(conn, run, [hex32(("event", 1)), hex32(("event", 2))])
        first = append_assertions(conn, batch)
        again = append_assertions(conn, [*batch, batch[0]])
        held = run_assertions(conn, run)
    assert (first.appended, first.already_held) == (3, 0)
    assert (again.appended, again.already_held) == (0, 4)
    assert sorted(a.assertion_id for a in held) == sorted(a.assertion_id for a in batch)
    assert held == sorted(batch, key=lambda a: a.assertion_id)


@pytest.mark.parametrize("bad", ["unknown_subject", "source_not_allowed", "conflict"])
def test_a_refused_batch_writes_nothing(db: Database, bad: str) -> None:
    run = random_run_id()
    good = _fraud(run, 1)
    with db.transaction() as conn:
        admit(conn, run, [hex32(("event", 1))])
        if bad == "conflict":
            append_assertions(conn, [good])
            other = good.__class__(**{**good.__dict__, "evidence": {"flow_id": "flw_forged"}})
            with pytest.raises(LabelConflict):
                append_assertions(conn, [_fraud(run, 1, observed="2026-01-09T00:00:00Z"), other])
            assert run_assertions(conn, run) == [good]
            return
        if bad == "unknown_subject":
            with pytest.raises(LabelSubjectUnknown) as e:
                append_assertions(conn, [good, _fraud(run, 99)])
            assert e.value.code == "LABEL_SUBJECT_UNKNOWN"
        else:
            with pytest.raises(LabelSourceNotAllowed):
                append_assertions(conn, [good, _fraud(run, 1, source="dispute", value="disputed",
                                                      observed="2026-01-06T00:00:00Z")], allowed_sources=["bank_view"])
        assert run_assertions(conn, run) == []


def test_a_subject_admitted_in_another_run_is_unknown_in_this_one(db: Database) -> None:
    run, other = random_run_id(), random_run_id()
    with db.transaction() as conn:
        admit(conn, other, [hex32(("event", 1))])
        with pytest.raises(LabelSubjectUnknown):
            append_assertions(conn, [_fraud(run, 1)])


def test_label_as_of_reads_only_what_was_observed_by_then(db: Database) -> None:
    run = random_run_id()
    subject = LabelSubjectKey(run, hex32(("event", 1)), "fraud")
    with db.transaction() as conn:
        admit(conn, run, [subject.event_id])
        append_assertions(conn, [_fraud(run, 1, source="dispute", value="disputed", observed="2026-01-06T00:00:00Z"),
                                 _fraud(run, 1, observed="2026-01-08T10:00:00Z")])
        answers = [label_as_of_stored(conn, subject, t).value
                   for t in ("2026-01-05T12:00:00Z", "2026-01-06T00:00:00Z", "2026-01-08T09:59:59Z", "2026-01-08T10:00:00Z")]
        summary = label_summary(conn, run)
        held = run_assertions(conn, run)
    assert answers == ["unknown", "disputed", "disputed", "fraud"]
    assert summary == label_summary_body(held)
    assert summary["assertions_by_source"] == {"bank_view": 1, "case_closure": 0, "dispute": 1}
    assert summary["as_of_range"] == {"first_observed_utc": "2026-01-06T00:00:00.000000Z",
                                      "last_observed_utc": "2026-01-08T10:00:00.000000Z"}


def test_label_assertions_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("ls_label_assertions",))
