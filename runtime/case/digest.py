"""`case_digest` and `label_digest`: one canonical sha256 each over a run's case and label truth.

P10 writes them into case_summary.json and label_summary.json; the same run on the other bus,
after a replay or after crashes must give the same values. Rows are reduced to canonical JSON
(runtime/contracts/canonical.py), de-duplicated, sorted and hashed with their count, so the
digest does not depend on arrival order or on how a store returns its rows: a Postgres store
passes the row dicts it reads back, in-memory code passes the events or assertions themselves.
Evidence references that name a delivery rather than a fact (eb_ref, IG receipt id) are left
out of case_digest, so it is equal on both buses; and, like decision_digest, both digests leave out
the run-scoped ids (every id hashes the platform_run_id of its subject key): a case is named by its
subject's (event_class, event_id), so the same events give the same digests in another run, e.g.
the end-to-end run on the other bus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.case.cm.domain import TimelineEvent
from runtime.case.ls.domain import LabelAssertion
from runtime.contracts.canonical import canonical_json


def _digest(section: str, rows: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 over the rows (one per id: a redelivered row counts once), sorted, with their count."""
    lines = sorted(canonical_json(dict(row)) for row in rows.values())
    h = hashlib.sha256()
    h.update(canonical_json({"section": section, "rows": len(lines)}) + b"\n")
    for line in lines:
        h.update(line + b"\n")
    return h.hexdigest()


#: Evidence references that name a delivery, not a fact: the traffic event's eb_ref (a Kafka offset
#: or a Kinesis sequence number) and IG's receipt id (one per admission). The timeline keeps them
#: (they are the evidence chain); the digest leaves them out, as decision_digest leaves out a
#: decision's provenance, so the same run gives the same case_digest on either bus.
TRANSPORT_REFS = ("eb_ref", "receipt_id")


def digest_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A timeline row as case_digest covers it: transport references removed from attached evidence."""
    details = row.get("details")
    if row.get("kind") != "evidence_attached" or not isinstance(details, Mapping) \
            or not isinstance(details.get("evidence_refs"), Mapping):
        return dict(row)
    refs = {k: v for k, v in details["evidence_refs"].items() if k not in TRANSPORT_REFS}
    return {**row, "details": {**details, "evidence_refs": refs}}


#: Ids that hash the run (through a subject key) or name another run-scoped record: left out of both
#: digests, which cover what they name instead (the case subject, the decision's outcome and reasons).
RUN_SCOPED_IDS = ("platform_run_id", "case_id", "timeline_event_id", "trigger_id", "decision_id", "audit_record_id",
                  "assertion_id", "closed_event_id")


def _run_free(value: Any) -> Any:
    """`value` without the run-scoped ids, at any depth."""
    if isinstance(value, Mapping):
        return {k: _run_free(v) for k, v in value.items() if k not in RUN_SCOPED_IDS}
    if isinstance(value, list):
        return [_run_free(v) for v in value]
    return value


def case_digest(events: Iterable[TimelineEvent | Mapping[str, Any]]) -> str:
    """Hex sha256 over a run's case timeline events (TimelineEvent or their stored rows), in any order,
    transport references (`digest_row`) and run-scoped ids excepted: each event names its case by the
    case subject's (event_class, event_id)."""
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        row = digest_row(e.row() if isinstance(e, TimelineEvent) else e)
        rows.setdefault(str(row["timeline_event_id"]), row)
    subjects: dict[str, list[str]] = {}
    for row in rows.values():
        key = row.get("details", {}).get("case_subject_key") if row.get("kind") == "case_opened" else None
        if isinstance(key, Mapping):
            subjects[str(row["case_id"])] = [str(key.get("event_class")), str(key.get("event_id"))]
    return _digest("case_timeline", {i: {"case": subjects.get(str(r["case_id"]), r["case_id"]), **_run_free(r)}
                                     for i, r in rows.items()})


def label_digest(assertions: Iterable[LabelAssertion | Mapping[str, Any]]) -> str:
    """Hex sha256 over a run's label assertions (LabelAssertion or their stored rows), in any order,
    run-scoped ids excepted (the subject's event_id and label_type stay)."""
    rows: dict[str, Mapping[str, Any]] = {}
    for a in assertions:
        row = a.row() if isinstance(a, LabelAssertion) else a
        rows.setdefault(str(row["assertion_id"]), _run_free(row))
    return _digest("label_assertions", rows)
