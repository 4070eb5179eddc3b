"""LS's domain: append-only label assertions and `label_as_of`, what was known about a subject at a time.

A label assertion says "source S, having observed at time O, asserts that subject K (run, event,
label type) has value V since effective time E". Assertions are never changed: a new fact is a
new assertion, and `label_as_of(assertions, subject, t)` answers from those observed at or
before t only, so later learning never leaks into the past. Its id is H(label subject key,
source, observed time): the same observation replayed is the same row (idempotent insert); the
same id with another content is refused (`LabelConflict`), nothing is rewritten.

Sources and what each may assert (a source not allowed is refused with `LabelSourceNotAllowed`):

    bank_view     fraud         the bank confirmed fraud (chargeback) after its reporting delay
    case_closure  fraud, legit, inconclusive   an investigator closed the case with an outcome
    dispute       disputed      the customer disputed the transaction

Conflicting assertions known at t are resolved by authority, then recency: bank_view (3) >
case_closure (2) > dispute (1); within one authority the latest observation wins; ties go to the
greatest assertion id so the answer never depends on arrival order. An `inconclusive` closure
answers only when nothing decisive is known.

The intake `bank_view_assertions` is the only code in the platform that reads the oracle's truth
views: it turns `s4_flow_bank_view_6B` rows into assertions on every event of the flow that this
run admitted, observed at the bank's report time (never before the event itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.case.keys import LabelSubjectKey, hex_id, norm_ts, stable_id
from runtime.errors import PermanentError

#: The label types LS keeps (the `label_type` part of LABEL_SUBJECT_KEY_FIELDS).
LABEL_TYPES = ("fraud",)
FRAUD = "fraud"
UNKNOWN = "unknown"
#: Source -> (authority rank, values it may assert).
SOURCES: dict[str, tuple[int, frozenset[str]]] = {
    "bank_view": (3, frozenset({"fraud"})),
    "case_closure": (2, frozenset({"fraud", "legit", "inconclusive"})),
    "dispute": (1, frozenset({"disputed"})),
}
LABEL_VALUES = ("fraud", "legit", "disputed", "inconclusive")
#: Bank view labels -> (source, value); NO_CLAIM means the bank learned nothing: no assertion.
BANK_LABELS: dict[str, tuple[str, str] | None] = {
    "FRAUD_CONFIRMED": ("bank_view", "fraud"),
    "CUSTOMER_DISPUTE": ("dispute", "disputed"),
    "NO_CLAIM": None,
}


class LabelInvalid(PermanentError):
    """A label assertion breaks its contract: unknown label type or value, bad time, value its source may not assert."""

    code = "LABEL_INVALID"
    next_step = "the assertion is refused and nothing is written; fix its producer (values per source: docs/case_labels.md)"


class LabelSourceNotAllowed(PermanentError):
    """A label assertion comes from a source LS does not accept."""

    code = "LABEL_SOURCE_NOT_ALLOWED"
    next_step = "labels enter only through LS's intake from an allowed source (bank_view, case_closure, dispute)"


class LabelSubjectUnknown(PermanentError):
    """A label assertion names an event this run never admitted."""

    code = "LABEL_SUBJECT_UNKNOWN"
    next_step = "nothing is written; check the assertion's platform_run_id and event_id against the run's receipts"


class LabelConflict(PermanentError):
    """An assertion with the id of a stored one but another content: history is never rewritten."""

    code = "LABEL_CONFLICT"
    next_step = "assert a new fact with its own observed time instead of changing a stored assertion"


@dataclass(frozen=True)
class LabelAssertion:
    """One append-only fact about a label subject, as LS stores it."""

    assertion_id: str
    subject: LabelSubjectKey
    source: str
    value: str
    observed_at_utc: str
    effective_at_utc: str
    #: References to where the fact came from (flow id and bank label, or case id and closing event).
    evidence: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The flat row a store inserts (and `label_digest` hashes)."""
        return {"assertion_id": self.assertion_id, **self.subject.as_dict(), "source": self.source,
                "label_value": self.value, "observed_at_utc": self.observed_at_utc,
                "effective_at_utc": self.effective_at_utc, "evidence": dict(self.evidence)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LabelAssertion:
        """An assertion read back from a stored row; the id is recomputed and must match."""
        made = assertion(
            LabelSubjectKey(row["platform_run_id"], row["event_id"], row["label_type"]), source=row["source"],
            value=row["label_value"], observed_at=row["observed_at_utc"], effective_at=row["effective_at_utc"],
            evidence=row.get("evidence") or {})
        if made.assertion_id != row["assertion_id"]:
            raise LabelInvalid(f"stored assertion {row['assertion_id']} does not hash to its own fields")
        return made


def assertion_id(subject: LabelSubjectKey, source: str, observed_at_utc: str) -> str:
    """assertion id = H(label subject key, source, observed time)."""
    return stable_id("label_assertion", {"subject": subject.as_dict(), "source": source,
                                         "observed_at_utc": observed_at_utc})


def assertion(subject: LabelSubjectKey, *, source: str, value: str, observed_at: Any, effective_at: Any,
              evidence: Mapping[str, Any] | None = None,
              allowed_sources: Iterable[str] | None = None) -> LabelAssertion:
    """A checked label assertion: allowed source, a value that source may assert, effective <= observed."""
    allowed = set(SOURCES) if allowed_sources is None else set(allowed_sources) & set(SOURCES)
    if source not in allowed:
        raise LabelSourceNotAllowed(f"label source {source!r} is not allowed; allowed: {sorted(allowed)}")
    if subject.label_type not in LABEL_TYPES:
        raise LabelInvalid(f"label_type {subject.label_type!r} is not one of {list(LABEL_TYPES)}")
    if value not in SOURCES[source][1]:
        raise LabelInvalid(f"source {source} may assert {sorted(SOURCES[source][1])}, not {value!r}")
    observed = norm_ts(observed_at, "observed_at_utc", LabelInvalid)
    effective = norm_ts(effective_at, "effective_at_utc", LabelInvalid)
    if observed < effective:
        raise LabelInvalid(f"observed at {observed} before the fact it asserts took effect ({effective}): "
                           "a label cannot be known before its event happened")
    return LabelAssertion(assertion_id(subject, source, observed), subject, source, value, observed, effective,
                          dict(evidence or {}))


@dataclass(frozen=True)
class LabelAnswer:
    """What `label_as_of` knew: the value (or `unknown`) and the assertion it rests on."""

    value: str
    assertion_id: str | None = None
    source: str | None = None
    observed_at_utc: str | None = None


def _rank(a: LabelAssertion) -> tuple[int, int, str, str]:
    decisive = 0 if a.value == "inconclusive" else 1
    return (decisive, SOURCES[a.source][0], a.observed_at_utc, a.assertion_id)


def label_as_of(assertions: Iterable[LabelAssertion], subject: LabelSubjectKey, t: Any) -> LabelAnswer:
    """What was known at time `t` about `subject`: `unknown` before any assertion was observed, else
    the winning assertion's value (authority, then latest observation, then id; see the module doc)."""
    at = norm_ts(t, "t", LabelInvalid)
    known = [a for a in assertions if a.subject == subject and a.observed_at_utc <= at]
    if not known:
        return LabelAnswer(UNKNOWN)
    best = max(known, key=_rank)
    return LabelAnswer(best.value, best.assertion_id, best.source, best.observed_at_utc)


@dataclass
class LabelBook:
    """The assertions LS holds for a run, appended through `append` only (the store's writer boundary
    does the same with an insert ON CONFLICT (assertion_id) DO NOTHING and a content check)."""

    assertions: dict[str, LabelAssertion] = field(default_factory=dict)
    #: When set, a predicate telling whether a subject's event was admitted in this run.
    is_known_subject: Callable[[LabelSubjectKey], bool] | None = None
    _by_subject: dict[LabelSubjectKey, list[LabelAssertion]] = field(default_factory=dict, repr=False)

    def append(self, new: LabelAssertion) -> bool:
        """Append `new`; False when the very same assertion is already held (a replay), errors for
        an unknown subject or a different assertion under the same id."""
        if self.is_known_subject is not None and not self.is_known_subject(new.subject):
            raise LabelSubjectUnknown(f"event {new.subject.event_id} of {new.subject.platform_run_id} was not "
                                      "admitted in this run")
        held = self.assertions.get(new.assertion_id)
        if held is not None:
            if held != new:
                raise LabelConflict(f"assertion {new.assertion_id} is stored with other content "
                                    f"({held.value} from {held.source}); refused {new.value}")
            return False
        self.assertions[new.assertion_id] = new
        self._by_subject.setdefault(new.subject, []).append(new)
        return True

    def as_of(self, subject: LabelSubjectKey, t: Any) -> LabelAnswer:
        """`label_as_of` over the held assertions of `subject`."""
        return label_as_of(self._by_subject.get(subject, ()), subject, t)


@dataclass(frozen=True)
class FlowEvent:
    """One event of a flow as the run admitted it: what a bank view row is spread over."""

    event_id: str
    ts_utc: str


@dataclass
class IntakeResult:
    """The assertions a bank view intake produced and what it passed over, by reason."""

    assertions: list[LabelAssertion] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def bank_view_assertions(rows: Iterable[Mapping[str, Any]], flow_events: Mapping[str, Sequence[FlowEvent]],
                         platform_run_id: str, *, allowed_sources: Iterable[str] | None = None) -> IntakeResult:
    """Assertions from `s4_flow_bank_view_6B` rows for the events of each flow this run admitted.

    FRAUD_CONFIRMED -> bank_view/fraud, CUSTOMER_DISPUTE -> dispute/disputed, each observed at
    `reported_at_utc` (or at the event, if the bank reported the flow before a later event of it
    happened) and effective at the event's time; NO_CLAIM asserts nothing. Rows of flows the run
    did not admit are skipped (`not_in_run`), a malformed row is LabelInvalid."""
    out = IntakeResult()
    for row in rows:
        flow_id, bank_label = row.get("flow_id"), row.get("bank_label")
        if not isinstance(flow_id, str) or not flow_id:
            raise LabelInvalid(f"bank view row has no flow_id: {dict(row)!r}")
        if bank_label not in BANK_LABELS:
            raise LabelInvalid(f"bank view row of {flow_id} has bank_label {bank_label!r}, not one of {list(BANK_LABELS)}")
        mapped = BANK_LABELS[bank_label]
        if mapped is None:
            out.skipped["no_claim"] += 1
            continue
        if row.get("reported_at_utc") is None:
            raise LabelInvalid(f"bank view row of {flow_id} is {bank_label} without reported_at_utc")
        reported = norm_ts(row["reported_at_utc"], "reported_at_utc", LabelInvalid)
        events = flow_events.get(flow_id)
        if not events:
            out.skipped["not_in_run"] += 1
            continue
        source, value = mapped
        for event in events:
            effective = norm_ts(event.ts_utc, "event ts_utc", LabelInvalid)
            subject = LabelSubjectKey(platform_run_id, hex_id(event.event_id, "event_id", LabelInvalid), FRAUD)
            evidence = {"flow_id": flow_id, "bank_label": bank_label,
                        "detection_delay_hours": row.get("detection_delay_hours")}
            out.assertions.append(assertion(subject, source=source, value=value, observed_at=max(reported, effective),
                                            effective_at=effective, evidence=evidence,
                                            allowed_sources=allowed_sources))
    return out

