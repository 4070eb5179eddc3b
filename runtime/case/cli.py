"""`python -m runtime case list|show|assign|comment|act|start|close`: the investigators' case commands.

`list` prints the run's cases (the view folded from the timeline) as an 80-column table, filtered
by queue, status and outcome; `show` prints one case's state, the reasons that fired and its
timeline with each trigger's evidence chain by reference (decision, audit record, IG receipt,
eb_ref of the traffic event). The other commands each append one event through CM's writer
boundary with who (`--actor`) and when (`--at`, default now); `close` also asserts the case's
label through LS (runtime/case/cm/commands.py). Errors are one line with a code and the next step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from runtime.case.cli_support import open_database, require_run
from runtime.case.cm.domain import OUTCOMES, STATUSES, CaseState, TimelineEvent
from runtime.case.trigger.domain import QUEUES
from runtime.cli_errors import operator_errors
from runtime.errors import PlatformError
from runtime.worker.cli import RunIdOpt

app = typer.Typer(help="Case management: list, show and work the run's cases (every action is appended to the "
                       "case's timeline with who and when).", no_args_is_help=True)

CaseIdArg = Annotated[str, typer.Argument(help="case id, or a unique prefix of at least 8 characters (`case list`)")]
ActorOpt = Annotated[str, typer.Option(help="who does it (an investigator name, e.g. alice or alice@bank)")]
AtOpt = Annotated[str | None, typer.Option(help="when, RFC 3339 with a zone (default: now, UTC)")]
#: (header, width) of `case list`'s columns; with one space between them the table is 80 columns.
LIST_COLUMNS = (("CASE", 12), ("STATUS", 13), ("QUEUE", 16), ("OUTCOME", 15), ("OPENED (UTC)", 16), ("TRG", 3))


@app.callback()
def main() -> None:
    """Case commands."""


def _check_choice(value: str | None, allowed: Iterable[str], what: str) -> None:
    allowed = list(allowed)
    if value is not None and value not in allowed:
        raise PlatformError(f"{what} {value!r} is not one of {', '.join(allowed)}", code="CASE_FILTER_INVALID",
                            next_step=f"pass --{what} with one of {', '.join(allowed)}")


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def case_table(states: list[CaseState], *, wide: bool = False) -> str:
    """The `case list` table: one line per case, 80 columns (whole case ids with `wide`)."""
    columns = ((("CASE", 32),) if wide else LIST_COLUMNS[:1]) + LIST_COLUMNS[1:]
    lines = [" ".join(h.ljust(w) for h, w in columns).rstrip()]
    for s in states:
        opened = s.opened_at_utc[:16].replace("T", " ")
        values = (s.case_id if wide else s.case_id[:12], s.status, s.queue, s.outcome or "-", opened, str(len(s.trigger_ids)))
        lines.append(" ".join(_cell(v, w).ljust(w) for v, (_, w) in zip(values, columns, strict=True)).rstrip())
    return "\n".join(lines)


def _event_lines(event: TimelineEvent) -> list[str]:
    d = event.details
    head = f"{event.at_utc[:19]}Z  {event.kind:<17} {event.actor}"
    pad = " " * 22
    if event.kind == "case_opened":
        return [head]
    if event.kind == "evidence_attached":
        refs = d["evidence_refs"]
        eb = refs["eb_ref"]
        return [f"{head}  {d['outcome']} ({d['trigger_reason']}) -> {d['queue']}",
                f"{pad}reasons  {', '.join(d['reason_codes']) or '-'}",
                f"{pad}decision {refs['decision_id']}",
                f"{pad}audit    {refs['audit_record_id'] or '-'}",
                f"{pad}receipt  {refs['receipt_id']}",
                f"{pad}eb_ref   {eb['topic']}/{eb['partition']}@{eb['offset']}"]
    detail = {"assigned": lambda: f"to {d['assignee']}", "commented": lambda: repr(d["text"]),
              "action_taken": lambda: d["action"], "status_changed": lambda: f"{d['from']} -> {d['to']}",
              "closed": lambda: d["outcome"],
              "label_attached": lambda: f"{d.get('label_value')} ({d.get('source')}) assertion {d['assertion_id']}"}
    return [f"{head}  {detail[event.kind]()}"]


def case_text(state: CaseState, events: list[TimelineEvent]) -> str:
    """`case show`: the case's state, the reasons that fired, then its timeline with the evidence chain."""
    s = state.subject
    lines = [f"case      {state.case_id}",
             f"subject   {s.event_class} {s.event_id} (run {s.platform_run_id})",
             f"event at  {state.event_ts_utc}",
             f"status    {state.status}   queue {state.queue}   outcome {state.outcome or '-'}   "
             f"assignee {state.assignee or '-'}",
             f"reasons   {', '.join(state.reason_codes) or '-'}",
             f"triggers  {len(state.trigger_ids)}   decisions {len(state.decision_ids)}   "
             f"labels {len(state.label_assertion_ids)}   events {state.events}",
             "", "timeline (oldest first)"]
    for event in events:
        lines.extend(_event_lines(event))
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _act(platform_run_id: str, case_id: str, what: str, command: Callable[[Any, str, str], Any]) -> None:
    """Resolve the case, run `command(conn, run, case_id)` in one transaction, report what was appended."""
    from runtime.case.cm.commands import resolve_case_id
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        with open_database(load_settings(), f"case {what}") as db, db.transaction() as conn:
            whole = resolve_case_id(conn, platform_run_id, case_id)
            result = command(conn, platform_run_id, whole)
        events = getattr(result, "appended", None)
        if events is None:
            events = result.events
        if not events:
            typer.echo(f"case {whole}: {what} was already recorded; nothing appended")
            return
        for event in events:
            typer.echo(f"case {whole}: appended {event.kind} {event.timeline_event_id} by {event.actor} at {event.at_utc}")


