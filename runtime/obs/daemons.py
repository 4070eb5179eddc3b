"""The obs_gov pack's daemons: the platform_run_reporter and env_conformance, refreshing while a run is in flight.

Seed 001 (P2) starts the obs_gov pack with the other packs; seed 003 P11 forbids a manual report
while the reporter daemon runs. Both daemons read durable state only (the run's evidence bundle, the
workers' health, the database) through the reporter's edge (runtime/obs/gather.py), derive with the
pure modules (runtime/obs/live.py) and write one document each every OBS_LIVE_REFRESH_INTERVAL_MS
under `obs/live/` of the run's evidence prefix (and the local run folder when the local backend
passes the runs root). Neither ever writes a closure file, run_completed.json or base truth.

The platform_run_reporter holds the run's single-writer lock (runtime/obs/lock.py) for as long as
it runs, not only while it writes (docs/decisions.md): `reporter close` and `--phase P11` are then
refused with REPORTER_LOCK_HELD every time, not by chance of timing. It checks the lock before each
write; a lock it cannot take (a closing reporter holds it) or lost makes it write nothing and try
again next refresh. A run already closed is not refreshed: the daemon lets the lock go and idles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError, TransientError
from runtime.evidence.writer import EvidenceWriter, encode, run_bundle, schema_violations
from runtime.obs import gather
from runtime.obs.anomalies import anomaly_summary
from runtime.obs.errors import ReporterLockHeld, ReporterLockLost
from runtime.obs.live import LIVE_SCHEMAS, live_conformance, live_run_report, phase_reached
from runtime.obs.lock import ReporterLock, default_holder_name
from runtime.obs.run_report import phase_rows
from runtime.obs.spine_hops import spine_hops
from runtime.pacing import pause_after
from runtime.settings import Settings
from runtime.store.port import ObjectStore

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

REPORTER_DAEMON = "platform_run_reporter"
CONFORMANCE_DAEMON = "env_conformance"
#: How the daemon names itself in the lock row (P11 and operators see who holds the run).
HOLDER_PREFIX = f"{REPORTER_DAEMON}@"
DEFAULT_STARTUP_TIMEOUT_S = 300.0


class LiveDocumentInvalid(PlatformError):
    """A live document broke its schema: a bug, never written."""

    code = "LIVE_DOCUMENT_INVALID"
    next_step = "report the bug with the daemon's log; the closure (P11) is not affected"


def live_targets(settings: Settings, path_key: str, platform_run_id: str, environ: Mapping[str, str]) -> list[tuple[ObjectStore, str]]:
    """Where a live document goes: the run's evidence prefix in the object store (dev_min, `fp
    status` through the bundle) and, when the local backend passes the runs root, the run folder."""
    from runtime.worker.run import run_targets

    return run_targets(settings, platform_run_id, settings.registry.text(path_key), environ)


def write_live(path_key: str, document: dict[str, Any], targets: list[tuple[ObjectStore, str]]) -> None:
    """Schema-check a live document and put it to every target (a derived summary: overwritten)."""
    problems = schema_violations(LIVE_SCHEMAS[path_key], document)
    if problems:
        raise LiveDocumentInvalid(f"{path_key} refused: " + "; ".join(problems[:5]))
    data = encode(document)
    for store, key in targets:
        store.put(key, data, content_type="application/json")


#: The most of its time a live daemon spends refreshing (runtime/pacing.py): a refresh reads the
#: whole run, so the summary gets older as the run grows instead of costlier per minute.
REFRESH_DUTY = 0.05


class _Refresher:
    """What both daemons share: start-up checks, the refresh loop, counters."""

    component = ""
    path_key = ""

    def __init__(self, settings: Settings, platform_run_id: str, *, environ: Mapping[str, str], interval_s: float | None = None,
                 progress: Progress = print):
        self.settings = settings
        self.registry = settings.registry
        self.platform_run_id = platform_run_id
        self.interval_s = interval_s if interval_s is not None else self.registry.integer("OBS_LIVE_REFRESH_INTERVAL_MS") / 1000
        self.progress = progress
        self.targets = live_targets(settings, self.path_key, platform_run_id, environ)
        self.writer = EvidenceWriter(self.registry, platform_run_id, [run_bundle(settings, platform_run_id)])
        self.counters = {"refreshes": 0, "skipped": 0, "failed": 0}
        self._last_skip = ""

    def start(self, stop: threading.Event, startup_timeout_s: float) -> bool:
        """Refuse a run that is not there (RUN_UNKNOWN) or a missing DSN; retry what is transient.
        False when stopped during start-up."""
        from runtime.worker.run import require_run

        if not self.settings.db_dsn:
            raise PlatformError(f"{self.component} reads the run's tables from PostgreSQL but no DSN is set",
                                code="DB_DSN_MISSING", next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
        deadline, delay = time.monotonic() + startup_timeout_s, 0.5
        while True:
            try:
                require_run(self.settings, self.platform_run_id)
                return True
            except TransientError as e:
                left = deadline - time.monotonic()
                self.progress(f"{self.component}: start-up failed ({e.code}); "
                              + (f"retrying in {delay:.1f}s" if left > 0 else "giving up"))
                if left <= 0:
                    raise
                if stop.wait(min(delay, left)):
                    return False
                delay = min(delay * 2, 10.0)

    def closed(self) -> bool:
        """run_completed.json exists: P11 closed the run, there is nothing left to refresh."""
        return self.writer.read("RUN_CLOSURE_MARKER_PATH_PATTERN") is not None

    def refresh(self) -> bool:
        """One refresh; True when a document was written (and counted)."""
        raise NotImplementedError

    def _skip(self, why: str) -> bool:
        self.counters["skipped"] += 1
        if why != self._last_skip:  # say it once per change, not every refresh
            self.progress(f"{self.component}: {why}")
            self._last_skip = why
        return False

    def run(self, stop: threading.Event, *, max_refreshes: int | None = None) -> dict[str, int]:
        """Refresh every interval (longer when refreshes grow slow: `pause_after`) until `stop` (or
        `max_refreshes` attempts)."""
        attempts = 0
        try:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    if self.refresh():
                        self._last_skip = ""
                except TransientError as e:
                    self.counters["failed"] += 1
                    self.progress(f"{self.component}: refresh failed, retrying next interval: {e.operator_line()}")
                attempts += 1
                if max_refreshes is not None and attempts >= max_refreshes:
                    break
                stop.wait(pause_after(time.monotonic() - began, self.interval_s, REFRESH_DUTY))
        finally:
            self.finish()
        return dict(self.counters)

    def finish(self) -> None:
        """Let go of what the daemon holds."""


class RunReporterDaemon(_Refresher):
    """platform_run_reporter: the run-in-progress report, under the run's single-writer lock."""

    component = REPORTER_DAEMON
    path_key = "LIVE_RUN_REPORT_PATH_PATTERN"

    def __init__(self, settings: Settings, platform_run_id: str, **kw: Any):
        super().__init__(settings, platform_run_id, **kw)
        self.lock = ReporterLock(str(self.settings.db_dsn), self.registry, platform_run_id,
                                 holder=HOLDER_PREFIX + default_holder_name())
        self._topics_of: dict[str, set[str]] = {}
        self._groups_pending: dict[str, str] = {}

    def start(self, stop: threading.Event, startup_timeout_s: float) -> bool:
        """Start-up checks, then take the lock at once (before the first refresh), so `reporter
        close` is refused from the moment the pack runs; a lock held by a closing reporter is
        tried again each refresh."""
        if not super().start(stop, startup_timeout_s):
            return False
        if not self.closed():
            try:
                self.lock.acquire()
                self.progress(f"{self.component}: holds {self.lock.key} as {self.lock.holder}")
            except ReporterLockHeld as e:
                self._skip(f"writes nothing while another reporter holds the run: {e.message}")
        return True

    def refresh(self) -> bool:
        """Take (or keep) the lock, derive the run-in-progress report, prove the lock, write it."""
        if self.closed():
            if self.lock.held:
                self.lock.release()
            return self._skip(f"run {self.platform_run_id} is closed (run_completed.json): nothing left to refresh")
        if not self.lock.held:
            try:
                self.lock.acquire()
                self.progress(f"{self.component}: holds {self.lock.key} as {self.lock.holder}")
            except ReporterLockHeld as e:
                return self._skip(f"writes nothing while another reporter holds the run: {e.message}")
        document = self._document()
        try:
            self.lock.ensure_held()
        except ReporterLockLost as e:
            self.lock.release()
            return self._skip(f"lost the lock, wrote nothing (retaking it next refresh): {e.message}")
        write_live(self.path_key, document, self.targets)
        self.counters["refreshes"] += 1
        return True

    def _topics(self) -> dict[str, set[str]]:
        """Each built stream worker's input topics from its own handler. A handler that cannot be
        built yet (the run is early: e.g. DF needs P1's policy pin) is left out of this refresh,
        named in `groups_pending`, and tried again on the next one."""
        from runtime.worker.run import build_handler

        for c in gather.STREAM_WORKERS:
            if c in self._topics_of or not gather.COMPONENTS[c].built:
                continue
            try:
                self._topics_of[c] = set(build_handler(c, self.settings, self.platform_run_id).input_topics())
                self._groups_pending.pop(c, None)
            except PlatformError as e:
                self._groups_pending[c] = e.code
        return dict(self._topics_of)

    def _document(self) -> dict[str, Any]:
        from runtime.db.postgres import connect

        settings = self.settings
        topics_of = self._topics()
        bundle = gather.read_bundle(self.writer)
        health = gather.read_healths(settings, self.platform_run_id)
        with connect(str(settings.db_dsn), what="platform_run_reporter") as conn:
            counts = gather.spine_counts(conn, self.registry, bundle, self.platform_run_id, topics_of)
            sources = gather.anomaly_sources(conn, self.registry, bundle, self.platform_run_id, health)
            conn.rollback()
        return live_run_report(
            self.platform_run_id, written_at_utc=utc_iso(), refreshed_by=self.lock.holder,
            refresh=self.counters["refreshes"] + 1, interval_s=self.interval_s, phases=phase_rows(bundle.phases),
            counts={"events_emitted": counts.wsp_emitted, "receipts": sum(counts.receipts.values()),
                    "decisions": sum(counts.decisions_by_outcome.values()),
                    "intents": sum(counts.intents_by_action.values()),
                    "outcomes": sum(counts.outcomes_by_action.values()),
                    "audit_records": sum(counts.audit_by_kind.values()), "case_triggers": counts.triggers,
                    "labels": counts.case_labels},
            hops=[h.document() for h in spine_hops(counts)], groups_pending=self._groups_pending,
            anomaly_counts=anomaly_summary(sources)["counts"])

    def finish(self) -> None:
        """Release the lock (the row goes, the session ends)."""
        self.lock.release()


class ConformanceDaemon(_Refresher):
    """env_conformance: the environment-conformance checks P11 judges, evaluated while the run is in flight."""

    component = CONFORMANCE_DAEMON
    path_key = "LIVE_ENV_CONFORMANCE_PATH_PATTERN"

    def refresh(self) -> bool:
        """Evaluate every check from the bundle so far, the health documents and the decisions."""
        from runtime.db.postgres import connect

        if self.closed():
            return self._skip(f"run {self.platform_run_id} is closed: P11's obs/environment_conformance.json is final")
        bundle = gather.read_bundle(self.writer)
        health = gather.read_healths(self.settings, self.platform_run_id)
        with connect(str(self.settings.db_dsn), what="env_conformance") as conn:
            checks = gather.conformance_checks(conn, self.registry, bundle, self.platform_run_id, health)
            conn.rollback()
        document = live_conformance(self.platform_run_id, self.registry.environment, checks, written_at_utc=utc_iso(),
                                    refresh=self.counters["refreshes"] + 1, interval_s=self.interval_s,
                                    phase_reached=phase_reached(phase_rows(bundle.phases)))
        write_live(self.path_key, document, self.targets)
        self.counters["refreshes"] += 1
        return True


DAEMONS: dict[str, type[_Refresher]] = {REPORTER_DAEMON: RunReporterDaemon, CONFORMANCE_DAEMON: ConformanceDaemon}


def run_daemon(component: str, settings: Settings, platform_run_id: str, *, environ: Mapping[str, str],
               stop: threading.Event, progress: Progress = print, interval_s: float | None = None,
               startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, max_refreshes: int | None = None) -> dict[str, int]:
    """Run one obs_gov daemon for one run until stopped."""
    from runtime.worker.run import require_run_id

    require_run_id(platform_run_id)
    daemon = DAEMONS[component](settings, platform_run_id, environ=environ, interval_s=interval_s, progress=progress)
    if not daemon.start(stop, startup_timeout_s):
        return dict(daemon.counters)
    progress(f"{component} refreshing {daemon.registry.text(daemon.path_key)} of run {platform_run_id} "
             f"every {daemon.interval_s:g}s")
    counters = daemon.run(stop, max_refreshes=max_refreshes)
    progress(f"{component} stopped: {counters['refreshes']} refresh(es), {counters['skipped']} skipped, "
             f"{counters['failed']} failed")
    return counters
