"""Replay anchors: per topic and partition, the offset range a run occupies, checked against the
snapshots P7 and P8 took.

Anyone who wants to replay a run (a backtest, a rebuild, an audit) starts from these ranges. The
reporter gathers the ranges of every topic the spine wrote (the admitted topics from P7, the lane,
audit and case topics at closeout); this module builds `replay_anchors.json` from them and says, per
snapshot, whether every range it recorded appears unchanged among the anchors. A snapshot edited
after the fact, or a topic that grew after P7 sealed it, shows up here as inconsistent. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.contracts.canonical import sha256_hex
from runtime.evidence.writer import encode


@dataclass(frozen=True)
class AnchorRange:
    """One topic partition's range in the run (offsets as the bus writes them, inclusive)."""

    topic: str
    partition: str
    start_offset: str
    end_offset: str
    records: int
    event_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """An offsets snapshot of an earlier phase: its path in the bundle, its document, and the list
    field that holds its ranges."""

    path: str
    document: Mapping[str, Any]
    field: str


def _ranges_of(snapshot: Snapshot) -> dict[tuple[str, str], tuple[str, str]]:
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for r in snapshot.document.get(snapshot.field) or []:
        if isinstance(r, Mapping) and r.get("start_offset") is not None and r.get("end_offset") is not None:
            out[(str(r["topic"]), str(r["partition"]))] = (str(r["start_offset"]), str(r["end_offset"]))
    return out


def consistency(anchors: Sequence[AnchorRange], snapshot: Snapshot) -> dict[str, Any]:
    """Whether every range of `snapshot` is an anchor unchanged; the first differences if not.

    The sha256 is that of the snapshot file as the evidence writer stored it."""
    have = {(a.topic, a.partition): (a.start_offset, a.end_offset) for a in anchors}
    differences = [f"{t}[{p}]: snapshot {want}, anchor {have.get((t, p))}"
                   for (t, p), want in sorted(_ranges_of(snapshot).items()) if have.get((t, p)) != want]
    detail = None
    if differences:
        detail = "; ".join(differences[:5]) + (f" (+{len(differences) - 5} more)" if len(differences) > 5 else "")
    return {"path": snapshot.path, "sha256": sha256_hex(encode(dict(snapshot.document))),
            "consistent": not differences, "detail": detail}


def replay_anchors(anchors: Sequence[AnchorRange], snapshots: Sequence[Snapshot], *, offset_kind: str,
                   captured_at_utc: str) -> dict[str, Any]:
    """The body of replay_anchors.json (without the common base fields)."""
    if not anchors:
        raise ValueError("a run without any offset range has nothing to anchor")
    keys = [(a.topic, a.partition) for a in anchors]
    if len(set(keys)) != len(keys):
        raise ValueError("a topic partition is anchored twice")
    ranges = []
    for a in sorted(anchors, key=lambda a: (a.topic, a.partition)):
        entry: dict[str, Any] = {"topic": a.topic, "partition": a.partition, "start_offset": a.start_offset,
                                 "end_offset": a.end_offset, "offset_kind": offset_kind,
                                 "captured_at_utc": captured_at_utc, "records": a.records}
        if a.event_classes:
            entry["event_classes"] = sorted(a.event_classes)
        ranges.append(entry)
    return {"captured_at_utc": captured_at_utc, "offset_kind": offset_kind, "offset_ranges": ranges,
            "topics": sorted({a.topic for a in anchors}),
            "consistent_with": [consistency(anchors, s) for s in snapshots]}
