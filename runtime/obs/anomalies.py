"""The run's anomalies by kind, with where each count comes from: `obs/anomaly_summary.json`.

Kinds: ANOMALY, QUARANTINE and PUBLISH_AMBIGUOUS (IG receipts), DEAD_LETTER (stream workers),
LATE_EVENT (OFP/IEG/CSFB applied an event behind their watermark), DEGRADE (decisions taken under
a degrade reason or a posture other than GREEN). The reporter gathers one `AnomalySource` per
component or evidence file; this module adds them up. A count is never dropped because it is 0:
every kind appears in `counts`, so an auditor sees that it was looked at. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ANOMALY_KINDS = ("ANOMALY", "QUARANTINE", "PUBLISH_AMBIGUOUS", "DEAD_LETTER", "LATE_EVENT", "DEGRADE")
#: Examples kept per source (the schema allows 20).
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class AnomalySource:
    """How many anomalies of one kind one component or evidence file reports."""

    kind: str
    source: str
    count: int
    by_reason: Mapping[str, int] = field(default_factory=dict)
    examples: Sequence[Mapping[str, Any]] = ()

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {self.kind!r}; kinds: {', '.join(ANOMALY_KINDS)}")
        if self.count < 0 or any(v < 0 for v in self.by_reason.values()):
            raise ValueError(f"{self.kind} from {self.source}: counts cannot be negative")


def anomaly_summary(sources: Sequence[AnomalySource]) -> dict[str, Any]:
    """The body of anomaly_summary.json: totals per kind and one entry per non-empty source."""
    counts = {kind: 0 for kind in ANOMALY_KINDS}
    anomalies: list[dict[str, Any]] = []
    for s in sorted(sources, key=lambda s: (ANOMALY_KINDS.index(s.kind), s.source)):
        counts[s.kind] += s.count
        if s.count == 0:
            continue
        entry: dict[str, Any] = {"kind": s.kind, "count": s.count, "source": s.source}
        if s.by_reason:
            entry["by_reason"] = dict(sorted(s.by_reason.items()))
        if s.examples:
            entry["examples"] = [dict(e) for e in s.examples[:MAX_EXAMPLES]]
        anomalies.append(entry)
    return {"counts": {**counts, "total": sum(counts.values())}, "anomalies": anomalies}
