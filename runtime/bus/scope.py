"""Run scoping and safe commit positions, shared by both consumer adapters (plain Python).

A consumer is pinned to one `platform_run_id`: a record of another run is skipped but still
counted and checkpointed, so it is never re-read. Commits are positional (Kafka commits "everything
before offset N", a Kinesis checkpoint means "everything up to sequence S"), so a skipped or
acknowledged record may only move the position while no earlier record handed to the caller is
still waiting for the caller's durable write. `CommitTracker` computes that safe position.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.json_codec import loads

PartitionKey = tuple[str, str]  # (topic/stream, partition/shard as text)


def record_run_id(value: bytes) -> str | None:
    """The top-level `platform_run_id` of a JSON record (envelope or control message), or None."""
    return _run_id_of(_parse(value))


def _parse(value: bytes) -> dict[str, Any] | None:
    """The JSON object `value` holds, or None when it holds none."""
    try:
        document = loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _run_id_of(document: dict[str, Any] | None) -> str | None:
    run_id = document.get("platform_run_id") if document is not None else None
    return run_id if isinstance(run_id, str) else None


@dataclass
class ScopeCounts:
    """What a run-scoped consumer saw: delivered to the caller, skipped (other run / unreadable)."""

    delivered: int = 0
    skipped_other_run: int = 0
    skipped_unscoped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as plain data (for evidence and logs)."""
        return {
            "delivered": self.delivered,
            "skipped_other_run": self.skipped_other_run,
            "skipped_unscoped": self.skipped_unscoped,
        }


class RunScope:
    """Decides whether a record belongs to the pinned run; counts the ones that do not."""

    def __init__(self, required_platform_run_id: str | None):
        self.required = required_platform_run_id
        self.counts = ScopeCounts()

    def admits(self, value: bytes) -> bool:
        """True when the record is the pinned run's (always, when no run is pinned)."""
        return self.admit(value)[0]

    def admit(self, value: bytes) -> tuple[bool, dict[str, Any] | None]:
        """Whether the record is the pinned run's, and the JSON object it holds when it was parsed
        to tell (the consumer hands it on in `BusRecord.document`, so the bytes are parsed once)."""
        if self.required is None:
            self.counts.delivered += 1
            return True, None
        document = _parse(value)
        run_id = _run_id_of(document)
        if run_id == self.required:
            self.counts.delivered += 1
            return True, document
        if run_id is None:
            self.counts.skipped_unscoped += 1
        else:
            self.counts.skipped_other_run += 1
        return False, None


@dataclass
class CommitTracker:
    """Per partition: positions handed out, positions finished, and the last position committed."""

    outstanding: dict[PartitionKey, set[int]] = field(default_factory=lambda: defaultdict(set))
    finished: dict[PartitionKey, set[int]] = field(default_factory=lambda: defaultdict(set))
    committed: dict[PartitionKey, int] = field(default_factory=dict)

    def handed_out(self, key: PartitionKey, position: int) -> None:
        """The record at `position` went to the caller; it blocks commits past it until acknowledged."""
        self.outstanding[key].add(position)

    def skipped(self, key: PartitionKey, position: int) -> None:
        """The record at `position` was skipped by run scope: finished without the caller."""
        self.finished[key].add(position)

    def acknowledged(self, key: PartitionKey, position: int) -> None:
        """The caller made its durable write for the record at `position`."""
        self.outstanding[key].discard(position)
        self.finished[key].add(position)

    def due(self) -> dict[PartitionKey, int]:
        """Per partition, the highest finished position with nothing outstanding before it."""
        out: dict[PartitionKey, int] = {}
        for key, done in self.finished.items():
            pending = self.outstanding.get(key)
            floor = min(pending) if pending else None
            safe = [p for p in done if floor is None or p < floor]
            if safe:
                best = max(safe)
                if best > self.committed.get(key, -1):
                    out[key] = best
        return out

    def drop(self, keys: list[PartitionKey]) -> None:
        """Forget partitions this member no longer owns (a rebalance moved them to another member)."""
        for key in keys:
            self.outstanding.pop(key, None)
            self.finished.pop(key, None)
            self.committed.pop(key, None)

    def mark_committed(self, key: PartitionKey, position: int) -> None:
        """Record a commit at `position` and forget what it covers."""
        self.committed[key] = max(position, self.committed.get(key, -1))
        self.finished[key] = {p for p in self.finished[key] if p > position}
