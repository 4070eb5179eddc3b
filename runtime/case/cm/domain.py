"""CM's domain: the append-only case timeline, and the case state as a pure fold over it.

A case is keyed by its CaseSubjectKey (case id = H(key)); every trigger for the subject joins the
same case. What happens to a case is a timeline of events that are only ever appended:

    case_opened        the first trigger for the subject (who: case_trigger)
    evidence_attached  one per trigger: receipt id, eb_ref, decision id, audit record id, reasons
    assigned           an investigator takes the case
    commented          a note
    action_taken       something done about it (contact_customer, block_card, ...)
    status_changed     open -> investigating
    closed             investigating -> closed, with an outcome
    label_attached     the label assertion the closing produced, as LS accepted it

Each event has a deterministic id (H(case, kind, basis)), who (`actor`) and when (`at_utc`), so
a redelivered trigger or a repeated command appends nothing; the same id with other content is
refused. Status moves only open -> investigating -> closed. An event that breaks the moves, that
is earlier than the last move, or that targets a case not opened is refused with a specific
error, and nothing is rewritten. Evidence is timeless: it may join a case in any state and its
time (the decision's) may precede the last move. Cases sit in the queue their triggers' reasons
route to (the highest-priority queue over all triggers, so the answer does not depend on which
trigger came first). Closing with an outcome yields the label assertion CM hands to LS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.case.keys import CaseSubjectKey, LabelSubjectKey, hex_id, name, norm_ts, stable_id
from runtime.case.ls.domain import FRAUD, LabelAssertion, assertion
from runtime.case.trigger.domain import QUEUES, CaseTrigger
from runtime.errors import PermanentError

KINDS = ("case_opened", "evidence_attached", "assigned", "status_changed", "action_taken", "commented", "closed",
         "label_attached")
#: Order of kinds that share a timestamp, so the fold's order is total and arrival-independent.
_KIND_RANK = {k: i for i, k in enumerate(KINDS)}
STATUSES = ("open", "investigating", "closed")
OUTCOMES = ("confirmed_fraud", "false_positive", "inconclusive")
#: Closing outcome -> the label value CM asserts (source case_closure).
OUTCOME_LABEL = {"confirmed_fraud": "fraud", "false_positive": "legit", "inconclusive": "inconclusive"}
#: The statuses in which each kind may be appended (evidence and comments at any time).
ALLOWED_IN: dict[str, frozenset[str]] = {
    "evidence_attached": frozenset(STATUSES),
    "commented": frozenset(STATUSES),
    "label_attached": frozenset({"closed"}),
    "assigned": frozenset({"open", "investigating"}),
    "action_taken": frozenset({"open", "investigating"}),
    "status_changed": frozenset({"open"}),
    "closed": frozenset({"investigating"}),
}
SYSTEM_ACTOR = "case_trigger"
MAX_COMMENT_CHARS = 2000

_ACTOR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}", re.ASCII)


class CaseEventInvalid(PermanentError):
    """A timeline event or command breaks its contract (unknown kind, bad actor, time or details)."""

    code = "CASE_EVENT_INVALID"
    next_step = "nothing was appended; fix the command or the producer (event kinds and fields: docs/case_labels.md)"


class CaseNotOpen(PermanentError):
    """An event targets a case whose timeline has no case_opened (no trigger opened it)."""

    code = "CASE_NOT_OPEN"
    next_step = "cases are opened by triggers only: check the case id (`python -m runtime case list`) or wait for its trigger"


class CaseMoveIllegal(PermanentError):
    """A status move outside open -> investigating -> closed, or an event the case's status forbids."""

    code = "CASE_MOVE_ILLEGAL"
    next_step = "nothing was appended; read the case's status and timeline, then issue the move that follows it"


class TimelineOutOfOrder(PermanentError):
    """An event dated before the case was opened or before its last move: the timeline is never reordered."""

    code = "CASE_TIMELINE_OUT_OF_ORDER"
    next_step = "nothing was appended; date the event at or after the case's last move (see its timeline)"


class TimelineConflict(PermanentError):
    """An event with the id of a stored one but other content: history is never rewritten."""

    code = "CASE_TIMELINE_CONFLICT"
    next_step = "the stored event stands; append a new event (a comment or a move) instead of changing it"


