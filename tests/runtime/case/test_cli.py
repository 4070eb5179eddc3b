"""`python -m runtime case ...`: list in 80 columns, show with the evidence chain, and each action an
append through CM's writer boundary with who and when; closing asserts the label through LS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.case.cli import app, case_table
from runtime.case.cm.domain import CaseState
from runtime.case.cm.store import append_triggers, case_events, cases
from runtime.case.keys import CaseSubjectKey, LabelSubjectKey
from runtime.case.ls.store import label_as_of_stored, run_assertions
from runtime.case.trigger.domain import trigger_for
from runtime.db.postgres import Database
from tests.runtime.case.lane import admit
from tests.runtime.case.records import decision_record, hex32
from tests.support.events import random_run_id

COMMANDS = ("list", "show", "assign", "comment", "act", "start", "close")


@pytest.fixture
def world(runtime_dsn: str) -> Iterator[dict[str, Any]]:
    """A run with three cases opened by triggers (one of them joined by a second trigger)."""
    run = random_run_id()
    specs = [(1, 1, "CARD_TESTING_BURST"), (2, 2, "MULE_COLLECTOR"), (3, 3, "VELOCITY_CARD_10M"), (4, 1, "NEW_DEVICE_ABROAD")]
    triggers = [trigger_for(decision_record(n, event=e, reasons=[{"code": code}], platform_run_id=run)) for n, e, code in specs]
    with Database(runtime_dsn, name="case-cli", max_size=1) as db:
        with db.transaction() as conn:
            admit(conn, run, [hex32(("event", e)) for e in (1, 2, 3)])
            append_triggers(conn, run, [t for t in triggers if t is not None])
            ids = {s.subject.event_id: s.case_id for s in cases(conn, run)}
        yield {"run": run, "db": db, "env": {"FP_ENV": "local_parity", "FP_DB_DSN": runtime_dsn},
               "case": {e: ids[hex32(("event", e))] for e in (1, 2, 3)}}


def _cli(world: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(app, [args[0], "--platform-run-id", world["run"], *args[1:]], env=world["env"])


def test_every_command_has_help() -> None:
    for command in COMMANDS:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--platform-run-id" in result.output


def test_the_case_table_fits_80_columns_with_the_longest_values() -> None:
    subject = CaseSubjectKey("platform_20260105T000000Z", "traffic_fraud", hex32("e"))
    state = CaseState(case_id=subject.case_id, subject=subject, event_ts_utc="2026-01-05T10:00:00.000000Z",
                      opened_at_utc="2026-01-05T10:00:00.000000Z", status="investigating", queue="account_takeover",
                      outcome="confirmed_fraud", trigger_ids=tuple(hex32(i) for i in range(120)))
    lines = case_table([state]).splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) == 2
    assert lines[1].split() == [subject.case_id[:12], "investigating", "account_takeover", "confirmed_fraud",
                                "2026-01-05", "10:00", "120"]


def test_list_filters_by_queue_status_and_outcome(world: dict[str, Any]) -> None:
    everything = _cli(world, "list")
    assert everything.exit_code == 0, everything.output
    assert "3 of 3 case(s)" in everything.output and all(len(line) <= 80 for line in everything.output.splitlines())
    mule = _cli(world, "list", "--queue", "mule_transfer")
    assert world["case"][2][:12] in mule.output and "1 of 1" in mule.output
    assert "0 of 0" in _cli(world, "list", "--status", "closed").output
    bad = _cli(world, "list", "--status", "done")
    assert bad.exit_code == 1 and "CASE_FILTER_INVALID" in bad.output


def test_show_prints_the_reasons_and_the_evidence_chain_by_reference(world: dict[str, Any]) -> None:
    result = _cli(world, "show", world["case"][1][:10])
    assert result.exit_code == 0, result.output
    out = result.output
    assert world["case"][1] in out and "CARD_TESTING_BURST, NEW_DEVICE_ABROAD" in out and "queue card_testing" in out
    for n in (1, 4):
        assert hex32(("decision", n)) in out and hex32(("audit", n)) in out and hex32(("receipt", n)) in out
    assert "fp.bus.traffic.fraud.v1/0@1" in out and out.count("evidence_attached") == 2


def test_working_a_case_to_closure_appends_each_step_and_asserts_its_label_through_ls(world: dict[str, Any]) -> None:
    case = world["case"][2]
    steps = [("assign", case, "--actor", "lead", "--to", "alice", "--at", "2026-01-05T11:00:00Z"),
             ("start", case, "--actor", "alice", "--at", "2026-01-05T11:05:00Z"),
             ("comment", case, "--actor", "alice", "--text", "collector account seen before", "--at", "2026-01-05T11:06:00Z"),
             ("act", case, "--actor", "alice", "--action", "contact_customer", "--at", "2026-01-05T11:07:00Z"),
             ("close", case, "--actor", "alice", "--outcome", "confirmed_fraud", "--at", "2026-01-05T12:00:00Z")]
    for step in steps:
        result = _cli(world, *step)
        assert result.exit_code == 0 and "appended" in result.output, result.output
    subject = LabelSubjectKey(world["run"], hex32(("event", 2)), "fraud")
    with world["db"].transaction() as conn:
        events = case_events(conn, world["run"], case)
        (state,) = cases(conn, world["run"], status="closed")
        before = label_as_of_stored(conn, subject, "2026-01-05T11:59:59Z").value
        after = label_as_of_stored(conn, subject, "2026-01-05T12:00:00Z")
    assert [e.kind for e in events][2:] == ["assigned", "status_changed", "commented", "action_taken", "closed",
                                            "label_attached"]
    assert [(e.actor, e.at_utc[:19]) for e in events[2:4]] == [("lead", "2026-01-05T11:00:00"), ("alice", "2026-01-05T11:05:00")]
    assert state.outcome == "confirmed_fraud" and state.assignee == "alice" and len(state.label_assertion_ids) == 1
    assert (before, after.value, after.source) == ("unknown", "fraud", "case_closure")
    again = _cli(world, *steps[-1])
    assert again.exit_code == 0 and "nothing appended" in again.output
    other = _cli(world, "close", case, "--actor", "bob", "--outcome", "false_positive", "--at", "2026-01-05T13:00:00Z")
    assert other.exit_code == 1 and "CASE_MOVE_ILLEGAL" in other.output
    with world["db"].transaction() as conn:
        assert case_events(conn, world["run"], case) == events and len(run_assertions(conn, world["run"])) == 1


@pytest.mark.parametrize(("args", "code"), [
    (("close", "CASE", "--actor", "a", "--outcome", "confirmed_fraud", "--at", "2026-01-05T12:00:00Z"), "CASE_MOVE_ILLEGAL"),
    (("start", "CASE", "--actor", "a", "--at", "2025-01-01T00:00:00Z"), "CASE_TIMELINE_OUT_OF_ORDER"),
    (("assign", "CASE", "--actor", "bad actor!", "--to", "x", "--at", "2026-01-05T12:00:00Z"), "CASE_EVENT_INVALID"),
    (("close", "CASE", "--actor", "a", "--outcome", "guilty"), "CASE_FILTER_INVALID"),
    (("show", "0123456789abcdef"), "CASE_UNKNOWN"),
    (("show", "01"), "CASE_UNKNOWN"),
])
def test_a_refused_command_exits_1_with_its_code_and_appends_nothing(world: dict[str, Any], args: tuple[str, ...],
                                                                      code: str) -> None:
    case = world["case"][3]
    with world["db"].transaction() as conn:
        before = case_events(conn, world["run"], case)
    result = _cli(world, *(case if a == "CASE" else a for a in args))
    assert result.exit_code == 1 and code in result.output
    with world["db"].transaction() as conn:
        assert case_events(conn, world["run"], case) == before


def test_a_bad_run_id_is_refused_before_any_connection() -> None:
    result = CliRunner().invoke(app, ["list", "--platform-run-id", "yesterday"], env={"FP_ENV": "local_parity", "FP_DB_DSN": ""})
    assert result.exit_code == 1 and "RUN_ID_INVALID" in result.output
