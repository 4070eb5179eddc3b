"""Decision quality: how good were the run's decisions, scored against the oracle's exact truth and
against what the bank alone would have known.

Only the reporter may read the oracle's truth outputs (DESIGN.md section 8, the truth boundary);
this module is the pure part of that scoring. It takes plain records (the decisions DF took, the
truth event and flow labels, the bank's view) and returns the `decision_quality` block of
`run_report.json`. No I/O, no clock: the same inputs give the same document.

Conventions (docs/obs.md):
- A decision *flags* its event when its outcome is REVIEW or DECLINE; an event with no decision
  counts as not flagged (and is counted under `undecided`).
- A flow (card) is fraud when any of its events is fraud; it is flagged when any of its events is.
- A ratio whose denominator is zero is `None` (undefined), never a made-up 0 or 1.
- `by_pattern.<pattern>` compares the flows of that pattern with the legitimate flows: recall is
  the share of that pattern's flows flagged, precision the share of flagged flows in that slice
  that are of the pattern, alert rate the share of the slice flagged.
- Time to detect is the time from the first fraud event of a flow (card) to its first flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

#: Decision outcomes that flag the event (a case is opened or the payment is refused).
FLAGGING_OUTCOMES = frozenset({"REVIEW", "DECLINE"})
#: The fraud pattern name of a legitimate flow in the oracle's labels.
LEGIT_PATTERN = "none"


@dataclass(frozen=True)
class Decision:
    """One decision DF took on a traffic event, as the audit records it."""

    event_id: str
    flow_id: str
    card_id: str
    outcome: str
    posture: str
    amount: float
    ts_utc: datetime
    #: The model/rule score behind the decision (higher = more suspicious); ranks the review queue.
    score: float = 0.0

    @property
    def flagged(self) -> bool:
        """REVIEW or DECLINE."""
        return self.outcome in FLAGGING_OUTCOMES


@dataclass(frozen=True)
class EventTruth:
    """The oracle's label of one traffic event (s4_event_labels_6B joined to the traffic row)."""

    event_id: str
    flow_id: str
    card_id: str
    amount: float
    ts_utc: datetime
    is_fraud: bool
    fraud_pattern: str = LEGIT_PATTERN


@dataclass(frozen=True)
class FlowTruth:
    """The oracle's label of one flow (s4_flow_truth_labels_6B)."""

    flow_id: str
    is_fraud: bool
    fraud_pattern: str = LEGIT_PATTERN


@dataclass(frozen=True)
class BankView:
    """What the bank reported about one flow and when (s4_flow_bank_view_6B)."""

    flow_id: str
    is_fraud_bank_view: bool
    reported_at_utc: datetime | None = None


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary classification: flagged vs fraud."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, pairs: Iterable[tuple[bool, bool]]) -> Confusion:
        """From (flagged, fraud) pairs."""
        tp = fp = fn = tn = 0
        for flagged, fraud in pairs:
            if flagged and fraud:
                tp += 1
            elif flagged:
                fp += 1
            elif fraud:
                fn += 1
            else:
                tn += 1
        return cls(tp, fp, fn, tn)

    @property
    def total(self) -> int:
        """Every item classified."""
        return self.tp + self.fp + self.fn + self.tn

    def metrics(self) -> dict[str, Any]:
        """Precision, recall, alert rate and the confusion matrix."""
        return {
            "precision": _ratio(self.tp, self.tp + self.fp),
            "recall": _ratio(self.tp, self.tp + self.fn),
            "alert_rate": _ratio(self.tp + self.fp, self.total),
            "count": self.total,
            "fraud": self.tp + self.fn,
            "flagged": self.tp + self.fp,
            "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
        }


def _seconds_summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_s": None, "p90_s": None, "max_s": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]
    return {"count": len(ordered), "median_s": float(median(ordered)), "p90_s": float(p90), "max_s": float(ordered[-1])}


class _Index:
    """The truth events with their decisions, grouped by flow and card."""

    def __init__(self, decisions: Iterable[Decision], events: Iterable[EventTruth]):
        self.events = sorted(events, key=lambda e: (e.ts_utc, e.event_id))
        by_event: dict[str, Decision] = {}
        for d in decisions:
            kept = by_event.get(d.event_id)
            # One decision per event is the contract; should a replay leave two, the first counts.
            if kept is None or (d.ts_utc, d.outcome) < (kept.ts_utc, kept.outcome):
                by_event[d.event_id] = d
        self.decision = by_event
        known = {e.event_id for e in self.events}
        self.unknown_decisions = sorted(set(by_event) - known)
        self.flows: dict[str, list[EventTruth]] = defaultdict(list)
        self.cards: dict[str, list[EventTruth]] = defaultdict(list)
        for e in self.events:
            self.flows[e.flow_id].append(e)
            self.cards[e.card_id].append(e)

    def flagged(self, e: EventTruth) -> bool:
        d = self.decision.get(e.event_id)
        return d is not None and d.flagged

    def first_flag(self, group: Sequence[EventTruth], not_before: datetime | None = None) -> datetime | None:
        times = [self.decision[e.event_id].ts_utc for e in group
                 if self.flagged(e) and (not_before is None or e.ts_utc >= not_before)]
        return min(times) if times else None

    def group_flagged(self, group: Sequence[EventTruth]) -> bool:
        return any(self.flagged(e) for e in group)


