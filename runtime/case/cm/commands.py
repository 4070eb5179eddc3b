"""The operator's case commands as transactions: each one an append through CM's writer boundary.

`assign`, `comment`, `take_action`, `start_investigation` and `close` run the domain command
(runtime/case/cm/domain.py) on the case's stored timeline under its lock (`append_command`).
Closing with an outcome asserts the case's label through LS's writer boundary
(`runtime.case.ls.store.append_assertions`, source `case_closure`) and records the accepted
assertion on the timeline (`label_attached`), all in the caller's one transaction: the case is
closed with its label or not at all. Every event carries who (`actor`) and when (`at`); repeating
a command with the same actor, time and details appends nothing. Case ids may be given as a
unique prefix, the way `case list` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.case.cm import domain
from runtime.case.cm.domain import TimelineEvent
from runtime.case.cm.store import CommandResult, append_command
from runtime.case.ls.domain import LabelAssertion
from runtime.case.ls.store import append_assertions
from runtime.errors import PermanentError

#: Characters of a case id `case list` shows; a command accepts any unique prefix at least this long.
SHORT_ID = 12
MIN_PREFIX = 8


class CaseUnknown(PermanentError):
    """No case of the run has this id (or id prefix)."""

    code = "CASE_UNKNOWN"
    next_step = "list the run's cases with `python -m runtime case list --platform-run-id ...` and copy an id"


class CaseIdAmbiguous(PermanentError):
    """A case id prefix that matches several cases."""

    code = "CASE_ID_AMBIGUOUS"
    next_step = "give more characters of the case id (`case list --wide` shows whole ids)"


def resolve_case_id(conn: Any, run: str, given: str) -> str:
    """The whole case id of `given` (a whole id or a unique prefix of at least MIN_PREFIX characters)."""
    if len(given) < MIN_PREFIX or not all(c in "0123456789abcdef" for c in given):
        raise CaseUnknown(f"{given!r} is not a case id (at least {MIN_PREFIX} lower-case hex characters)")
    rows = conn.execute("SELECT DISTINCT case_id FROM cm_case_timeline WHERE platform_run_id = %s AND case_id LIKE %s"
                        " LIMIT 2", (run, given + "%")).fetchall()
    if not rows:
        raise CaseUnknown(f"no case {given} in run {run}")
    if len(rows) > 1:
        raise CaseIdAmbiguous(f"{given} matches several cases of run {run}")
    return str(rows[0][0])


def assign(conn: Any, run: str, case_id: str, *, actor: str, assignee: str, at: Any) -> CommandResult:
    """Give the case to `assignee`."""
    return append_command(conn, run, case_id, lambda t: domain.assign(t, actor=actor, assignee=assignee, at=at))


def comment(conn: Any, run: str, case_id: str, *, actor: str, text: str, at: Any) -> CommandResult:
    """Add a note to the case."""
    return append_command(conn, run, case_id, lambda t: domain.comment(t, actor=actor, text=text, at=at))


def take_action(conn: Any, run: str, case_id: str, *, actor: str, action: str, at: Any) -> CommandResult:
    """Record something done about the case (contact_customer, block_card, ...)."""
    return append_command(conn, run, case_id, lambda t: domain.take_action(t, actor=actor, action=action, at=at))


def start_investigation(conn: Any, run: str, case_id: str, *, actor: str, at: Any) -> CommandResult:
    """Move the case open -> investigating."""
    return append_command(conn, run, case_id, lambda t: domain.start_investigation(t, actor=actor, at=at))


@dataclass(frozen=True)
class Closing:
    """What closing a case appended: its timeline events and the label assertion LS holds for it."""

    events: list[TimelineEvent]
    label: LabelAssertion
    label_appended: bool


def close(conn: Any, run: str, case_id: str, *, actor: str, outcome: str, at: Any) -> Closing:
    """Close the case (investigating -> closed) with `outcome`, assert its label through LS, attach it."""
    closed = append_command(conn, run, case_id, lambda t: domain.close(t, actor=actor, outcome=outcome, at=at))
    event, label = closed.value
    appended = append_assertions(conn, [label], allowed_sources=["case_closure"])
    attached = append_command(conn, run, case_id, lambda t: domain.attach_label(t, label, actor=actor, at=event.at_utc))
    return Closing([*closed.appended, *attached.appended], label, appended.appended == 1)
