"""The bodies of P10's case_labels/case_summary.json and label_summary.json, from the run's records.

Pure: the P10 gate reads the timeline rows and assertions from the stores, adds the common
evidence fields (platform_run_id, written_at_utc, phase_id, source_handles) and health, and
writes the result through the evidence writer, which validates it against
schemas/evidence/{case_summary,label_summary}.schema.json.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from runtime.case.cm.domain import KINDS, OUTCOMES, STATUSES, TimelineEvent, cases_from_events
from runtime.case.digest import case_digest, label_digest
from runtime.case.ls.domain import LABEL_VALUES, SOURCES, LabelAssertion

#: How many case ids case_summary.json lists as exemplars.
EXEMPLAR_CASES = 20


def case_summary_body(events: Iterable[TimelineEvent], *, triggers_published: int, dead_letters: int = 0) -> dict[str, Any]:
    """Counts, cases by status/queue/outcome, exemplar case ids and case_digest of a run's timeline."""
    timeline = list(events)
    cases = cases_from_events(timeline)
    by_status = Counter(c.status for c in cases.values())
    by_outcome = Counter(c.outcome for c in cases.values() if c.outcome is not None)
    by_kind = Counter(e.kind for e in timeline)
    return {
        "counts": {"triggers_published": triggers_published,
                   "triggers_processed": len({t for c in cases.values() for t in c.trigger_ids}),
                   "cases": len(cases), "timeline_events_appended": len(timeline), "dead_letters": dead_letters},
        "cases_by_status": {s: by_status[s] for s in STATUSES},
        "cases_by_queue": dict(sorted(Counter(c.queue for c in cases.values()).items())),
        "cases_by_outcome": {o: by_outcome[o] for o in OUTCOMES},
        "timeline_events_by_kind": {k: by_kind[k] for k in KINDS},
        "exemplar_case_ids": sorted(cases)[:EXEMPLAR_CASES],
        "case_digest": case_digest(timeline),
    }


def label_summary_body(assertions: Iterable[LabelAssertion], *, dead_letters: int = 0) -> dict[str, Any]:
    """Counts by source and label, the observed-time range and label_digest of a run's assertions."""
    held = list(assertions)
    observed = sorted(a.observed_at_utc for a in held)
    by_source = Counter(a.source for a in held)
    by_label = Counter(a.value for a in held)
    return {
        "counts": {"assertions_appended": len(held), "subjects": len({a.subject for a in held}),
                   "dead_letters": dead_letters},
        "assertions_by_source": {s: by_source[s] for s in SOURCES},
        "assertions_by_label": {v: by_label[v] for v in LABEL_VALUES},
        "as_of_range": {"first_observed_utc": observed[0] if observed else None,
                        "last_observed_utc": observed[-1] if observed else None},
        "as_of_utc": observed[-1] if observed else None,
        "label_digest": label_digest(held),
    }
