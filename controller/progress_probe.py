"""Where the live progress of a run comes from: durable state only, read with the queries the
components already own (WSP's checkpoint, IG's receipt counts, the decision lane's admitted-traffic
count), the run's own evidence (what WSP plans to emit) and the workers' health documents (lag).

`ProgressMonitor` samples them every few seconds in a thread while a phase's job runs, writes the
run folder's progress file and feeds the operator's sink. It reads Postgres directly, so it runs
where the controller can reach the run's database (local_parity); in dev_min the database is
inside the VPC and the operator sees the ECS task lines instead (docs/decisions.md). A sample that
cannot be read is skipped: progress never fails a phase.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from controller.phases.base import RunContext
from controller.progress import PHASE_COUNTERS, Counts, Progress, Sample, progress_of, write_progress
from controller.status import component_rows, phase_rows
from runtime.contracts.ids import utc_iso
from runtime.db.postgres import Database
from runtime.decision.committed import admitted_traffic
from runtime.errors import PlatformError
from runtime.ig.store import AdmissionStore
from runtime.wsp.checkpoint import WspCheckpoint

#: How long the end of a job waits for a sample in progress (a read never holds a phase up longer).
JOIN_TIMEOUT_S = 5.0
#: The sink also hears None once the job ended (a terminal line stops refreshing, a log prints the last line).
ProgressSink = Callable[[Progress | None], None]


def planned_events(ctx: RunContext) -> int | None:
    """What WSP set out to emit: for each output it streams (wsp_start.json), the rows of its stream view
    (P3's stream_sort_summary.json), at most the gate. None before WSP wrote its start."""
    start = ctx.writer.read("WSP_START_PATH_PATTERN")
    sort = ctx.writer.read("STREAM_SORT_SUMMARY_PATH_PATTERN")
    if not start or not sort:
        return None
    rows = {o["output_id"]: int(o.get("rows") or 0) for o in sort.get("outputs", [])}
    gate = start.get("max_events_per_output")
    return sum(min(rows.get(o, 0), gate) if gate else rows.get(o, 0) for o in start.get("outputs", []))


class DurableCounts:
    """The run's counts, read from Postgres with the components' own queries, one connection each."""

    def __init__(self, ctx: RunContext, dsn: str):
        self.ctx = ctx
        self.checkpoint = WspCheckpoint(dsn)
        self.admissions = AdmissionStore(dsn, max_size=1)
        self.db = Database(dsn, name="run progress", max_size=1)
        self._planned: int | None = None
        self._scenario: str | None = None

    def close(self) -> None:
        """Release the connections."""
        self.checkpoint.close()
        self.admissions.close()
        self.db.close()

    def read(self) -> Counts:
        """The counts now."""
        run = self.ctx.platform_run_id
        if self._scenario is None:
            start = self.ctx.writer.read("WSP_START_PATH_PATTERN") or {}
            self._scenario = start.get("scenario_run_id")
            self._planned = planned_events(self.ctx) if self._scenario else None
        emitted = sum(self.checkpoint.rows_sent(run, self._scenario).values()) if self._scenario else None
        by_outcome, _, _ = self.admissions.outcome_counts(run)
        with self.db.connection() as conn:
            traffic = admitted_traffic(conn, run)
            row = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (run,)).fetchone()
        decided = int(row[0]) if row else 0
        lags = [c.lag for c in component_rows(self.ctx.registry, self.ctx.folders.run_dir(run)) if c.lag is not None]
        return Counts(emitted=emitted, planned=self._planned, admitted=int(by_outcome.get("ADMIT", 0)),
                      admitted_traffic=traffic, decided=decided, lag=sum(lags) if lags else None)


def running_phase(ctx: RunContext) -> tuple[str, str] | None:
    """(phase id, started_at_utc) of the phase whose record says RUNNING, if any."""
    for row in phase_rows(ctx.registry, ctx.folders.evidence_dir(ctx.platform_run_id)):
        if row.state == "RUNNING":
            return row.phase_id, row.started
    return None


class ProgressMonitor:
    """Samples the run's counts every `every_s` while the `with` block runs (a phase's job), for the
    phases that stream or wait on streams (PHASE_COUNTERS); a no-op for the others and without a database."""

    def __init__(self, ctx: RunContext, sink: ProgressSink, *, every_s: float,
                 counts: Callable[[], Counts] | None = None, clock: Callable[[], float] = time.monotonic):
        self.ctx, self.sink, self.every_s, self.clock = ctx, sink, every_s, clock
        self._counts = counts
        self._probe: DurableCounts | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[Sample] = []
        self.skipped: list[str] = []
        self.phase = running_phase(ctx)
        self.path = ctx.folders.run_dir(ctx.platform_run_id) / ctx.registry.text("RUN_PROGRESS_PATH_PATTERN")

    @property
    def active(self) -> bool:
        """Whether this phase is one progress is shown for and its counts can be read."""
        dsn = self.ctx.settings.db_dsn if self.ctx.settings else None
        return self.phase is not None and self.phase[0] in PHASE_COUNTERS and (self._counts is not None or bool(dsn))

    def __enter__(self) -> ProgressMonitor:
        if self.active:
            if self._counts is None:
                assert self.ctx.settings is not None and self.ctx.settings.db_dsn
                self._probe = DurableCounts(self.ctx, self.ctx.settings.db_dsn)
                self._counts = self._probe.read
            self._thread = threading.Thread(target=self._loop, name="run-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=JOIN_TIMEOUT_S)
        if self._thread.is_alive():  # a read hangs (a stopped database): the phase goes on without it
            self.skipped.append(f"a progress read did not return within {JOIN_TIMEOUT_S:.0f}s; left behind")
        else:
            self.sample()  # the counts when the job ended
            if self._probe is not None:
                self._probe.close()
        self.sink(None)

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.every_s):
                return

    def sample(self) -> Progress | None:
        """Read the counts once, write the progress file, hand the progress to the sink."""
        assert self.phase is not None and self._counts is not None
        try:
            counts = self._counts()
        except Exception as e:  # progress is for the operator's eyes: it never fails a phase
            self.skipped.append(f"{type(e).__name__}: {e}")
            return None
        self.samples.append(Sample(self.clock(), utc_iso(), self.phase[0], counts))
        progress = progress_of(self.samples, self.phase[1])
        try:
            write_progress(self.path, self.ctx.platform_run_id, progress)
        except (PlatformError, OSError) as e:
            self.skipped.append(str(e))
        self.sink(progress)
        return progress


def monitor(ctx: RunContext) -> Any:
    """The progress monitor for the job about to run, when the operator asked for progress
    (option `run_progress`: the sink, with `progress_every_s`); otherwise a no-op context."""
    from contextlib import nullcontext

    sink = ctx.options.get("run_progress")
    if sink is None:
        return nullcontext()
    return ProgressMonitor(ctx, sink, every_s=float(ctx.options.get("progress_every_s", 10.0)))