@dataclass(frozen=True)
class TimelineEvent:
    """One appended fact of a case's timeline, as CM stores it."""

    timeline_event_id: str
    case_id: str
    kind: str
    actor: str
    at_utc: str
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The flat row a store inserts (and `case_digest` hashes)."""
        return {"timeline_event_id": self.timeline_event_id, "case_id": self.case_id, "kind": self.kind,
                "actor": self.actor, "at_utc": self.at_utc, "details": dict(self.details)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TimelineEvent:
        """An event read back from a stored row; its id is recomputed and must match."""
        event = timeline_event(row["case_id"], row["kind"], actor=row["actor"], at=row["at_utc"],
                               details=row.get("details") or {})
        if event.timeline_event_id != row["timeline_event_id"]:
            raise CaseEventInvalid(f"stored timeline event {row['timeline_event_id']} does not hash to its own fields")
        return event


def _basis(kind: str, actor: str, at_utc: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """What makes an event of `kind` unique within its case (its idempotency key)."""
    if kind in ("case_opened", "closed"):
        return {}  # once per case
    if kind == "evidence_attached":
        return {"trigger_id": details.get("trigger_id")}
    if kind == "label_attached":
        return {"assertion_id": details.get("assertion_id")}
    return {"actor": actor, "at_utc": at_utc, "details": dict(details)}


def _check_details(kind: str, details: Mapping[str, Any]) -> None:
    def need(key: str) -> Any:
        if key not in details:
            raise CaseEventInvalid(f"{kind} needs details.{key}")
        return details[key]

    if kind == "case_opened":
        CaseSubjectKey.from_dict(need("case_subject_key"))
        norm_ts(need("event_ts_utc"), "event_ts_utc", CaseEventInvalid)
    elif kind == "evidence_attached":
        hex_id(need("trigger_id"), "trigger_id", CaseEventInvalid)
        if need("queue") not in QUEUES:
            raise CaseEventInvalid(f"queue {details['queue']!r} is not one of {list(QUEUES)}")
        refs = need("evidence_refs")
        if not isinstance(refs, Mapping) or set(refs) != {"receipt_id", "eb_ref", "decision_id", "audit_record_id"}:
            raise CaseEventInvalid("evidence_refs must hold exactly receipt_id, eb_ref, decision_id, audit_record_id")
        need("reason_codes")
    elif kind == "assigned":
        if not isinstance(need("assignee"), str) or not _ACTOR_RE.fullmatch(details["assignee"]):
            raise CaseEventInvalid(f"assignee {details['assignee']!r} is not an actor name")
    elif kind == "commented":
        text = need("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_COMMENT_CHARS:
            raise CaseEventInvalid(f"a comment is 1..{MAX_COMMENT_CHARS} characters of text")
    elif kind == "action_taken":
        name(need("action"), "action", CaseEventInvalid)
    elif kind == "status_changed":
        if (need("from"), need("to")) != ("open", "investigating"):
            raise CaseMoveIllegal(f"status may move open -> investigating -> closed only, not "
                                  f"{details['from']} -> {details['to']}")
    elif kind == "closed":
        if need("outcome") not in OUTCOMES:
            raise CaseEventInvalid(f"outcome {details['outcome']!r} is not one of {list(OUTCOMES)}")
    elif kind == "label_attached":
        hex_id(need("assertion_id"), "assertion_id", CaseEventInvalid)


def timeline_event(case_id: str, kind: str, *, actor: str, at: Any, details: Mapping[str, Any] | None = None) -> TimelineEvent:
    """A checked timeline event with its deterministic id."""
    hex_id(case_id, "case_id", CaseEventInvalid)
    if kind not in KINDS:
        raise CaseEventInvalid(f"timeline event kind {kind!r} is not one of {list(KINDS)}")
    if not isinstance(actor, str) or not _ACTOR_RE.fullmatch(actor):
        raise CaseEventInvalid(f"actor {actor!r} is not an actor name (who did it)")
    at_utc = norm_ts(at, "at_utc", CaseEventInvalid)
    details = dict(details or {})
    _check_details(kind, details)
    event_id = stable_id("case_timeline_event", {"case_id": case_id, "kind": kind,
                                                 "basis": _basis(kind, actor, at_utc, details)})
    return TimelineEvent(event_id, case_id, kind, actor, at_utc, details)


@dataclass(frozen=True)
class CaseState:
    """The current state of a case: a view folded from its timeline, never stored as truth."""

    case_id: str
    subject: CaseSubjectKey
    event_ts_utc: str
    opened_at_utc: str
    status: str = "open"
    #: The highest-priority queue of the case's triggers (general_review, the last, until one attaches).
    queue: str = QUEUES[-1]
    outcome: str | None = None
    assignee: str | None = None
    closed_at_utc: str | None = None
    last_move_at_utc: str = ""
    trigger_ids: tuple[str, ...] = ()
    decision_ids: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    label_assertion_ids: tuple[str, ...] = ()
    events: int = 0


def _order_key(event: TimelineEvent) -> tuple[int, str, int, str]:
    return (0 if event.kind == "case_opened" else 1, event.at_utc, _KIND_RANK[event.kind], event.timeline_event_id)


def _sorted_union(current: tuple[str, ...], more: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(current) | set(more)))


def apply_event(state: CaseState | None, event: TimelineEvent) -> CaseState:
    """The state after `event`, or the specific error why `event` may not follow `state`."""
    if event.kind == "case_opened":
        if state is not None:
            raise CaseMoveIllegal(f"case {event.case_id} is already open")
        subject = CaseSubjectKey.from_dict(event.details["case_subject_key"])
        if subject.case_id != event.case_id:
            raise CaseEventInvalid(f"case id {event.case_id} is not H(case subject key) {subject.case_id}")
        return CaseState(case_id=event.case_id, subject=subject, event_ts_utc=event.details["event_ts_utc"],
                         opened_at_utc=event.at_utc, last_move_at_utc=event.at_utc, events=1)
    if state is None:
        raise CaseNotOpen(f"case {event.case_id} has not been opened: {event.kind} refused")
    if event.case_id != state.case_id:
        raise CaseEventInvalid(f"event of case {event.case_id} offered to case {state.case_id}")
    if state.status not in ALLOWED_IN[event.kind]:
        raise CaseMoveIllegal(f"{event.kind} is not allowed on a case that is {state.status} "
                              f"(allowed when {sorted(ALLOWED_IN[event.kind])})")
    if event.kind != "evidence_attached" and event.at_utc < state.last_move_at_utc:
        raise TimelineOutOfOrder(f"{event.kind} at {event.at_utc} is earlier than the case's last move at "
                                 f"{state.last_move_at_utc}")
    d = event.details
    state = replace(state, events=state.events + 1)
    if event.kind == "evidence_attached":
        return replace(state, trigger_ids=_sorted_union(state.trigger_ids, [d["trigger_id"]]),
                       decision_ids=_sorted_union(state.decision_ids, [d["evidence_refs"]["decision_id"]]),
                       reason_codes=_sorted_union(state.reason_codes, d["reason_codes"]),
                       queue=min(state.queue, d["queue"], key=QUEUES.index))
    state = replace(state, last_move_at_utc=event.at_utc)
    if event.kind == "assigned":
        return replace(state, assignee=d["assignee"])
    if event.kind == "action_taken":
        return replace(state, actions=(*state.actions, d["action"]))
    if event.kind == "status_changed":
        return replace(state, status=d["to"])
    if event.kind == "closed":
        return replace(state, status="closed", outcome=d["outcome"], closed_at_utc=event.at_utc)
    if event.kind == "label_attached":
        return replace(state, label_assertion_ids=_sorted_union(state.label_assertion_ids, [d["assertion_id"]]))
    return state  # commented


def case_state(events: Iterable[TimelineEvent]) -> CaseState:
    """The current state of one case: a pure fold over its timeline in canonical order (so a store
    may return the rows in any order). An empty or inconsistent timeline raises."""
    state: CaseState | None = None
    for event in sorted(events, key=_order_key):
        state = apply_event(state, event)
    if state is None:
        raise CaseNotOpen("an empty timeline is not a case")
    return state


class CaseTimeline:
    """One case's timeline in memory: appends with idempotence, ordering and move checks.

    A store does the same around its table: read the case's rows, `append` here, insert what it
    returns with ON CONFLICT (timeline_event_id) DO NOTHING - all inside the worker's transaction."""

    def __init__(self, events: Iterable[TimelineEvent] = ()):
        self._events: dict[str, TimelineEvent] = {}
        self.state: CaseState | None = None
        stored = list(events)
        if stored:
            self.state = case_state(stored)
            self._events = {e.timeline_event_id: e for e in stored}

    @property
    def events(self) -> list[TimelineEvent]:
        """The timeline in canonical order."""
        return sorted(self._events.values(), key=_order_key)

    def append(self, event: TimelineEvent) -> bool:
        """Append `event`; False when that very event is already there (a replay), an error when it
        conflicts with a stored event or may not follow the case's state. Nothing is ever rewritten."""
        held = self._events.get(event.timeline_event_id)
        if held is not None:
            if held == event:
                return False
            if event.kind == "closed":
                raise CaseMoveIllegal(f"case {event.case_id} is already closed as {held.details['outcome']}")
            raise TimelineConflict(f"timeline event {event.timeline_event_id} ({event.kind}) is stored with other content")
        self.state = apply_event(self.state, event)
        self._events[event.timeline_event_id] = event
        return True


