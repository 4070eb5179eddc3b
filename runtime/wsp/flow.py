"""Flow control of the stream: WSP holds its next push while a store DF reads is far behind on a partition.

DF decides an event at T once OFP, IEG and CSFB have applied every admitted record at or before T
on every partition they read, and after DF_INPUT_WAIT_MS decides without the late store (a
degrade). When IG admits faster than a store applies, the store's backlog grows without bound,
and Tansu serves a consumer that is behind one partition at a time: in a 500k run IEG had applied
97% of one partition and 7% of another, and 89% of the decisions were GRAPH_LATE. A replayed
stream can wait where the world cannot, so WSP (the replay's source) pushes no more while any
(store, partition) has more than `high` admitted records not yet applied, and resumes once every
one is at or below `low`: the stores' backlogs stay bounded, so no partition is left for minutes.
IG's rate then follows the slowest store's, which is the rate the run could decide at anyway.

The gate never fails the stream: a read of the lags that fails is counted and streaming goes on,
and a wait in which the worst lag has not shrunk for `stall_s` ends (counted): a store that is
down is P8's to judge, not a reason to stall P6 for good.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import PlatformError
from runtime.worker.store import Lags, admission_lags

#: (consumer group, topic, partition) -> records of the run admitted there that the group has not applied.


@dataclass(frozen=True)
class FlowLimits:
    """When pushes wait and when they resume (records behind on one partition), and how often to look."""

    high: int
    low: int
    look_s: float = 0.5
    stall_s: float = 120.0


def worst_lag(lags: Mapping[tuple[str, str, str], int]) -> tuple[tuple[str, str, str] | None, int]:
    """The (group, topic, partition) furthest behind and its lag; (None, 0) when nothing is behind."""
    if not lags:
        return None, 0
    key = max(lags, key=lambda k: (lags[k], k))
    return (key, lags[key]) if lags[key] > 0 else (None, 0)


class FlowGate:
    """Shared by WSP's output threads: `wait_for_room` before each push."""

    def __init__(self, read_lags: Callable[[], Lags], limits: FlowLimits, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, progress: Callable[[str], None] = lambda line: None):
        self.read_lags = read_lags
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self._lock = threading.Lock()
        self._looked_at: float | None = None
        self._lag = 0
        self._where: tuple[str, str, str] | None = None
        self.waits = 0
        self.waited_s = 0.0
        self.stalls = 0
        self.look_errors = 0
        self.worst_seen = 0

    def _look(self, *, fresh: bool) -> int:
        now = self.clock()
        if not fresh and self._looked_at is not None and now - self._looked_at < self.limits.look_s:
            return self._lag
        self._looked_at = now
        try:
            where, self._lag = worst_lag(self.read_lags())
        except PlatformError:
            self.look_errors += 1
            self._lag, where = 0, None
        self.worst_seen = max(self.worst_seen, self._lag)
        self._where = where
        return self._lag

    def wait_for_room(self, stop: threading.Event) -> float:
        """Block while a store is more than `high` records behind on a partition (until every one is
        at or below `low`, `stop` is set, or the lag stalls); the seconds waited."""
        with self._lock:  # the other outputs queue here: while one waits, none pushes
            if self._look(fresh=False) <= self.limits.high:
                return 0.0
            started = self.clock()
            best, improved_at = self._lag, started
            self.progress(f"WSP flow control: {self._describe()} records behind; pushes wait until at most "
                          f"{self.limits.low}")
            while not stop.is_set():
                self.sleep(self.limits.look_s)
                if stop.is_set():
                    break
                lag = self._look(fresh=True)
                if lag <= self.limits.low:
                    break
                now = self.clock()
                if lag < best:
                    best, improved_at = lag, now
                elif now - improved_at >= self.limits.stall_s:
                    self.stalls += 1
                    self.progress(f"WSP flow control: {self._describe()} records behind and not shrinking for "
                                  f"{self.limits.stall_s:.0f}s; streaming goes on (P8 judges the stores)")
                    break
            waited = self.clock() - started
            self.waits += 1
            self.waited_s += waited
            return waited

    def _describe(self) -> str:
        where = self._where
        return f"{where[0]} {where[1]}[{where[2]}] {self._lag:,}" if where else f"{self._lag:,}"

    def summary(self) -> dict[str, Any]:
        """wsp_summary.json's `flow_control` entry."""
        return {"high": self.limits.high, "low": self.limits.low, "waits": self.waits, "waited_s": round(self.waited_s, 3),
                "stalls": self.stalls, "look_errors": self.look_errors, "worst_lag": self.worst_seen}


def flow_gate(settings: Any, platform_run_id: str, db: Any, progress: Callable[[str], None]) -> FlowGate | None:
    """The gate of a run over the stores DF waits for (their consumer groups and input topics), with
    WSP_FLOW_LAG_HIGH / WSP_FLOW_LAG_LOW; None when WSP_FLOW_LAG_HIGH is 0 (flow control off)."""
    from runtime.components import consumer_group_id
    from runtime.decision.df.handler import UPSTREAMS
    from runtime.worker.run import build_handler

    registry = settings.registry
    high = registry.integer("WSP_FLOW_LAG_HIGH")
    if high <= 0:
        return None
    low = min(high, max(0, registry.integer("WSP_FLOW_LAG_LOW")))
    try:
        groups = {consumer_group_id(registry, name, platform_run_id): tuple(build_handler(name, settings, platform_run_id)
                                                                             .input_topics()) for name in UPSTREAMS}
    except PlatformError as e:  # a build without a store DF reads: nothing to keep close
        progress(f"WSP flow control off: {e.operator_line()}")
        return None

    def read() -> Lags:
        with db.transaction() as conn:
            return admission_lags(conn, platform_run_id, groups)
    progress(f"WSP flow control on: pushes wait while {', '.join(UPSTREAMS)} are more than {high} records behind"
             f" on a partition (resume at {low})")
    return FlowGate(read, FlowLimits(high, low), progress=progress)
