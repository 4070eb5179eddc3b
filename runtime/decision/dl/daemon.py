"""DL as a periodic daemon: measure the lane's health, run the degrade ladder, append posture changes.

DL consumes no topic: its inputs are durable state and the other workers' health, so it is not a
stream handler but a tick every `DL_EVAL_INTERVAL_MS`. Each tick, in one transaction:

- **admission lag** of OFP, CSFB and IEG: seconds since IG admitted the oldest record each has
  not made durable yet, from their durable positions and IG's admissions (`dl.store.lags`);
- **consumer lag**: the largest `lag_total` in the rtdl_core workers' `last_health.json`; a health
  file older than `STALE_AFTER_S` (a stopped or hung worker) or missing makes it unknown (AMBER);
- **join-miss ratio** from CSFB's counters; **bus** health: the bus admin answers for the traffic
  topic; **database**: the tick's reads succeed (a failed tick writes RED health and retries);
- `DegradeLadder.evaluate`, and a change is appended to `dl_posture_history` (seq continues the
  stored history; a seq another DL wrote first makes this one reload the history).

DL writes its own `last_health.json` (`degrade_ladder/health/`) with the worker's health writer
and document (runtime/worker/health.py), plus the posture in force, its reasons and the inputs.
DF's own backlog is deliberately not an input: a late decision on complete inputs is still right.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtime.contracts.ids import utc_iso, utc_now
from runtime.decision.df.store import Upstream
from runtime.decision.dl import store
from runtime.decision.dl.domain import DegradeLadder, Health, Limits, PostureEntry
from runtime.errors import PlatformError, TransientError
from runtime.settings import Settings
from runtime.worker.health import HealthInputs, HealthWriter, WorkerCounters, health_document

COMPONENT = "dl"
#: The RTDL stores DF depends on, whose health DL judges.
UPSTREAMS = ("ofp", "ieg", "csfb")
#: A worker's health file older than this says nothing about its lag any more (it writes every ~2 s).
STALE_AFTER_S = 15.0

Transaction = Callable[[], AbstractContextManager[Any]]
Progress = Callable[[str], None]


@dataclass
class HealthSources:
    """Where a tick looks besides the database: the upstream workers' health and the bus."""

    upstreams: list[Upstream]
    read_health: Callable[[str], Mapping[str, Any] | None]
    bus_probe: Callable[[], None]
    clock: Callable[[], datetime] = utc_now


def consumer_lag(sources: HealthSources) -> int | None:
    """The largest lag_total of the upstream workers' health; None when any is missing or stale."""
    worst = 0
    for upstream in sources.upstreams:
        doc = sources.read_health(upstream.component)
        if doc is None or "lag_total" not in doc:
            return None
        written = datetime.fromisoformat(str(doc["written_at_utc"]).replace("Z", "+00:00"))
        if (sources.clock() - written).total_seconds() > STALE_AFTER_S:
            return None
        worst = max(worst, int(doc["lag_total"]))
    return worst


def observe(conn: Any, platform_run_id: str, sources: HealthSources) -> Health:
    """One health observation of the lane's inputs."""
    lag = store.lags(conn, platform_run_id, sources.upstreams)
    try:
        sources.bus_probe()
        bus_ok = True
    except PlatformError:
        bus_ok = False
    return Health(ofp_lag_seconds=lag.get("ofp"), csfb_lag_seconds=lag.get("csfb"), ieg_lag_seconds=lag.get("ieg"),
                  consumer_lag_records=consumer_lag(sources),
                  join_miss_ratio=store.join_miss_ratio(conn, platform_run_id), bus_ok=bus_ok, db_ok=True)