def trigger_events(trigger: CaseTrigger, timeline: CaseTimeline) -> list[TimelineEvent]:
    """The events a case trigger appends: case_opened when the subject has no case yet, then its
    evidence_attached; a replayed trigger appends nothing. Returns what was appended."""
    case_id = trigger.case_id
    out = []
    if timeline.state is None:
        opened = timeline_event(case_id, "case_opened", actor=SYSTEM_ACTOR, at=trigger.decided_at_utc,
                                details={"case_subject_key": trigger.subject.as_dict(),
                                         "event_ts_utc": trigger.event_ts_utc})
        if timeline.append(opened):
            out.append(opened)
    elif timeline.state.case_id != case_id:
        raise CaseEventInvalid(f"trigger for case {case_id} offered to case {timeline.state.case_id}")
    evidence = timeline_event(case_id, "evidence_attached", actor=SYSTEM_ACTOR, at=trigger.decided_at_utc,
                              details={"trigger_id": trigger.trigger_id, "queue": trigger.queue,
                                       "outcome": trigger.outcome, "trigger_reason": trigger.trigger_reason,
                                       "reason_codes": list(trigger.reason_codes),
                                       "evidence_refs": trigger.evidence_refs()})
    if timeline.append(evidence):
        out.append(evidence)
    return out


