"""Live progress against a real Postgres: the counts come from WSP's checkpoint, IG's receipts, the
admitted traffic and the decisions of the run (not another run's); the monitor samples while a job
runs, keeps the run folder's progress file current, ends with the final counts, and `fp status` on
the run in flight shows them at 80 columns."""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from controller.cli.main import app
from controller.cli.progress_view import LogLines
from controller.compute.port import ComputeBackend, JobResult, PackState
from controller.compute.port import Progress as JobProgress
from controller.phases.base import RunContext
from controller.phases.compute import run_job
from controller.progress import Counts, Progress, read_progress
from controller.progress_probe import DurableCounts, ProgressMonitor
from controller.runs import RunFolders
from runtime.contracts.registry import load_registry
from runtime.db.migrate import apply_migrations
from runtime.db.postgres import Database
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.settings import Settings
from runtime.store.local import FolderStore
from runtime.wsp.checkpoint import WspCheckpoint

SCENARIO = "0123456789abcdef0123456789abcdef"
OUTPUTS = ("s3_event_stream_with_fraud_6B", "arrival_events_5B")


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    apply_migrations(postgres_dsn)
    return postgres_dsn


def _run_id() -> str:
    return f"platform_2026{secrets.randbelow(10**4):04d}T{secrets.randbelow(10**6):06d}Z"


@pytest.fixture
def ctx(tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunContext]:
    """A run folder (cwd) whose P6 is RUNNING, with P3's and WSP's evidence (gate 30 of 40 and 20 rows)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FP_HANDLES_REGISTRY", raising=False)
    registry = load_registry("local_parity")
    run = _run_id()
    folders = RunFolders.from_registry(registry)
    writer = EvidenceWriter(registry, run, [BundleTarget(FolderStore(folders.evidence_dir(run)), "")])
    base = {"platform_run_id": run, "scenario_run_id": SCENARIO, "written_at_utc": "2026-11-23T12:00:00Z", "phase_id": "P3",
            "source_handles": []}
    evidence = folders.evidence_dir(run)
    (evidence / "oracle").mkdir(parents=True)
    (evidence / "wsp").mkdir()
    (evidence / "phases").mkdir()
    (evidence / "oracle/stream_sort_summary.json").write_text(json.dumps(
        {**base, "outputs": [{"output_id": OUTPUTS[0], "rows": 40}, {"output_id": OUTPUTS[1], "rows": 20},
                             {"output_id": "not_streamed", "rows": 999}]}))
    (evidence / "wsp/wsp_start.json").write_text(json.dumps({**base, "phase_id": "P6", "outputs": list(OUTPUTS),
                                                            "max_events_per_output": 30}))
    (evidence / "phases/P6.json").write_text(json.dumps({"phase_id": "P6", "name": "STREAMING_ACTIVE", "state": "RUNNING",
                                                         "started_at_utc": "2026-11-23T12:00:00Z"}))
    (folders.root / "ACTIVE_RUN_ID").write_text(run + "\n")
    settings = Settings("local_parity", registry, "us-east-1", None, dsn, "kafka", None)
    yield RunContext(registry, run, folders, writer, settings, {})


def _admit(db: Database, run: str, start: int, n: int, *, traffic: bool = True) -> None:
    """n ADMIT receipts and admissions of the run (event ids start..start+n)."""
    event_class = "traffic_fraud" if traffic else "arrival_events"
    with db.connection() as conn:
        for i in range(start, start + n):
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state)"
                         " VALUES (%s, %s, %s, 'h', 'ADMITTED')", (run, event_class, f"e{i}"))
            conn.execute("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key,"
                         " batch_index, receipt) VALUES (%s, %s, %s, %s, 'ADMIT', 'b', 0, '{}')",
                         (f"{run}-{event_class}-{i}", run, event_class, f"e{i}"))


def _decide(db: Database, run: str, start: int, n: int) -> None:
    with db.connection() as conn:
        for i in range(start, start + n):
            conn.execute("INSERT INTO df_decisions (decision_id, platform_run_id, event_class, event_id, event_ts_utc, outcome,"
                         " posture, reason_codes, degrade_codes, policy_digest, core_sha256, record, eb_ref, decided_at)"
                         " VALUES (%s, %s, 'traffic_fraud', %s, now(), 'APPROVE', 'GREEN', '{}', '{}', 'p', 'c', '{}', '{}',"
                         " now())", (f"{run}-d{i}", run, f"e{i}"))


def test_the_counts_are_the_runs_own_from_durable_state(ctx: RunContext, dsn: str) -> None:
    other = _run_id()
    checkpoint = WspCheckpoint(dsn)
    with Database(dsn, max_size=1) as db:
        checkpoint.start(ctx.platform_run_id, SCENARIO, {"topic": "t", "partition": 0, "offset": "1"})
        checkpoint.advance(ctx.platform_run_id, SCENARIO, OUTPUTS[0], 12)
        checkpoint.advance(ctx.platform_run_id, SCENARIO, OUTPUTS[1], 5)
        _admit(db, ctx.platform_run_id, 0, 6)
        _admit(db, ctx.platform_run_id, 100, 4, traffic=False)
        _decide(db, ctx.platform_run_id, 0, 3)
        _admit(db, other, 0, 7)  # another run's admissions and decisions are not counted
        _decide(db, other, 0, 7)
    checkpoint.close()
    health = ctx.folders.run_dir(ctx.platform_run_id) / "online_feature_plane/health/last_health.json"
    health.parent.mkdir(parents=True)
    health.write_text(json.dumps({"health_state": "GREEN", "lag_total": 9, "counters": {}, "written_at_utc": "2026-11-23T12:00:05Z"}))
    probe = DurableCounts(ctx, dsn)
    try:
        counts = probe.read()
    finally:
        probe.close()
    assert (counts.emitted, counts.planned, counts.admitted, counts.admitted_traffic, counts.decided, counts.lag) == (17, 50, 10, 6, 3, 9)


def test_the_monitor_samples_while_the_job_runs_and_ends_on_the_final_counts(ctx: RunContext, dsn: str) -> None:
    seen: list[Progress | None] = []
    checkpoint = WspCheckpoint(dsn)
    checkpoint.start(ctx.platform_run_id, SCENARIO, {"topic": "t", "partition": 0, "offset": "1"})
    monitor = ProgressMonitor(ctx, seen.append, every_s=0.1)
    assert monitor.active

    def job() -> None:  # what WSP does while the controller waits: the checkpoint moves forward
        for rows in range(5, 31, 5):
            checkpoint.advance(ctx.platform_run_id, SCENARIO, OUTPUTS[0], rows)
            time.sleep(0.1)
        checkpoint.advance(ctx.platform_run_id, SCENARIO, OUTPUTS[1], 20)

    with monitor:
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        in_flight = read_progress(ctx.folders.run_dir(ctx.platform_run_id) / "progress/run_progress.json")
        assert in_flight is not None and in_flight.phase_id == "P6"
        result = CliRunner().invoke(app, ["status"], env={"COLUMNS": "80"})
    checkpoint.close()
    assert seen[-1] is None and len(seen) >= 4, seen
    final = seen[-2]
    assert final is not None and final.counts.emitted == 50 and final.counts.planned == 50 and final.eta_s == 0.0
    assert any(p is not None and p.rate_per_s for p in seen[:-1])
    assert not monitor.skipped, monitor.skipped
    assert result.exit_code == 0, result.output
    assert "in flight: P6 emitted " in result.output and "counted at" in result.output, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output


def test_a_phase_without_streams_or_without_a_database_is_not_monitored(ctx: RunContext) -> None:
    record = ctx.folders.evidence_dir(ctx.platform_run_id) / "phases/P6.json"
    record.write_text(record.read_text().replace('"P6"', '"P3"').replace("STREAMING_ACTIVE", "ORACLE_READY"))
    record.rename(record.with_name("P3.json"))
    assert not ProgressMonitor(ctx, lambda p: None, every_s=0.1).active
    ctx.settings = None
    assert not ProgressMonitor(ctx, lambda p: None, every_s=0.1).active


class _WspLikeBackend(ComputeBackend):
    """Runs a job in-process: the job moves WSP's checkpoint forward like the WSP process does."""

    kind = "local"

    def __init__(self, dsn: str, run: str):
        self.dsn, self.run = dsn, run

    def start_pack(self, pack: str, run_id: str, *, timeout: float = 120.0, progress: JobProgress | None = None) -> PackState:
        raise NotImplementedError

    def stop_pack(self, pack: str, *, timeout: float = 60.0) -> bool:
        raise NotImplementedError

    def pack_state(self, pack: str) -> PackState:
        raise NotImplementedError

    def run_job(self, component: str, argv: list[str], run_id: str, *, extra_env: dict[str, str] | None = None,
                timeout: float = 3600.0, progress: JobProgress | None = None, check: bool = True) -> JobResult:
        checkpoint = WspCheckpoint(self.dsn)
        checkpoint.start(run_id, SCENARIO, {"topic": "t", "partition": 0, "offset": "1"})
        for rows in (10, 20, 30):
            checkpoint.advance(run_id, SCENARIO, OUTPUTS[0], rows)
            time.sleep(0.15)
        checkpoint.close()
        return JobResult(component=component, exit_code=0, log_location="in-process")