class DegradeDaemon:
    """Ticks the degrade ladder of one run and records its posture changes."""

    component = COMPONENT

    def __init__(self, platform_run_id: str, transaction: Transaction, sources: HealthSources, *, limits: Limits | None = None,
                 health: HealthWriter | None = None, health_base: Callable[[], dict[str, Any]] | None = None,
                 consumer_group: str = COMPONENT, now_utc: Callable[[], str] = utc_iso):
        self.platform_run_id = platform_run_id
        self.transaction = transaction
        self.sources = sources
        self.limits = limits or Limits()
        self.health = health
        self.health_base = health_base
        self.consumer_group = consumer_group
        self.now_utc = now_utc
        self.ladder: DegradeLadder | None = None
        self.last_health: Health | None = None
        self.last_error: PlatformError | None = None
        self.counters = {"dl_evaluations": 0, "dl_posture_changes": 0, "dl_failed_ticks": 0, "dl_lost_races": 0}

    def tick(self) -> PostureEntry | None:
        """Measure, judge, append a change; a database failure is remembered (RED health), never raised."""
        entry = None
        try:
            with self.transaction() as conn:
                if self.ladder is None:
                    self.ladder = store.restore_ladder(conn, self.platform_run_id, self.limits)
                self.last_health = observe(conn, self.platform_run_id, self.sources)
                entry = self.ladder.evaluate(self.last_health, self.now_utc())
                if entry is not None and not store.append_posture(conn, self.platform_run_id, entry):
                    self.counters["dl_lost_races"] += 1
                    self.ladder = None  # another DL recorded this seq: reload its history next tick
                    entry = None
            self.last_error = None
            self.counters["dl_evaluations"] += 1
            self.counters["dl_posture_changes"] += 1 if entry is not None else 0
        except TransientError as e:
            self.last_error = e
            self.counters["dl_failed_ticks"] += 1
            self.ladder = None
            entry = None
        self.write_health()
        return entry

    def write_health(self) -> None:
        """last_health.json through the worker's writer: the worker document plus the posture in force."""
        if self.health is None or self.health_base is None:
            return
        inputs = HealthInputs(WorkerCounters(), dict(self.counters), {}, [], 0, self.last_error, self.last_error is not None)
        document = health_document(self.health_base(), self.component, self.consumer_group, inputs)
        posture = self.ladder.posture if self.ladder is not None and self.ladder.history else None
        document["posture"] = posture
        document["posture_reasons"] = list(self.ladder.history[-1].reasons) if posture and self.ladder else []
        document["health_inputs"] = dict(self.last_health.__dict__) if self.last_health is not None else None
        self.health.write(document)

    def run(self, stop: threading.Event, interval_s: float, *, max_ticks: int | None = None) -> dict[str, int]:
        """Tick every `interval_s` until `stop` (or `max_ticks` ticks); returns the counters."""
        ticks = 0
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
        return dict(self.counters)


def upstreams_of(settings: Settings, platform_run_id: str) -> list[Upstream]:
    """The RTDL stores DL judges: component, consumer group, input topics (from their own handlers)."""
    from runtime.components import consumer_group_id
    from runtime.worker.run import build_handler

    return [Upstream(name, consumer_group_id(settings.registry, name, platform_run_id),
                     tuple(build_handler(name, settings, platform_run_id).input_topics())) for name in UPSTREAMS]


def run_dl(settings: Settings, platform_run_id: str, *, environ: Mapping[str, str], stop: threading.Event,
           progress: Progress = print, startup_timeout_s: float = 300.0, max_ticks: int | None = None) -> dict[str, int]:
    """Run DL for one run until stopped: start-up retried while the database is down, then ticks."""
    from runtime.bus import factory
    from runtime.components import consumer_group_id
    from runtime.db.migrate import require_migrations
    from runtime.db.postgres import Database
    from runtime.rtdl.caught_up import read_health
    from runtime.rtdl.events import TRAFFIC_CLASSES
    from runtime.rtdl.handler import topics_for
    from runtime.worker.run import health_targets, require_run

    if not settings.db_dsn:
        raise PlatformError("DL keeps its posture history in PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN")
    deadline = time.monotonic() + startup_timeout_s
    delay, attempt = 0.5, 0
    while True:
        attempt += 1
        try:
            require_run(settings, platform_run_id)
            require_migrations(settings.db_dsn)
            db = Database(settings.db_dsn, name="dl daemon", max_size=1)
            db.ping()
            admin = factory.admin(settings)
            break
        except TransientError as e:
            left = deadline - time.monotonic()
            progress(f"dl: start-up attempt {attempt} failed ({e.code}: {e.message[:200]}); "
                     + (f"retrying in {delay:.1f}s" if left > 0 else f"giving up after {startup_timeout_s:g}s"))
            if left <= 0:
                raise
            if stop.wait(min(delay, left)):
                return {}
            delay = min(delay * 2, 10.0)
    registry = settings.registry
    traffic = topics_for(settings, TRAFFIC_CLASSES)[0]

    def base() -> dict[str, Any]:
        return {"platform_run_id": platform_run_id, "written_at_utc": utc_iso(), "phase_id": "P9",
                "source_handles": ["COMPONENT_HEALTH_PATH_PATTERN", "DL_EVAL_INTERVAL_MS"]}

    def bus_probe() -> None:
        admin.ranges(traffic)

    sources = HealthSources(upstreams_of(settings, platform_run_id), lambda c: read_health(settings, platform_run_id, c),
                            bus_probe)
    daemon = DegradeDaemon(platform_run_id, db.transaction, sources,
                           health=HealthWriter(health_targets(settings, COMPONENT, platform_run_id, environ), interval_s=0.0),
                           health_base=base, consumer_group=consumer_group_id(registry, COMPONENT, platform_run_id))
    interval_s = registry.integer("DL_EVAL_INTERVAL_MS") / 1000
    progress(f"dl judging the lane's health of run {platform_run_id} every {interval_s:g}s")
    try:
        counters = daemon.run(stop, interval_s, max_ticks=max_ticks)
    finally:
        db.close()
    posture = daemon.ladder.posture if daemon.ladder is not None and daemon.ladder.history else "none"
    progress(f"dl stopped: {counters['dl_evaluations']} evaluations, posture {posture}")
    return counters