def _command(timeline: CaseTimeline, kind: str, actor: str, at: Any, details: Mapping[str, Any]) -> TimelineEvent:
    if timeline.state is None:
        raise CaseNotOpen(f"no case to {kind}: the timeline is empty")
    event = timeline_event(timeline.state.case_id, kind, actor=actor, at=at, details=details)
    timeline.append(event)
    return event


def assign(timeline: CaseTimeline, *, actor: str, assignee: str, at: Any) -> TimelineEvent:
    """Append `assigned` (an operator gives the case to `assignee`)."""
    return _command(timeline, "assigned", actor, at, {"assignee": assignee})


def comment(timeline: CaseTimeline, *, actor: str, text: str, at: Any) -> TimelineEvent:
    """Append `commented`."""
    return _command(timeline, "commented", actor, at, {"text": text})


def take_action(timeline: CaseTimeline, *, actor: str, action: str, at: Any) -> TimelineEvent:
    """Append `action_taken` (what the investigator did, e.g. contact_customer)."""
    return _command(timeline, "action_taken", actor, at, {"action": action})


def start_investigation(timeline: CaseTimeline, *, actor: str, at: Any) -> TimelineEvent:
    """Append `status_changed` open -> investigating."""
    current = timeline.state.status if timeline.state else "open"
    return _command(timeline, "status_changed", actor, at, {"from": current, "to": "investigating"})


def close(timeline: CaseTimeline, *, actor: str, outcome: str, at: Any) -> tuple[TimelineEvent, LabelAssertion]:
    """Append `closed` with `outcome` and return the label assertion LS is to append for the case's
    subject (source case_closure, observed at the closing, effective at the event's time). After LS
    accepted it, `attach_label` records it on the timeline."""
    event = _command(timeline, "closed", actor, at, {"outcome": outcome})
    state = timeline.state
    assert state is not None
    label = assertion(LabelSubjectKey(state.subject.platform_run_id, state.subject.event_id, FRAUD),
                      source="case_closure", value=OUTCOME_LABEL[outcome], observed_at=event.at_utc,
                      effective_at=state.event_ts_utc,
                      evidence={"case_id": state.case_id, "closed_event_id": event.timeline_event_id, "actor": actor})
    return event, label


def attach_label(timeline: CaseTimeline, label: LabelAssertion, *, actor: str, at: Any) -> TimelineEvent:
    """Append `label_attached`: the label assertion LS accepted for this case."""
    return _command(timeline, "label_attached", actor, at,
                    {"assertion_id": label.assertion_id, "source": label.source, "label_value": label.value})


def cases_from_events(events: Iterable[TimelineEvent]) -> dict[str, CaseState]:
    """Every case's state from a run's timeline rows in any order (the derived case view)."""
    by_case: dict[str, list[TimelineEvent]] = {}
    for event in events:
        by_case.setdefault(event.case_id, []).append(event)
    return {case_id: case_state(evs) for case_id, evs in sorted(by_case.items())}


def select_cases(cases: Iterable[CaseState], *, queue: str | None = None, status: str | None = None,
                 outcome: str | None = None) -> list[CaseState]:
    """Cases filtered by queue, status and outcome, oldest opening first (what `python -m runtime case list` shows)."""
    picked = [c for c in cases if (queue is None or c.queue == queue) and (status is None or c.status == status)
              and (outcome is None or c.outcome == outcome)]
    return sorted(picked, key=lambda c: (c.opened_at_utc, c.case_id))

