"""A worker's `last_health.json`: state, reasons, counters, lag, committed positions, dependencies.

Written at most every few seconds to the run's local folder (when the worker runs on the laptop)
and under the run's evidence prefix in the object store (what dev_min reads). A health write that
fails never stops processing; the failure is a reason in the next document. Outages of the
worker's dependencies (PostgreSQL, the bus, the object store) are tracked here: how often each
went down, for how long, since when, and the error that said so; the state is RED while one is down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.port import PartitionRange
from runtime.contracts.ids import utc_iso
from runtime.errors import (
    BusUnavailable,
    DatabaseUnavailable,
    ObjectStoreUnavailable,
    PlatformError,
    PublishAmbiguous,
)
from runtime.store.port import ObjectStore

HEALTH_SCHEMA = "evidence/last_health.schema.json"

#: The dependencies whose outages a worker counts (health `dependencies`, counters `<name>_unavailable`).
DEPENDENCIES = ("db", "bus", "object_store")
#: What the health reasons call each dependency.
DEPENDENCY_LABELS = {"db": "PostgreSQL", "bus": "the bus", "object_store": "the object store"}


def dependency_of(error: PlatformError) -> str | None:
    """The dependency a transient error says is down (None when it names none of them)."""
    if isinstance(error, DatabaseUnavailable):
        return "db"
    if isinstance(error, BusUnavailable | PublishAmbiguous) or error.code in ("OUTBOX_PUBLISH_FAILED", "BUS_UNAVAILABLE"):
        return "bus"
    if isinstance(error, ObjectStoreUnavailable):
        return "object_store"
    return None


@dataclass
class DependencyState:
    """One dependency as this worker process saw it: outages, time down, the error that said so."""

    outages: int = 0
    down_seconds_closed: float = 0.0
    down_since: float | None = None
    down_since_utc: str | None = None
    recovered_at_utc: str | None = None
    last_error: PlatformError | None = None
    last_error_at_utc: str | None = None

    def unavailable_seconds(self, now: float) -> float:
        """Seconds down in total, the outage in progress included."""
        return self.down_seconds_closed + (now - self.down_since if self.down_since is not None else 0.0)


class Dependencies:
    """Outage bookkeeping of a worker's dependencies; thread-safe (the stall watchdog reports too).

    `down(name, error)` opens an outage unless one is open; `up(name)` closes it after an
    operation on the dependency succeeded. Counts are since the process started."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.states = {name: DependencyState() for name in DEPENDENCIES}
        self._lock = threading.Lock()

    def down(self, name: str, error: PlatformError) -> bool:
        """Record that `name` failed; True when this opened a new outage."""
        with self._lock:
            state = self.states[name]
            state.last_error, state.last_error_at_utc = error, utc_iso()
            if state.down_since is not None:
                return False
            state.outages += 1
            state.down_since, state.down_since_utc = self.clock(), utc_iso()
            return True

    def up(self, name: str) -> float | None:
        """Record that an operation on `name` succeeded; the seconds of the outage it closed, if any."""
        with self._lock:
            state = self.states[name]
            if state.down_since is None:
                return None
            seconds = self.clock() - state.down_since
            state.down_seconds_closed += seconds
            state.down_since, state.down_since_utc, state.recovered_at_utc = None, None, utc_iso()
            return seconds

    def is_down(self, name: str) -> bool:
        """Whether an outage of `name` is open."""
        return self.states[name].down_since is not None

    def any_down(self) -> bool:
        """Whether any dependency is down now."""
        return any(s.down_since is not None for s in self.states.values())

    def reasons(self) -> list[str]:
        """One RED reason per dependency down now: code, what, since when, for how long, the error."""
        now = self.clock()
        out = []
        with self._lock:
            for name, s in self.states.items():
                if s.down_since is None:
                    continue
                code = s.last_error.code if s.last_error else f"{name.upper()}_UNAVAILABLE"
                detail = s.last_error.message if s.last_error else ""
                out.append(f"{code}: {DEPENDENCY_LABELS[name]} unavailable since {s.down_since_utc} "
                           f"({now - s.down_since:.1f} s, outage {s.outages}): {detail}"[:300])
        return out

    def counters(self) -> dict[str, int]:
        """`<name>_unavailable` (outages) and `<name>_unavailable_ms` (time down) per dependency."""
        now = self.clock()
        with self._lock:
            out: dict[str, int] = {}
            for name, s in self.states.items():
                out[f"{name}_unavailable"] = s.outages
                out[f"{name}_unavailable_ms"] = int(s.unavailable_seconds(now) * 1000)
            return out

    def document(self) -> dict[str, dict[str, Any]]:
        """The health document's `dependencies` section."""
        now = self.clock()
        with self._lock:
            return {name: {
                "state": "DOWN" if s.down_since is not None else "UP",
                "outages": s.outages,
                "unavailable_seconds": round(s.unavailable_seconds(now), 3),
                "down_since_utc": s.down_since_utc,
                "recovered_at_utc": s.recovered_at_utc,
                "last_error": None if s.last_error is None else {
                    "code": s.last_error.code, "message": s.last_error.message[:500], "at_utc": s.last_error_at_utc},
            } for name, s in self.states.items()}


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
    dependencies: Dependencies | None = None


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
    """The health document: GREEN, AMBER (dead letters) or RED (a dependency down, or backing off)."""
    dependencies = inputs.dependencies or Dependencies()
    reasons: list[str] = dependencies.reasons()
    state = "RED" if reasons else "GREEN"
    if inputs.backing_off and inputs.last_error is not None and not reasons:
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
                     "dead_letters_total": inputs.dead_letters_total, **inputs.scope, **dependencies.counters()},
        "lag": lag,
        "lag_total": sum(row["lag"] for row in lag),
        "committed_offsets": [
            {"topic": t, "partition": p, "position": pos} for (t, p), pos in sorted(inputs.positions.items())
        ],
        "last_error": last_error,
        "dependencies": dependencies.document(),
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
        #: The failure of the object store target, if the last write had one (an object-store outage).
        self.last_store_error: PlatformError | None = None
        self._lock = threading.Lock()

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
        with self._lock:  # the loop and its stall watchdog both write
            self._last = self.clock()
            failures = []
            store_error: PlatformError | None = None
            for store, key in self.targets:
                try:
                    store.put(key, data)
                except PlatformError as e:
                    failures.append(f"{store.location}: {e.code}")
                    store_error = store_error or e
            self.last_failure = "; ".join(failures) or None
            self.last_store_error = store_error


def written_at() -> str:
    """Timestamp for health documents."""
    return utc_iso()
