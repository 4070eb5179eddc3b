"""A worker's `last_health.json`: state, reasons, counters, lag and committed positions.

Written at most every few seconds to the run's local folder (when the worker runs on the laptop)
and under the run's evidence prefix in the object store (what dev_min reads). A health write that
fails never stops processing; the failure is a reason in the next document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.port import PartitionRange
from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError
from runtime.store.port import ObjectStore

HEALTH_SCHEMA = "evidence/last_health.schema.json"


@dataclass
class WorkerCounters:
    """What a worker has done since it started (health counters)."""

    polled: int = 0
    applied: int = 0
    redelivered_skipped: int = 0
    dead_lettered: int = 0
    outputs_added: int = 0
    published: int = 0
    batches: int = 0
    backoffs: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain data for the health document."""
        return dict(self.__dict__)


@dataclass
class HealthInputs:
    """What the worker knows when health is due."""

    counters: WorkerCounters
    component_counters: dict[str, int]
    positions: dict[tuple[str, str], int]
    ranges: list[PartitionRange]
    dead_letters_total: int
    last_error: PlatformError | None
    backing_off: bool
    scope: dict[str, int] = field(default_factory=dict)


def lag_rows(positions: dict[tuple[str, str], int], ranges: list[PartitionRange]) -> list[dict[str, Any]]:
    """Per partition: end offset present on the bus, last committed position, lag (records behind)."""
    rows = []
    for r in sorted(ranges, key=lambda r: (r.topic, str(r.partition))):
        committed = positions.get((r.topic, str(r.partition)))
        end = r.end_offset
        if end is None:
            lag = 0
        elif committed is None:
            start = int(r.start_offset) if r.start_offset is not None else int(end)
            lag = int(end) - start + 1 if isinstance(end, int) else 1
        else:
            lag = max(0, int(end) - committed) if isinstance(end, int) else int(int(end) > committed)
        rows.append({"topic": r.topic, "partition": r.partition, "end_offset": end, "committed": committed, "lag": lag})
    return rows


def health_document(base: dict[str, Any], component: str, consumer_group: str, inputs: HealthInputs) -> dict[str, Any]:
    """The health document: GREEN, AMBER (dead letters or lag while idle) or RED (backing off)."""
    reasons: list[str] = []
    state = "GREEN"
    if inputs.backing_off and inputs.last_error is not None:
        state = "RED"
        reasons.append(f"{inputs.last_error.code}: {inputs.last_error.message}"[:300])
    if inputs.dead_letters_total:
        state = "AMBER" if state == "GREEN" else state
        reasons.append(f"DEAD_LETTERS: {inputs.dead_letters_total} record(s) refused; see worker_dead_letters")
    lag = lag_rows(inputs.positions, inputs.ranges)
    last_error = None
    if inputs.last_error is not None:
        last_error = {"code": inputs.last_error.code, "message": inputs.last_error.message[:500]}
    return {
        **base,
        "component": component,
        "consumer_group": consumer_group,
        "health_state": state,
        "reasons": reasons,
        "counters": {**inputs.counters.as_dict(), **inputs.component_counters,
                     "dead_letters_total": inputs.dead_letters_total, **inputs.scope},
        "lag": lag,
        "lag_total": sum(row["lag"] for row in lag),
        "committed_offsets": [
            {"topic": t, "partition": p, "position": pos} for (t, p), pos in sorted(inputs.positions.items())
        ],
        "last_error": last_error,
    }


class HealthWriter:
    """Writes `last_health.json` to every target, at most once per `interval_s`."""

    def __init__(self, targets: list[tuple[ObjectStore, str]], *, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.targets = targets
        self.interval_s = interval_s
        self.clock = clock
        self._last = float("-inf")
        self.last_failure: str | None = None

    def due(self) -> bool:
        """Whether the interval has passed since the last write."""
        return self.clock() - self._last >= self.interval_s

    def write(self, document: dict[str, Any]) -> None:
        """Validate and write to every target; a target that fails is remembered, not raised."""
        from runtime.evidence.writer import schema_violations

        problems = schema_violations(HEALTH_SCHEMA, document)
        if problems:
            raise PlatformError("last_health refused: " + "; ".join(problems[:5]), code="EVIDENCE_SCHEMA_INVALID")
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
        self._last = self.clock()
        failures = []
        for store, key in self.targets:
            try:
                store.put(key, data)
            except PlatformError as e:
                failures.append(f"{store.location}: {e.code}")
        self.last_failure = "; ".join(failures) or None


def written_at() -> str:
    """Timestamp for health documents."""
    return utc_iso()
