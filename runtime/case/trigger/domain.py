"""CaseTrigger's domain: which decisions need a human, and the case trigger each one becomes.

CaseTrigger reads the decision lane's `decision_response` records. A decision needs a case when
its outcome is one the trigger policy names (REVIEW and DECLINE by default), when it fired a
reason the policy marks, or when the decision itself says `case_required`. The trigger carries
the case subject key, the case id it joins, the queue its reasons route it to, and references to
its evidence (receipt id, eb_ref, decision id, audit record id) - never a copy of the payload.

The trigger id is H(decision id, case subject key): a replayed or redelivered decision yields the
same trigger, which a store inserts with ON CONFLICT DO NOTHING and `TriggerBook` recognises, so
nothing new is published. A decision record that breaks the contract below, or that names a
decision the lane never produced, is refused with a specific PermanentError (dead-lettered).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.case.keys import CaseSubjectKey, hex_id, norm_ts, stable_id
from runtime.errors import PermanentError

#: Outcomes of a decision (issue 13's policy thresholds).
OUTCOMES = ("APPROVE", "STEP_UP", "REVIEW", "DECLINE")
#: Outcomes that open a case unless the policy says otherwise.
DEFAULT_TRIGGER_OUTCOMES = frozenset({"REVIEW", "DECLINE"})

#: Queues in priority order: a case whose triggers route to several queues sits in the first.
QUEUES = ("mule_transfer", "card_testing", "account_takeover", "amount_anomaly", "velocity", "degraded",
          "general_review")
#: Reason-code fragments -> queue. Routing by fragment keeps it stable when the policy renames a
#: rule within its family (CARD_TESTING_BURST, CARD_TESTING_SMALL_AMOUNTS ... -> card_testing).
DEFAULT_QUEUE_ROUTES: tuple[tuple[str, str], ...] = (
    ("MULE", "mule_transfer"), ("COLLECTOR", "mule_transfer"), ("P2P", "mule_transfer"), ("ROUND", "mule_transfer"),
    ("CARD_TESTING", "card_testing"), ("SMALL_AMOUNT", "card_testing"),
    ("TAKEOVER", "account_takeover"), ("NEW_DEVICE", "account_takeover"), ("ABROAD", "account_takeover"),
    ("IP_COUNTRY", "account_takeover"),
    ("AMOUNT", "amount_anomaly"), ("HABIT", "amount_anomaly"),
    ("VELOCITY", "velocity"), ("BURST", "velocity"),
    ("MISSING", "degraded"), ("LATE", "degraded"), ("DEGRADE", "degraded"), ("POSTURE", "degraded"),
)
FALLBACK_QUEUE = "general_review"

#: Distinct reason codes a decision may carry (the trigger schema's maxItems).
MAX_REASONS = 64
_REASON_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}", re.ASCII)
_EB_REF_FIELDS = ("topic", "partition", "offset")


class DecisionRecordInvalid(PermanentError):
    """A decision record CaseTrigger cannot read: a field is missing or malformed."""

    code = "CASE_TRIGGER_DECISION_INVALID"
    next_step = ("the decision record is dead-lettered with its eb_ref and reason; fix DF so decision_response "
                 "payloads carry the fields docs/case_labels.md lists")


class DecisionUnknown(PermanentError):
    """A trigger was asked for a decision the decision lane never recorded (no such decision id)."""

    code = "CASE_TRIGGER_DECISION_UNKNOWN"
    next_step = ("nothing is triggered for it; check that the audit/decision topics belong to this run and that "
                 "DLA recorded the decision before the reference was published")


class CaseTriggerInvalid(PermanentError):
    """A case trigger record CM cannot read: a field is missing, malformed or its ids do not add up."""

    code = "CASE_TRIGGER_INVALID"
    next_step = ("the trigger is dead-lettered with its eb_ref and reason; only CaseTrigger publishes to "
                 "the case topic (FP_BUS_CASE_TRIGGERS_V1): fix it or find the other writer")


@dataclass(frozen=True)
class DecisionRecord:
    """The part of a decision record CaseTrigger needs (references only, no traffic payload)."""

    decision_id: str
    subject: CaseSubjectKey
    event_ts_utc: str
    outcome: str
    reason_codes: tuple[str, ...]
    decided_at_utc: str
    eb_ref: dict[str, Any]
    receipt_id: str
    audit_record_id: str | None = None
    case_required: bool = False


@dataclass(frozen=True)
class TriggerPolicy:
    """What needs a human: outcomes, marked reasons, and how reasons route to queues."""

    outcomes: frozenset[str] = DEFAULT_TRIGGER_OUTCOMES
    marked_reasons: frozenset[str] = frozenset()
    routes: tuple[tuple[str, str], ...] = DEFAULT_QUEUE_ROUTES

    def __post_init__(self) -> None:
        unknown = set(self.outcomes) - set(OUTCOMES)
        if unknown:
            raise DecisionRecordInvalid(f"trigger policy names unknown outcomes {sorted(unknown)}",
                                        next_step=f"use outcomes from {list(OUTCOMES)}")
        bad = [q for _, q in self.routes if q not in QUEUES]
        if bad:
            raise DecisionRecordInvalid(f"trigger policy routes to unknown queues {bad}",
                                        next_step=f"use queues from {list(QUEUES)}")

    def trigger_reason(self, decision: DecisionRecord) -> str | None:
        """Why `decision` needs a case (`outcome:REVIEW`, `reason:X`, `case_required`), or None."""
        if decision.outcome in self.outcomes:
            return f"outcome:{decision.outcome}"
        marked = sorted(set(decision.reason_codes) & self.marked_reasons)
        if marked:
            return f"reason:{marked[0]}"
        if decision.case_required:
            return "case_required"
        return None

    def queue_for(self, reason_codes: Iterable[str]) -> str:
        """The queue the reasons route to: the highest-priority queue any reason matches, else general_review."""
        hits = {queue for code in reason_codes for fragment, queue in self.routes if fragment in code}
        return min(hits, key=QUEUES.index) if hits else FALLBACK_QUEUE


def _reason_codes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecisionRecordInvalid(f"reasons is not a list: {value!r}")
    codes = []
    for item in value:
        code = item.get("code") if isinstance(item, Mapping) else item
        if not isinstance(code, str) or not _REASON_RE.fullmatch(code):
            raise DecisionRecordInvalid(f"reason {item!r} has no UPPER_SNAKE reason code")
        codes.append(code)
    unique = tuple(dict.fromkeys(codes))  # a reason fired twice is one reason; order kept
    if len(unique) > MAX_REASONS:
        raise DecisionRecordInvalid(f"{len(unique)} distinct reasons; a decision carries at most {MAX_REASONS}")
    return unique


def _eb_ref(value: Any, error: type[PermanentError]) -> dict[str, Any]:
    if not isinstance(value, Mapping) or any(f not in value for f in _EB_REF_FIELDS):
        raise error(f"eb_ref must be an object with {list(_EB_REF_FIELDS)}: {value!r}")
    if not isinstance(value["topic"], str) or not value["topic"]:
        raise error(f"eb_ref.topic is not a topic name: {value['topic']!r}")
    for f in ("partition", "offset"):
        if not isinstance(value[f], int | str) or isinstance(value[f], bool) or value[f] == "":
            raise error(f"eb_ref.{f} is not an integer or a sequence string: {value[f]!r}")
    out = {f: value[f] for f in _EB_REF_FIELDS}
    if "offset_kind" in value:
        out["offset_kind"] = value["offset_kind"]
    return out


def read_decision(record: Any) -> DecisionRecord:
    """A decision_response payload as a DecisionRecord; anything malformed is DecisionRecordInvalid."""
    if not isinstance(record, Mapping):
        raise DecisionRecordInvalid(f"decision record is not an object: {type(record).__name__}")
    missing = [f for f in ("decision_id", "platform_run_id", "event_class", "event_id", "outcome", "reasons",
                           "decided_at_utc", "eb_ref", "receipt_id") if f not in record]
    if "event_ts_utc" not in record and "ts_utc" not in record:
        missing.append("event_ts_utc")
    if missing:
        raise DecisionRecordInvalid(f"decision record lacks {missing}")
    try:
        subject = CaseSubjectKey(record["platform_run_id"], record["event_class"], record["event_id"])
    except PermanentError as e:
        raise DecisionRecordInvalid(f"decision record's case subject is malformed: {e.message}") from e
    outcome = record["outcome"]
    if outcome not in OUTCOMES:
        raise DecisionRecordInvalid(f"outcome {outcome!r} is not one of {list(OUTCOMES)}")
    audit = record.get("audit_record_id")
    case_required = record.get("case_required", False)
    if not isinstance(case_required, bool):
        raise DecisionRecordInvalid(f"case_required is not a boolean: {case_required!r}")
    return DecisionRecord(
        decision_id=hex_id(record["decision_id"], "decision_id", DecisionRecordInvalid),
        subject=subject,
        event_ts_utc=norm_ts(record.get("event_ts_utc", record.get("ts_utc")), "event_ts_utc", DecisionRecordInvalid),
        outcome=outcome,
        reason_codes=_reason_codes(record["reasons"]),
        decided_at_utc=norm_ts(record["decided_at_utc"], "decided_at_utc", DecisionRecordInvalid),
        eb_ref=_eb_ref(record["eb_ref"], DecisionRecordInvalid),
        receipt_id=hex_id(record["receipt_id"], "receipt_id", DecisionRecordInvalid),
        audit_record_id=None if audit is None else hex_id(audit, "audit_record_id", DecisionRecordInvalid),
        case_required=case_required,
    )


@dataclass(frozen=True)
class CaseTrigger:
    """One decision that needs a human: what CaseTrigger publishes to the case topic (FP_BUS_CASE_TRIGGERS_V1)."""

    trigger_id: str
    subject: CaseSubjectKey
    decision_id: str
    outcome: str
    reason_codes: tuple[str, ...]
    trigger_reason: str
    queue: str
    event_ts_utc: str
    decided_at_utc: str
    eb_ref: dict[str, Any]
    receipt_id: str
    audit_record_id: str | None = None

    @property
    def case_id(self) -> str:
        """The case this trigger opens or joins: H(case subject key)."""
        return self.subject.case_id

    def evidence_refs(self) -> dict[str, Any]:
        """The references CM attaches as evidence (never a payload copy)."""
        return {"receipt_id": self.receipt_id, "eb_ref": dict(self.eb_ref), "decision_id": self.decision_id,
                "audit_record_id": self.audit_record_id}

    def payload(self) -> dict[str, Any]:
        """The trigger as the payload of a `case_trigger` envelope (schemas/events/payloads/case_trigger.schema.json)."""
        return {
            "trigger_id": self.trigger_id,
            "case_id": self.case_id,
            "case_subject_key": self.subject.as_dict(),
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "reason_codes": list(self.reason_codes),
            "trigger_reason": self.trigger_reason,
            "queue": self.queue,
            "event_ts_utc": self.event_ts_utc,
            "decided_at_utc": self.decided_at_utc,
            "evidence_refs": self.evidence_refs(),
        }


def trigger_id(decision_id: str, subject: CaseSubjectKey) -> str:
    """The stable trigger id of a decision: one decision, one trigger, however often it is replayed."""
    return stable_id("case_trigger", {"decision_id": decision_id, "subject": subject.as_dict()})


def trigger_for(record: Any, policy: TriggerPolicy | None = None, *,
                known_decisions: Container[str] | None = None) -> CaseTrigger | None:
    """The case trigger of a decision record, or None when the decision needs no human.

    `known_decisions` (the decision ids the lane recorded, e.g. DLA's index) makes a reference to
    any other decision a DecisionUnknown error instead of a trigger."""
    policy = policy or TriggerPolicy()
    decision = read_decision(record)
    if known_decisions is not None and decision.decision_id not in known_decisions:
        raise DecisionUnknown(f"decision {decision.decision_id} is not a decision of run "
                              f"{decision.subject.platform_run_id}")
    reason = policy.trigger_reason(decision)
    if reason is None:
        return None
    return CaseTrigger(
        trigger_id=trigger_id(decision.decision_id, decision.subject),
        subject=decision.subject,
        decision_id=decision.decision_id,
        outcome=decision.outcome,
        reason_codes=decision.reason_codes,
        trigger_reason=reason,
        queue=policy.queue_for(decision.reason_codes),
        event_ts_utc=decision.event_ts_utc,
        decided_at_utc=decision.decided_at_utc,
        eb_ref=decision.eb_ref,
        receipt_id=decision.receipt_id,
        audit_record_id=decision.audit_record_id,
    )


def read_trigger(payload: Any) -> CaseTrigger:
    """A case_trigger payload back as a CaseTrigger (CM's intake); ids are recomputed and must match."""
    if not isinstance(payload, Mapping):
        raise CaseTriggerInvalid(f"case trigger is not an object: {type(payload).__name__}")
    required = ("trigger_id", "case_id", "case_subject_key", "decision_id", "outcome", "reason_codes",
                "trigger_reason", "queue", "event_ts_utc", "decided_at_utc", "evidence_refs")
    missing = [f for f in required if f not in payload]
    if missing:
        raise CaseTriggerInvalid(f"case trigger lacks {missing}")
    try:
        subject = CaseSubjectKey.from_dict(payload["case_subject_key"])
    except PermanentError as e:
        raise CaseTriggerInvalid(f"case_subject_key is malformed: {e.message}") from e
    refs = payload["evidence_refs"]
    if not isinstance(refs, Mapping):
        raise CaseTriggerInvalid(f"evidence_refs is not an object: {refs!r}")
    decision_id = hex_id(payload["decision_id"], "decision_id", CaseTriggerInvalid)
    if refs.get("decision_id") != decision_id:
        raise CaseTriggerInvalid("evidence_refs.decision_id differs from decision_id")
    if payload["outcome"] not in OUTCOMES:
        raise CaseTriggerInvalid(f"outcome {payload['outcome']!r} is not one of {list(OUTCOMES)}")
    if payload["queue"] not in QUEUES:
        raise CaseTriggerInvalid(f"queue {payload['queue']!r} is not one of {list(QUEUES)}")
    if not isinstance(payload["trigger_reason"], str) or not payload["trigger_reason"]:
        raise CaseTriggerInvalid(f"trigger_reason is empty: {payload['trigger_reason']!r}")
    try:
        codes = _reason_codes(payload["reason_codes"])
    except DecisionRecordInvalid as e:
        raise CaseTriggerInvalid(e.message) from e
    audit = refs.get("audit_record_id")
    trigger = CaseTrigger(
        trigger_id=hex_id(payload["trigger_id"], "trigger_id", CaseTriggerInvalid),
        subject=subject,
        decision_id=decision_id,
        outcome=payload["outcome"],
        reason_codes=codes,
        trigger_reason=payload["trigger_reason"],
        queue=payload["queue"],
        event_ts_utc=norm_ts(payload["event_ts_utc"], "event_ts_utc", CaseTriggerInvalid),
        decided_at_utc=norm_ts(payload["decided_at_utc"], "decided_at_utc", CaseTriggerInvalid),
        eb_ref=_eb_ref(refs.get("eb_ref"), CaseTriggerInvalid),
        receipt_id=hex_id(refs.get("receipt_id"), "evidence_refs.receipt_id", CaseTriggerInvalid),
        audit_record_id=None if audit is None else hex_id(audit, "evidence_refs.audit_record_id", CaseTriggerInvalid),
    )
    if trigger.trigger_id != trigger_id(decision_id, subject):
        raise CaseTriggerInvalid(f"trigger_id {trigger.trigger_id} is not H(decision, subject) of its own fields")
    if payload["case_id"] != trigger.case_id:
        raise CaseTriggerInvalid(f"case_id {payload['case_id']!r} is not H(case subject key) {trigger.case_id}")
    return trigger


@dataclass
class TriggerBook:
    """The trigger ids already published: a replayed decision triggers nothing new.

    The store keeps the same set as a table keyed by trigger_id (insert ON CONFLICT DO NOTHING);
    `admit` answers what that insert would."""

    seen: set[str] = field(default_factory=set)

    def admit(self, trigger: CaseTrigger) -> bool:
        """True the first time a trigger id is offered (publish it), False for a replay (publish nothing)."""
        if trigger.trigger_id in self.seen:
            return False
        self.seen.add(trigger.trigger_id)
        return True
