"""The RTDL state digest: one sha256 over a run's OFP, IEG and CSFB state.

P8 writes it into caught_up.json; a replay from the archive, the other bus or a run killed and
restarted twenty times must produce the same value. Rows are reduced to canonical JSON
(runtime/contracts/canonical.py), sorted, and hashed section by section, so the digest is
independent of insertion order and of how a store keeps its rows; a Postgres store passes the
same row dicts read back from its tables. Operational state (watermarks, counters, pending join
misses) depends on partitioning and timing and is deliberately left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from runtime.contracts.canonical import canonical_json

if TYPE_CHECKING:
    from runtime.rtdl.csfb.domain import CsfbState
    from runtime.rtdl.ieg.domain import IegState
    from runtime.rtdl.ofp.domain import OfpState

SECTIONS = ("csfb", "ieg", "ofp")


def rows_digest(sections: Mapping[str, Iterable[dict[str, Any]]]) -> str:
    """Hex sha256 over every section's rows: per section its name, row count and sorted canonical rows."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown state digest sections: {sorted(unknown)}")
    h = hashlib.sha256()
    for name in SECTIONS:
        rows = [canonical_json(row) for row in sections.get(name, ())]  # only the bytes: the row dicts go as they come
        rows.sort()
        h.update(canonical_json({"section": name, "rows": len(rows)}) + b"\n")
        for row in rows:
            h.update(row + b"\n")
        del rows  # one section's bytes in memory at a time
    return h.hexdigest()


#: Rows a store's `state_rows` fetches at a time (a server-side cursor: `conn.execute` would hold a
#: section's whole result in the client).
STATE_ROWS_BATCH = 10_000


def state_digest(ofp: OfpState, ieg: IegState, csfb: CsfbState) -> str:
    """The digest of in-memory RTDL state (what `rows_digest` gives for the same rows from a store)."""
    return rows_digest({"ofp": ofp.canonical_rows(), "ieg": ieg.canonical_rows(), "csfb": csfb.canonical_rows()})
