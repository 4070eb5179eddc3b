"""`case_digest` and `label_digest`: one canonical sha256 each over a run's case and label truth.

P10 writes them into case_summary.json and label_summary.json; the same run on the other bus,
after a replay or after crashes must give the same values. Rows are reduced to canonical JSON
(runtime/contracts/canonical.py), de-duplicated, sorted and hashed with their count, so the
digest does not depend on arrival order or on how a store returns its rows: a Postgres store
passes the row dicts it reads back, in-memory code passes the events or assertions themselves.
Evidence references that name a delivery rather than a fact (eb_ref, IG receipt id) are left
out of case_digest, so it is equal on both buses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.case.cm.domain import TimelineEvent
from runtime.case.ls.domain import LabelAssertion
from runtime.contracts.canonical import canonical_json


def _digest(section: str, rows: Iterable[Mapping[str, Any]]) -> str:
    lines = sorted({canonical_json(dict(row)) for row in rows})
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


def case_digest(events: Iterable[TimelineEvent | Mapping[str, Any]]) -> str:
    """Hex sha256 over a run's case timeline events (TimelineEvent or their stored rows), in any order,
    transport references excepted (`digest_row`)."""
    return _digest("case_timeline", (digest_row(e.row() if isinstance(e, TimelineEvent) else e) for e in events))


def label_digest(assertions: Iterable[LabelAssertion | Mapping[str, Any]]) -> str:
    """Hex sha256 over a run's label assertions (LabelAssertion or their stored rows), in any order."""
    return _digest("label_assertions", (a.row() if isinstance(a, LabelAssertion) else a for a in assertions))
