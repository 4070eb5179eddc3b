"""Python's cycle collector, paced for processes that move records in bulk.

CPython collects its youngest generation every 700 net allocations of container objects. The
platform's processes allocate in bulk: a worker's batch of up to 2,000 records, a gate job's rows
of a whole run, IG's push of 500 events. Each such object is traversed by young collections while
its batch or list still holds it, survives, is promoted, and is traversed again by the full
collections the promotions trigger, together with everything the process imported: 13-28% of a
worker's CPU and up to 26% of IG's request threads' in a 50k spine (`perf`, docs/performance.md). Reference
counting frees nearly all of it anyway; the collector only has to find reference cycles.

- Every `python -m runtime` process (`bulk_thresholds`, called by the entrypoint) freezes what it
  imported (never garbage, never traversed again) and collects its youngest generation every
  `BULK_THRESHOLDS[0]` allocations instead of 700.
- A stream worker's loop (`BatchCollection`) goes further: no automatic collection while it runs,
  the young generations after each batch (what a finished batch left alive is small), and a full
  collection every `FULL_INTERVAL_S`, idle or not. A batch is bounded, so cycles it makes wait for the
  collector only as long as the batch. `stop` puts the collector back as it was (tests run
  workers inside the test process).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

#: The longest time between two full collections (cycles that reached the oldest generation).
FULL_INTERVAL_S = 60.0
#: Allocations between young collections, and young and middle collections between older ones
#: (CPython's defaults: 700, 10, 10). 50,000 container objects are a few MiB at most.
BULK_THRESHOLDS = (50_000, 20, 10)


def bulk_thresholds() -> None:
    """Freeze what the process holds now (its imports) and collect on `BULK_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLDS)


class BatchCollection:
    """The cycle collector of a worker process, paced by its batches (see the module docstring)."""

    def __init__(self, full_interval_s: float = FULL_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.full_interval_s = full_interval_s
        self.clock = clock
        self.young = 0
        self.full = 0
        #: Objects the collections found unreachable (cycles freed).
        self.collected = 0
        self._was_enabled: bool | None = None
        self._last_full = 0.0

    @property
    def active(self) -> bool:
        """Whether this object paces the collector now (between `start` and `stop`)."""
        return self._was_enabled is not None

    def start(self) -> None:
        """Freeze what exists now and take the collector off its allocation thresholds."""
        if self.active:
            return
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._last_full = self.clock()

    def after_step(self, finished: int) -> None:
        """After each step of the loop: every generation when the last full collection is
        `full_interval_s` old (idle or backing off too: cycles made by the health thread or by
        failed calls are found), else the young ones when the step finished records."""
        if not self.active:
            return
        if self.clock() - self._last_full >= self.full_interval_s:
            self.collected += gc.collect(2)
            self.full += 1
            self._last_full = self.clock()
        elif finished:
            self.collected += gc.collect(1)
            self.young += 1

    def stop(self) -> None:
        """Give the collector back its thresholds and the frozen objects."""
        if not self.active:
            return
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
        self._was_enabled = None
