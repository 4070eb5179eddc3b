"""CM's adapter to Postgres: the writer boundary of the append-only case timeline, and its reads.

Every append goes through `append_to_cases`: take each case's transaction-scoped advisory lock
(in case id order, so CM's worker and an operator's command never interleave on one case), read
the case's rows, rebuild its `CaseTimeline`, apply the domain step (triggers, or one operator
command), and insert what the timeline accepted with ON CONFLICT DO NOTHING. A refusal raises
before the insert, inside the caller's transaction: nothing is half-written. The state of a case
is never stored; `cases` and `case_view` fold it from the rows each time (runtime/case/cm/domain.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from runtime.case.cm.domain import (
    CaseNotOpen,
    CaseState,
    CaseTimeline,
    TimelineEvent,
    cases_from_events,
    select_cases,
    trigger_events,
)
from runtime.case.summaries import case_summary_body
from runtime.case.trigger.domain import CaseTrigger

_COLUMNS = ("timeline_event_id", "case_id", "kind", "actor", "at_utc", "details")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM cm_case_timeline"
T = TypeVar("T")


def _event(row: Sequence[Any]) -> TimelineEvent:
    return TimelineEvent.from_row(dict(zip(_COLUMNS, row, strict=True)))


def lock_cases(conn: Any, case_ids: Sequence[str]) -> None:
    """Serialise appends per case for the rest of the transaction (ordered, so two writers never deadlock)."""
    for case_id in sorted(set(case_ids)):
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", ("cm:" + case_id,))


def timelines(conn: Any, run: str, case_ids: Sequence[str]) -> dict[str, CaseTimeline]:
    """The stored timeline of each of `case_ids` (an empty one for a case with no rows)."""
    wanted = sorted(set(case_ids))
    rows = conn.execute(_SELECT + " WHERE platform_run_id = %s AND case_id = ANY(%s)", (run, wanted)).fetchall() if wanted else []
    by_case: dict[str, list[TimelineEvent]] = {c: [] for c in wanted}
    for row in rows:
        event = _event(row)
        by_case[event.case_id].append(event)
    return {c: CaseTimeline(events) for c, events in by_case.items()}


def insert_events(conn: Any, run: str, events: Sequence[TimelineEvent]) -> int:
    """Insert accepted timeline events (ON CONFLICT DO NOTHING); returns rows added."""
    if not events:
        return 0
    rows = conn.execute(
        "INSERT INTO cm_case_timeline (platform_run_id, timeline_event_id, case_id, kind, actor, at_utc, details)"
        " SELECT %s, i, c, k, a, t, d::jsonb FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[]) AS u(i, c, k, a, t, d) ON CONFLICT DO NOTHING RETURNING 1",
        (run, [e.timeline_event_id for e in events], [e.case_id for e in events], [e.kind for e in events],
         [e.actor for e in events], [e.at_utc for e in events], [json.dumps(e.details) for e in events]),
    ).fetchall()
    return len(rows)


def append_triggers(conn: Any, run: str, triggers: Sequence[CaseTrigger]) -> list[TimelineEvent]:
    """Open or join the case of each trigger (CM's intake); returns the events appended (none for a replay)."""
    if not triggers:
        return []
    lock_cases(conn, [t.case_id for t in triggers])
    held = timelines(conn, run, [t.case_id for t in triggers])
    appended: list[TimelineEvent] = []
    for trigger in triggers:
        appended.extend(trigger_events(trigger, held[trigger.case_id]))
    insert_events(conn, run, appended)
    return appended


@dataclass(frozen=True)
class CommandResult:
    """What one operator command appended to a case (empty when it repeated an earlier one) and what it returned."""

    appended: list[TimelineEvent]
    value: Any


def append_command(conn: Any, run: str, case_id: str, command: Callable[[CaseTimeline], T]) -> CommandResult:
    """Run one domain command (assign, comment, close, ...) on the stored timeline of `case_id` and
    append what it added. CASE_NOT_OPEN when no trigger opened the case."""
    lock_cases(conn, [case_id])
    timeline = timelines(conn, run, [case_id])[case_id]
    if timeline.state is None:
        raise CaseNotOpen(f"no case {case_id} in run {run}")
    before = {e.timeline_event_id for e in timeline.events}
    value = command(timeline)
    appended = [e for e in timeline.events if e.timeline_event_id not in before]
    insert_events(conn, run, appended)
    return CommandResult(appended, value)


def run_events(conn: Any, run: str) -> list[TimelineEvent]:
    """Every timeline event of the run (any order: the fold and the digest do not depend on it)."""
    return [_event(r) for r in conn.execute(_SELECT + " WHERE platform_run_id = %s ORDER BY timeline_event_id",
                                            (run,)).fetchall()]


def case_events(conn: Any, run: str, case_id: str) -> list[TimelineEvent]:
    """One case's timeline in canonical order (empty when there is no such case)."""
    return timelines(conn, run, [case_id])[case_id].events


def cases(conn: Any, run: str, *, queue: str | None = None, status: str | None = None,
          outcome: str | None = None) -> list[CaseState]:
    """The derived case view of the run, filtered, oldest opening first."""
    return select_cases(cases_from_events(run_events(conn, run)).values(), queue=queue, status=status, outcome=outcome)


def case_summary(conn: Any, run: str, *, triggers_published: int, dead_letters: int = 0) -> dict[str, Any]:
    """The body of case_labels/case_summary.json from the durable timeline: triggers processed, timeline
    events appended, cases by status/queue/outcome, exemplar case ids, case_digest."""
    return case_summary_body(run_events(conn, run), triggers_published=triggers_published, dead_letters=dead_letters)
