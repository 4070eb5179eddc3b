"""Reconciliation: intended vs observed counts at every hop of the spine, as equations.

The reporter closes a run only when every event is accounted for at every hop: WSP emitted ->
IG receipts by outcome -> records on the topics -> each consumer group's processed + skipped +
dead-lettered -> decisions -> intents -> outcomes -> audit records -> case triggers -> cases ->
labels. This module is the pure part: it takes the counts the reporter gathered (plain integers,
each named) and turns them into `reconciliation.json`. A hop holds when intended == observed;
otherwise it is still ok only when a named explanation accounts for exactly the difference (for
example the P4 ingest probe, which IG admits but WSP never emitted). A hop that neither holds nor is
explained fails the gate and is named in `failed_hops`. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The explanation of a hop that differs for no known reason (it accounts for nothing, so the hop fails).
UNEXPLAINED = "UNEXPLAINED: no known cause accounts for the difference"

#: The hop kinds every closed run reconciles, in the order the records flow.
HOP_KINDS = (
    "wsp_to_ig",
    "ig_to_topics",
    "topic_to_consumer",
    "consumer_to_decisions",
    "decisions_to_intents",
    "intents_to_outcomes",
    "outcomes_to_audit",
    "audit_to_case_triggers",
    "case_triggers_to_cases",
    "cases_to_labels",
)


@dataclass(frozen=True)
class Explanation:
    """Why a hop's observed side differs from its intended side, and by how much."""

    reason: str
    #: The part of (intended - observed) this reason accounts for (negative when observed is larger).
    accounts_for: int
    source: str | None = None

    def document(self) -> dict[str, Any]:
        """The explanation as reconciliation.json writes it."""
        doc: dict[str, Any] = {"reason": self.reason, "accounts_for": self.accounts_for}
        if self.source is not None:
            doc["source"] = self.source
        return doc


@dataclass(frozen=True)
class Hop:
    """One equation of the spine: `intended` must equal the sum of the observed `terms`."""

    hop: str
    hop_kind: str
    from_stage: str
    to_stage: str
    equation: str
    intended: int
    terms: Mapping[str, int]
    topics: Sequence[str] = ()
    consumer_group: str | None = None
    explanations: Sequence[Explanation] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.hop_kind not in HOP_KINDS:
            raise ValueError(f"unknown hop kind {self.hop_kind!r}")
        if self.intended < 0 or any(v < 0 for v in self.terms.values()):
            raise ValueError(f"hop {self.hop}: counts cannot be negative")

    @property
    def observed(self) -> int:
        """The sum of the observed terms."""
        return sum(self.terms.values())

    @property
    def difference(self) -> int:
        """intended - observed."""
        return self.intended - self.observed

    @property
    def holds(self) -> bool:
        """True when the equation holds without any explanation."""
        return self.difference == 0

    @property
    def explanation(self) -> Explanation | None:
        """The explanations of this hop folded into one (None when the hop needs none)."""
        if self.holds:
            return None
        if not self.explanations:
            return Explanation(UNEXPLAINED, 0)
        if len(self.explanations) == 1:
            return self.explanations[0]
        return Explanation("; ".join(e.reason for e in self.explanations),
                           sum(e.accounts_for for e in self.explanations),
                           "; ".join(e.source for e in self.explanations if e.source) or None)

    @property
    def ok(self) -> bool:
        """Holds, or its explanations account for exactly the difference."""
        explanation = self.explanation
        return self.holds or (explanation is not None and explanation.accounts_for == self.difference)

    def document(self) -> dict[str, Any]:
        """The hop as reconciliation.json writes it."""
        explanation = self.explanation
        return {
            "hop": self.hop, "hop_kind": self.hop_kind, "from_stage": self.from_stage, "to_stage": self.to_stage,
            "consumer_group": self.consumer_group, "topics": list(self.topics), "equation": self.equation,
            "intended": self.intended, "observed": self.observed, "terms": dict(sorted(self.terms.items())),
            "difference": self.difference, "holds": self.holds, "ok": self.ok,
            "explanation": explanation.document() if explanation is not None else None,
        }


def reconciliation(hops: Sequence[Hop]) -> dict[str, Any]:
    """The body of reconciliation.json (status, hops, failed_hops) for the run's hops.

    Hops that leave out a kind cannot be reconciled at all (a plane that never ran has no counts):
    that is refused, so such a run is never closed."""
    names = [h.hop for h in hops]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"hop names must be unique: {', '.join(duplicates)}")
    present = {h.hop_kind for h in hops}
    missing = [kind for kind in HOP_KINDS if kind not in present]
    if missing:
        raise ValueError(f"no counts for hop kind(s) {', '.join(missing)}")
    failed = [h.hop for h in hops if not h.ok]
    return {"status": "FAIL" if failed else "PASS", "hops": [h.document() for h in hops], "failed_hops": failed}


def failure_summary(document: Mapping[str, Any]) -> str:
    """One line per failed hop, for the operator: its equation and its numbers."""
    by_name = {h["hop"]: h for h in document.get("hops", [])}
    lines = []
    for name in document.get("failed_hops", []):
        hop = by_name[name]
        lines.append(f"{name}: {hop['equation']}: intended {hop['intended']}, observed {hop['observed']}"
                         f" ({', '.join(f'{k}={v}' for k, v in hop['terms'].items())})")
    return "\n".join(lines)