@app.command("list")
def list_cases(
    platform_run_id: RunIdOpt,
    queue: Annotated[str | None, typer.Option(help=f"only this queue ({', '.join(QUEUES)})")] = None,
    status: Annotated[str | None, typer.Option(help=f"only this status ({', '.join(STATUSES)})")] = None,
    outcome: Annotated[str | None, typer.Option(help=f"only this outcome ({', '.join(OUTCOMES)})")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many cases (oldest opening first)")] = 50,
    wide: Annotated[bool, typer.Option("--wide", help="whole case ids (wider than 80 columns)")] = False,
) -> None:
    """List the run's cases as a table, oldest opening first, filtered by queue, status and outcome."""
    from runtime.case.cm.store import cases
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        _check_choice(queue, QUEUES, "queue")
        _check_choice(status, STATUSES, "status")
        _check_choice(outcome, OUTCOMES, "outcome")
        with open_database(load_settings(), "case list") as db, db.transaction() as conn:
            picked = cases(conn, platform_run_id, queue=queue, status=status, outcome=outcome)
        typer.echo(case_table(picked[:limit], wide=wide))
        typer.echo(f"{min(limit, len(picked))} of {len(picked)} case(s)")


@app.command("show")
def show(platform_run_id: RunIdOpt, case_id: CaseIdArg) -> None:
    """Show one case: state, the reasons that fired, the timeline with its evidence chain by reference."""
    from runtime.case.cm.commands import resolve_case_id
    from runtime.case.cm.domain import case_state
    from runtime.case.cm.store import case_events
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        with open_database(load_settings(), "case show") as db, db.transaction() as conn:
            events = case_events(conn, platform_run_id, resolve_case_id(conn, platform_run_id, case_id))
        typer.echo(case_text(case_state(events), events))


@app.command("assign")
def assign(platform_run_id: RunIdOpt, case_id: CaseIdArg, actor: ActorOpt,
           to: Annotated[str, typer.Option("--to", help="the investigator who takes the case")], at: AtOpt = None) -> None:
    """Assign the case to an investigator (an appended `assigned` event)."""
    from runtime.case.cm import commands

    _act(platform_run_id, case_id, "assign",
         lambda c, r, i: commands.assign(c, r, i, actor=actor, assignee=to, at=at or _now()))


@app.command("comment")
def comment(platform_run_id: RunIdOpt, case_id: CaseIdArg, actor: ActorOpt,
            text: Annotated[str, typer.Option(help="the note (1..2000 characters)")], at: AtOpt = None) -> None:
    """Add a note to the case (an appended `commented` event)."""
    from runtime.case.cm import commands

    _act(platform_run_id, case_id, "comment", lambda c, r, i: commands.comment(c, r, i, actor=actor, text=text, at=at or _now()))


@app.command("act")
def act(platform_run_id: RunIdOpt, case_id: CaseIdArg, actor: ActorOpt,
        action: Annotated[str, typer.Option(help="what was done, snake_case (contact_customer, block_card, ...)")],
        at: AtOpt = None) -> None:
    """Record an action taken on the case (an appended `action_taken` event)."""
    from runtime.case.cm import commands

    _act(platform_run_id, case_id, "act",
         lambda c, r, i: commands.take_action(c, r, i, actor=actor, action=action, at=at or _now()))


@app.command("start")
def start(platform_run_id: RunIdOpt, case_id: CaseIdArg, actor: ActorOpt, at: AtOpt = None) -> None:
    """Start investigating: move the case open -> investigating (an appended `status_changed` event)."""
    from runtime.case.cm import commands

    _act(platform_run_id, case_id, "start", lambda c, r, i: commands.start_investigation(c, r, i, actor=actor, at=at or _now()))


@app.command("close")
def close(platform_run_id: RunIdOpt, case_id: CaseIdArg, actor: ActorOpt,
          outcome: Annotated[str, typer.Option(help=f"the finding: {', '.join(OUTCOMES)}")], at: AtOpt = None) -> None:
    """Close an investigated case with an outcome; asserts its label through LS (confirmed_fraud -> fraud,
    false_positive -> legit, inconclusive -> inconclusive) and attaches it to the timeline."""
    from runtime.case.cm import commands

    with operator_errors():
        _check_choice(outcome, OUTCOMES, "outcome")
    _act(platform_run_id, case_id, "close", lambda c, r, i: commands.close(c, r, i, actor=actor, outcome=outcome, at=at or _now()))


@app.command("committed")
def committed(
    platform_run_id: RunIdOpt,
    wait: Annotated[float, typer.Option(min=0, max=3600, help="seconds without progress before it fails")] = 600.0,
) -> None:
    """P10's job: wait until CaseTrigger, CM and LS made the run's records durable (every triggered subject
    has its case, GREEN, dead letters 0 or explained), require triggers and labels, write case_summary.json
    and label_summary.json. Nothing is written on a failure (CASE_LABELS_* code and the next step)."""
    from runtime.case.committed import write_committed
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        written = write_committed(load_settings(), platform_run_id, wait_s=wait, progress=lambda line: typer.echo(line, err=True))
    typer.echo(f"P10 committed for {platform_run_id}: {', '.join(w.relative_path for w in written)}")
