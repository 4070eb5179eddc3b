"""The spine's hop equations over the counts the reporter gathered.

`SpineCounts` holds plain numbers read from evidence and durable state (never from logs);
`spine_hops` writes the equation of each hop between two stages and attaches the explanations the
platform knows for a difference (the P4 ingest probe IG admitted and WSP never emitted, records
of WSP retries IG recognised as duplicates). Anything else that differs is left unexplained, so
the hop fails and is named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runtime.obs.reconcile import Explanation, Hop

RECEIPT_OUTCOMES = ("ADMIT", "DUPLICATE", "QUARANTINE", "ANOMALY", "PUBLISH_AMBIGUOUS")


@dataclass(frozen=True)
class GroupCounts:
    """What one consumer group read: records on its input topics and how it accounted for them."""

    consumer_group: str
    topics: Sequence[str]
    records_on_topics: int
    processed: int
    skipped: int
    dead_lettered: int


@dataclass(frozen=True)
class SpineCounts:
    """Every count the reconciliation needs, gathered from one run's evidence and durable state."""

    wsp_emitted: int
    wsp_retries: int
    receipts: Mapping[str, int]
    #: Records IG admitted for the P4 ingest probe (WSP never emitted them).
    probes_admitted: int
    topic_records: Mapping[str, int]
    groups: Sequence[GroupCounts]
    #: Admitted traffic events of the run (probes excluded): what DF must decide.
    traffic_admitted: int
    decisions_by_outcome: Mapping[str, int]
    #: Intents the decisions imply (the policy's actions per outcome, summed over decisions).
    intents_expected: int
    intents_by_action: Mapping[str, int]
    outcomes_by_action: Mapping[str, int]
    audit_by_kind: Mapping[str, int]
    #: Decisions that need a human (the policy's case outcomes).
    triggers_expected: int
    triggers: int
    trigger_events_by_kind: Mapping[str, int]
    #: Cases closed with an outcome (each must assert one label through LS).
    cases_closed: int
    case_labels: int
    notes: Mapping[str, str] = field(default_factory=dict)


def _explained(difference: int, *candidates: Explanation) -> tuple[Explanation, ...]:
    """The candidates that apply (non-zero), only when the hop does not already hold."""
    if difference == 0:
        return ()
    return tuple(c for c in candidates if c.accounts_for != 0)


def spine_hops(c: SpineCounts) -> list[Hop]:
    """The ten hop kinds of the spine, one hop per consumer group for topic_to_consumer."""
    hops: list[Hop] = []
    receipts = {o: int(c.receipts.get(o, 0)) for o in RECEIPT_OUTCOMES}
    observed_ig = sum(receipts.values())
    duplicates_from_retries = min(receipts["DUPLICATE"], c.wsp_retries)
    hops.append(Hop(
        "wsp_to_ig", "wsp_to_ig", "wsp_emitted", "ig_receipts",
        "emitted = ADMIT + DUPLICATE + QUARANTINE + ANOMALY + PUBLISH_AMBIGUOUS", c.wsp_emitted, receipts,
        explanations=_explained(
            c.wsp_emitted - observed_ig,
            Explanation("P4 ingest probe admitted by IG, not emitted by WSP", -c.probes_admitted, "P4 ig_ready"),
            Explanation("WSP retries IG recognised as duplicates", -duplicates_from_retries, "wsp_summary retries"),
        )))
    hops.append(Hop(
        "ig_to_topics", "ig_to_topics", "ig_receipts", "topic_records",
        "ADMIT = records on the admitted topics", receipts["ADMIT"], dict(c.topic_records),
        topics=sorted(c.topic_records)))
    for g in sorted(c.groups, key=lambda g: g.consumer_group):
        hops.append(Hop(
            f"topic_to_consumer:{g.consumer_group}", "topic_to_consumer", "topic_records", "consumer_group",
            "records on its topics = processed + skipped + dead_lettered", g.records_on_topics,
            {"processed": g.processed, "skipped": g.skipped, "dead_lettered": g.dead_lettered},
            topics=sorted(g.topics), consumer_group=g.consumer_group))
    hops.append(Hop(
        "consumer_to_decisions", "consumer_to_decisions", "consumer_group", "decisions",
        "admitted traffic events = decisions", c.traffic_admitted, dict(c.decisions_by_outcome)))
    hops.append(Hop(
        "decisions_to_intents", "decisions_to_intents", "decisions", "intents",
        "intents the decisions' outcomes imply = intents", c.intents_expected, dict(c.intents_by_action)))
    hops.append(Hop(
        "intents_to_outcomes", "intents_to_outcomes", "intents", "outcomes",
        "intents = outcomes", sum(c.intents_by_action.values()), dict(c.outcomes_by_action)))
    lane_records = sum(c.decisions_by_outcome.values()) + sum(c.intents_by_action.values()) + sum(
        c.outcomes_by_action.values())
    hops.append(Hop(
        "outcomes_to_audit", "outcomes_to_audit", "outcomes", "audit_records",
        "decisions + intents + outcomes = audit records", lane_records, dict(c.audit_by_kind)))
    hops.append(Hop(
        "audit_to_case_triggers", "audit_to_case_triggers", "audit_records", "case_triggers",
        "decisions that need a human = case triggers", c.triggers_expected, {"triggers": c.triggers}))
    hops.append(Hop(
        "case_triggers_to_cases", "case_triggers_to_cases", "case_triggers", "cases",
        "case triggers = trigger events on case timelines", c.triggers, dict(c.trigger_events_by_kind)))
    hops.append(Hop(
        "cases_to_labels", "cases_to_labels", "cases", "labels",
        "cases closed with an outcome = labels asserted by case closure", c.cases_closed,
        {"case_labels": c.case_labels}))
    return hops