def _detect_times(index: _Index, groups: Mapping[str, Sequence[EventTruth]], fraud_of: Mapping[str, bool]) -> list[float]:
    out = []
    for key, group in groups.items():
        if not fraud_of.get(key):
            continue
        first_fraud = min((e.ts_utc for e in group if e.is_fraud), default=None)
        # a flag raised on an earlier, legitimate event of the card does not detect the fraud
        flag = index.first_flag(group, not_before=first_fraud) if first_fraud is not None else None
        if first_fraud is not None and flag is not None:
            out.append(max(0.0, (flag - first_fraud).total_seconds()))
    return out


def _at_capacity(index: _Index, flow_fraud: Mapping[str, bool], capacity: int) -> dict[str, Any]:
    truth = {e.event_id: e.is_fraud for e in index.events}
    queue = sorted((d for d in index.decision.values() if d.flagged and d.event_id in truth),
                   key=lambda d: (-d.score, d.ts_utc, d.event_id))
    ranked = queue[:capacity]
    event_hits = sum(1 for d in ranked if truth[d.event_id])
    top_flows = list(dict.fromkeys(d.flow_id for d in queue))[:capacity]
    return {
        "k": capacity,
        "reviewed_events": len(ranked),
        "event_precision": _ratio(event_hits, len(ranked)),
        "reviewed_flows": len(top_flows),
        "flow_precision": _ratio(sum(1 for f in top_flows if flow_fraud.get(f)), len(top_flows)),
    }


def _amounts(index: _Index) -> dict[str, float | None]:
    declined = reviewed = missed = legit_declined = 0.0
    for e in index.events:
        d = index.decision.get(e.event_id)
        if e.is_fraud:
            if d is not None and d.outcome == "DECLINE":
                declined += e.amount
            elif d is not None and d.outcome == "REVIEW":
                reviewed += e.amount
            else:
                missed += e.amount
        elif d is not None and d.outcome == "DECLINE":
            legit_declined += e.amount
    total = declined + reviewed + missed
    return {
        "fraud_total": round(total, 2),
        "fraud_stopped": round(declined, 2),
        "fraud_reviewed": round(reviewed, 2),
        "fraud_missed": round(missed, 2),
        "stopped_share": _ratio(declined, total),
        "legit_declined": round(legit_declined, 2),
    }


def _by_pattern(index: _Index, flow_fraud: Mapping[str, bool], flow_pattern: Mapping[str, str]) -> dict[str, Any]:
    legit = [f for f in index.flows if not flow_fraud.get(f)]
    legit_flagged = sum(1 for f in legit if index.group_flagged(index.flows[f]))
    patterns = sorted({p for f, p in flow_pattern.items() if flow_fraud.get(f) and f in index.flows})
    out: dict[str, Any] = {}
    for pattern in patterns:
        flows = [f for f in index.flows if flow_fraud.get(f) and flow_pattern.get(f) == pattern]
        hit = sum(1 for f in flows if index.group_flagged(index.flows[f]))
        slice_size = len(flows) + len(legit)
        fraud_events = [e for f in flows for e in index.flows[f] if e.is_fraud]
        out[pattern] = {
            "precision": _ratio(hit, hit + legit_flagged),
            "recall": _ratio(hit, len(flows)),
            "alert_rate": _ratio(hit + legit_flagged, slice_size),
            "event_recall": _ratio(sum(1 for e in fraud_events if index.flagged(e)), len(fraud_events)),
            "flows": len(flows),
            "flows_flagged": hit,
            "fraud_amount": round(sum(e.amount for e in fraud_events), 2),
            "fraud_amount_missed": round(sum(e.amount for e in fraud_events if not index.flagged(e)), 2),
            "time_to_detect": _seconds_summary(_detect_times(index, {f: index.flows[f] for f in flows}, flow_fraud)),
        }
    return out


