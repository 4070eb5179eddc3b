"""LS's adapter to Postgres: the writer boundary of the append-only label assertions, and its reads.

`append_assertions` is the only code that inserts into `ls_label_assertions`; LS's own intakes
call it (the bank view job, `runtime/case/ls/intake.py`) and so does CM's closing of a case, in
the transaction that appends the `closed` event (docs/decisions.md, "Case and labels"). It checks
each assertion like `LabelBook.append` does, against the run's durable state: the subject must be
an event IG admitted in the run (`ig_receipts`), the source allowed, and an id already stored must
hold the very same assertion. A refusal raises before anything is inserted, so a batch is written
whole or not at all. Reads fold the stored rows through the pure domain (`label_as_of`,
`label_summary_body`), so the durable answer is the in-memory one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import (
    SOURCES,
    LabelAnswer,
    LabelAssertion,
    LabelConflict,
    LabelSourceNotAllowed,
    LabelSubjectUnknown,
    label_as_of,
)
from runtime.case.summaries import label_summary_body

_COLUMNS = ("assertion_id", "platform_run_id", "event_id", "label_type", "source", "label_value", "observed_at_utc",
            "effective_at_utc", "evidence")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM ls_label_assertions"


@dataclass(frozen=True)
class AppendResult:
    """What one call of the writer boundary did: assertions appended and already held (replays)."""

    appended: int
    already_held: int


def admitted_event_ids(conn: Any, platform_run_id: str, event_ids: Iterable[str]) -> set[str]:
    """The subset of `event_ids` IG admitted in the run (its ADMIT receipts): the subjects LS may label."""
    wanted = sorted(set(event_ids))
    if not wanted:
        return set()
    rows = conn.execute("SELECT DISTINCT event_id FROM ig_receipts WHERE platform_run_id = %s AND outcome = 'ADMIT'"
                        " AND event_id = ANY(%s)", (platform_run_id, wanted)).fetchall()
    return {str(r[0]) for r in rows}


def _row(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_COLUMNS, row, strict=True))


def append_assertions(conn: Any, assertions: Sequence[LabelAssertion], *,
                      allowed_sources: Iterable[str] | None = None) -> AppendResult:
    """Append `assertions` inside the caller's transaction (LS's writer boundary).

    Refuses, before inserting anything: a source not in `allowed_sources` (default: every source LS
    knows) with LABEL_SOURCE_NOT_ALLOWED, a subject IG did not admit in its run with
    LABEL_SUBJECT_UNKNOWN, an id stored with other content with LABEL_CONFLICT."""
    if not assertions:
        return AppendResult(0, 0)
    allowed = set(SOURCES) if allowed_sources is None else set(allowed_sources) & set(SOURCES)
    for a in assertions:
        if a.source not in allowed:
            raise LabelSourceNotAllowed(f"label source {a.source!r} is not allowed here; allowed: {sorted(allowed)}")
    by_run: dict[str, list[LabelAssertion]] = {}
    for a in assertions:
        by_run.setdefault(a.subject.platform_run_id, []).append(a)
    for run, held in by_run.items():
        known = admitted_event_ids(conn, run, (a.subject.event_id for a in held))
        unknown = sorted({a.subject.event_id for a in held} - known)
        if unknown:
            raise LabelSubjectUnknown(f"{len(unknown)} label subject(s) were not admitted in {run}, e.g. event {unknown[0]}")
    unique: dict[tuple[str, str], LabelAssertion] = {}
    for a in assertions:
        key = (a.subject.platform_run_id, a.assertion_id)
        if unique.setdefault(key, a) != a:
            raise LabelConflict(f"assertion {a.assertion_id} is offered twice with different content")
    stored = stored_assertions(conn, list(unique))
    for key, a in unique.items():
        held_row = stored.get(key)
        if held_row is not None and held_row != a:
            raise LabelConflict(f"assertion {a.assertion_id} is stored with other content ({held_row.value} from "
                                f"{held_row.source}); refused {a.value}")
    fresh = [a for key, a in unique.items() if key not in stored]
    if fresh:
        conn.cursor().executemany(
            "INSERT INTO ls_label_assertions (" + ", ".join(_COLUMNS) + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(a.assertion_id, a.subject.platform_run_id, a.subject.event_id, a.subject.label_type, a.source, a.value,
              a.observed_at_utc, a.effective_at_utc, Jsonb(a.evidence)) for a in fresh])
    return AppendResult(len(fresh), len(assertions) - len(fresh))


def stored_assertions(conn: Any, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LabelAssertion]:
    """The stored assertions of (run, assertion id) `keys`, read back through the domain (ids re-checked)."""
    if not keys:
        return {}
    rows = conn.execute(_SELECT + " JOIN unnest(%s::text[], %s::text[]) AS u(r, i)"
                        " ON platform_run_id = u.r AND assertion_id = u.i",
                        ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    out = {}
    for row in rows:
        a = LabelAssertion.from_row(_row(row))
        out[(a.subject.platform_run_id, a.assertion_id)] = a
    return out


def assertions_of(conn: Any, subject: LabelSubjectKey) -> list[LabelAssertion]:
    """Every stored assertion about `subject`."""
    rows = conn.execute(_SELECT + " WHERE platform_run_id = %s AND event_id = %s AND label_type = %s"
                        " ORDER BY assertion_id", (subject.platform_run_id, subject.event_id, subject.label_type)).fetchall()
    return [LabelAssertion.from_row(_row(r)) for r in rows]


def label_as_of_stored(conn: Any, subject: LabelSubjectKey, t: Any) -> LabelAnswer:
    """`label_as_of(subject, t)` over LS's durable assertions: what was known at `t` (never later learning)."""
    return label_as_of(assertions_of(conn, subject), subject, t)


def run_assertions(conn: Any, platform_run_id: str) -> list[LabelAssertion]:
    """Every assertion of the run, in id order (what label_digest and the P10 label summary cover)."""
    rows = conn.execute(_SELECT + " WHERE platform_run_id = %s ORDER BY assertion_id", (platform_run_id,)).fetchall()
    return [LabelAssertion.from_row(_row(r)) for r in rows]


def label_summary(conn: Any, platform_run_id: str, *, dead_letters: int = 0) -> dict[str, Any]:
    """The body of case_labels/label_summary.json from the durable assertions: counts by source and
    label, the observed-time range and label_digest (runtime/case/summaries.py)."""
    return label_summary_body(run_assertions(conn, platform_run_id), dead_letters=dead_letters)