def test_every_job_of_a_streaming_phase_runs_under_the_monitor_when_the_operator_asks(ctx: RunContext, dsn: str) -> None:
    log = io.StringIO()
    ctx.backend = _WspLikeBackend(dsn, ctx.platform_run_id)
    ctx.options.update(run_progress=LogLines(Console(file=log, width=200), every_s=0.0), progress_every_s=0.05)
    run_job(ctx, "wsp", ["wsp", "run", "--platform-run-id", ctx.platform_run_id])
    lines = log.getvalue().splitlines()
    assert len(lines) >= 2 and lines[-1].startswith("  P6 emitted 30/50 admitted 0 decided 0"), lines
    assert len(set(lines)) == len(lines), lines  # a line only when something moved
    assert len(ctx.jobs) == 1
    ctx.options.pop("run_progress")
    before = (ctx.folders.run_dir(ctx.platform_run_id) / "progress/run_progress.json").stat().st_mtime_ns
    run_job(ctx, "wsp", ["wsp", "run", "--platform-run-id", ctx.platform_run_id])  # not asked: no sampling
    assert (ctx.folders.run_dir(ctx.platform_run_id) / "progress/run_progress.json").stat().st_mtime_ns == before


def test_a_read_that_hangs_never_holds_the_phase_up(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("controller.progress_probe.JOIN_TIMEOUT_S", 0.2)
    release = threading.Event()
    seen: list[Progress | None] = []

    def hanging() -> Counts:  # a database that stopped answering (SIGSTOP) mid-read
        release.wait(10)
        return Counts()

    started = time.monotonic()
    with ProgressMonitor(ctx, seen.append, every_s=0.05, counts=hanging) as monitor:
        time.sleep(0.1)
    took = time.monotonic() - started
    release.set()
    assert took < 2.0, took
    assert seen == [None] and "did not return" in monitor.skipped[0]