def _by_posture(index: _Index) -> dict[str, Any]:
    postures: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for e in index.events:
        d = index.decision.get(e.event_id)
        if d is not None:
            postures[d.posture].append((d.flagged, e.is_fraud))
    return {p: Confusion.of(pairs).metrics() for p, pairs in sorted(postures.items())}


def _bank(index: _Index, flow_fraud: Mapping[str, bool], bank: Iterable[BankView], known_by: datetime | None) -> dict[str, Any]:
    views = {b.flow_id: b for b in bank if b.flow_id in index.flows}

    def bank_says(flow: str, by: datetime | None) -> bool:
        b = views.get(flow)
        if b is None or not b.is_fraud_bank_view:
            return False
        return by is None or (b.reported_at_utc is not None and b.reported_at_utc <= by)

    flows = sorted(index.flows)
    eventually = Confusion.of((index.group_flagged(index.flows[f]), bank_says(f, None)) for f in flows)
    reported = [f for f in flows if bank_says(f, None)]
    bank_vs_truth = Confusion.of((bank_says(f, None), bool(flow_fraud.get(f))) for f in flows)
    delays, ahead = [], 0
    for f in reported:
        group = index.flows[f]
        first = min(e.ts_utc for e in group)
        at = views[f].reported_at_utc
        if at is not None:
            delays.append(max(0.0, (at - first).total_seconds()))
        flag = index.first_flag(group)
        if flag is not None and (at is None or flag < at):
            ahead += 1
    out: dict[str, Any] = {
        "flow": eventually.metrics(),
        "bank_recall_of_truth": bank_vs_truth.metrics()["recall"],
        "bank_precision_of_truth": bank_vs_truth.metrics()["precision"],
        "bank_time_to_report": _seconds_summary(delays),
        "flagged_before_bank_report": ahead,
        "known_by_utc": known_by.isoformat().replace("+00:00", "Z") if known_by else None,
    }
    if known_by is not None:
        known = Confusion.of((index.group_flagged(index.flows[f]), bank_says(f, known_by)) for f in flows)
        out["flow_known_by"] = known.metrics()
        out["reported_by_known_by"] = sum(1 for f in flows if bank_says(f, known_by))
    return out


def score(decisions: Iterable[Decision], events: Iterable[EventTruth], flows: Iterable[FlowTruth] = (),
          bank: Iterable[BankView] = (), *, review_capacity: int = 50, known_by: datetime | None = None) -> dict[str, Any]:
    """The `decision_quality` block of run_report.json.

    `events` is the universe scored (the traffic events in the run's scope, labelled); `flows`
    gives each flow's truth and pattern (derived from the events when absent); `bank` the bank's
    reports; `known_by` the moment at which to ask what the bank had reported (the run's end).
    """
    if review_capacity < 1:
        raise ValueError("review_capacity must be at least 1")
    index = _Index(decisions, events)
    flow_fraud: dict[str, bool] = {f: any(e.is_fraud for e in g) for f, g in index.flows.items()}
    flow_pattern: dict[str, str] = {}
    for f, g in index.flows.items():
        flow_pattern[f] = next((e.fraud_pattern for e in g if e.is_fraud), LEGIT_PATTERN)
    for t in flows:
        if t.flow_id in index.flows:
            flow_fraud[t.flow_id] = t.is_fraud
            flow_pattern[t.flow_id] = t.fraud_pattern if t.is_fraud else LEGIT_PATTERN
    card_fraud = {c: any(e.is_fraud for e in g) for c, g in index.cards.items()}

    event_conf = Confusion.of((index.flagged(e), e.is_fraud) for e in index.events)
    flow_conf = Confusion.of((index.group_flagged(g), flow_fraud[f]) for f, g in index.flows.items())
    card_conf = Confusion.of((index.group_flagged(g), card_fraud[c]) for c, g in index.cards.items())
    return {
        "event": event_conf.metrics(),
        "flow": flow_conf.metrics(),
        "card": card_conf.metrics(),
        "by_pattern": _by_pattern(index, flow_fraud, flow_pattern),
        "by_posture": _by_posture(index),
        "at_review_capacity": _at_capacity(index, flow_fraud, review_capacity),
        "amounts": _amounts(index),
        "time_to_detect": {
            "flow": _seconds_summary(_detect_times(index, index.flows, flow_fraud)),
            "card": _seconds_summary(_detect_times(index, index.cards, card_fraud)),
        },
        "bank_view": _bank(index, flow_fraud, bank, known_by),
        "decisions": {
            "scored": sum(1 for e in index.events if e.event_id in index.decision),
            "undecided": sum(1 for e in index.events if e.event_id not in index.decision),
            "outside_truth": len(index.unknown_decisions),
        },
    }
