"""The obs_gov pack's daemons on a real Postgres and object store: the platform_run_reporter refreshes
obs/live/run_in_progress.json while holding the run's single-writer lock (so `reporter close` is
refused beside it), writes nothing while a closing reporter holds the lock, lets the lock go once
the run is closed, and never writes a closure file; env_conformance writes PENDING while
observations are missing and FAIL when one contradicts a pin; bad input is refused with its code."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.db.postgres import connect
from runtime.obs.cli import app, conformance_app
from runtime.obs.daemons import HOLDER_PREFIX, REFRESH_DUTY, ConformanceDaemon, RunReporterDaemon, run_daemon
from runtime.obs.gather import POLICY_PIN_CHECK, REGISTRY_PIN_CHECK
from runtime.obs.lock import ReporterLock, current_holder
from runtime.pacing import pause_after
from runtime.settings import Settings
from tests.runtime.obs.test_close import REG, _bundle, _closed, _put
from tests.runtime.obs.test_close import settings as settings  # the fixture, re-exported
from tests.runtime.obs.test_gather import DECISIONS, seed
from tests.support.events import random_run_id

runner = CliRunner()
LIVE_REPORT = REG.text("LIVE_RUN_REPORT_PATH_PATTERN")
LIVE_CONFORMANCE = REG.text("LIVE_ENV_CONFORMANCE_PATH_PATTERN")


def _keys(settings: Settings, run: str) -> set[str]:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run)
    return {i.key[len(prefix):] for i in settings.bucket("S3_EVIDENCE_BUCKET").list(prefix)}


def _live(settings: Settings, run: str, relative: str) -> dict[str, Any]:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run)
    return dict(json.loads(settings.bucket("S3_EVIDENCE_BUCKET").get(prefix + relative)))


def _seeded(settings: Settings, runtime_dsn: str | None = None) -> str:
    """A run whose bundle passed P10; with a DSN, its tables seeded through every plane."""
    run = random_run_id()
    _bundle(settings, run)
    if runtime_dsn:
        with connect(runtime_dsn) as conn:
            seed(conn, run)
    return run


def _env(tmp_path: Path) -> dict[str, str]:
    return {REG.group("runtime_env")["ENVVAR_RUNS_ROOT"]: str(tmp_path)}


def test_reporter_daemon_refreshes_the_run_in_progress_report_and_holds_the_lock_so_close_is_refused(
        settings: Settings, runtime_dsn: str, tmp_path: Path) -> None:
    run = _seeded(settings, runtime_dsn)
    before = _keys(settings, run)
    daemon = RunReporterDaemon(settings, run, environ=_env(tmp_path), interval_s=0.05, progress=lambda _: None)
    try:
        assert daemon.refresh() is True
        doc = _live(settings, run, LIVE_REPORT)
        assert doc["counts"]["decisions"] == DECISIONS and doc["final"] is False and doc["phase_reached"] == "P10"
        assert doc["refreshed_by"].startswith(HOLDER_PREFIX)
        hops = {h["hop"]: h for h in doc["reconciliation_so_far"]["hops"]}
        assert hops["consumer_to_decisions"]["observed"] == DECISIONS and hops["consumer_to_decisions"]["settled"]
        assert json.loads((tmp_path / run / LIVE_REPORT).read_text()) == doc  # the local run folder's copy
        holder = current_holder(runtime_dsn, REG, run)
        assert holder is not None and holder.alive and holder.holder == daemon.lock.holder
        # the lock is held between refreshes, not only while writing: a manual close is refused every time
        result = runner.invoke(app, ["close", "--platform-run-id", run])
        assert result.exit_code == 1 and "REPORTER_LOCK_HELD" in result.output and HOLDER_PREFIX in result.output
        assert not _closed(settings, run)
        assert daemon.refresh() is True and _live(settings, run, LIVE_REPORT)["refresh"] == 2
    finally:
        daemon.finish()
    assert current_holder(runtime_dsn, REG, run) is None
    assert _keys(settings, run) - before == {LIVE_REPORT}  # no closure file, no marker, nothing else


def test_reporter_daemon_writes_nothing_while_a_closing_reporter_holds_the_lock(settings: Settings, runtime_dsn: str,
                                                                                tmp_path: Path) -> None:
    run = _seeded(settings)
    lines: list[str] = []
    daemon = RunReporterDaemon(settings, run, environ={}, interval_s=0.05, progress=lines.append)
    try:
        with ReporterLock(runtime_dsn, REG, run, holder="closing-reporter"):
            assert daemon.refresh() is False and daemon.refresh() is False
            assert LIVE_REPORT not in _keys(settings, run)
        assert len([line for line in lines if "closing-reporter" in line]) == 1  # said once, not every refresh
        assert daemon.refresh() is True and daemon.lock.held
    finally:
        daemon.finish()


def test_reporter_daemon_lets_the_lock_go_once_the_run_is_closed(settings: Settings, runtime_dsn: str) -> None:
    run = _seeded(settings)
    daemon = RunReporterDaemon(settings, run, environ={}, interval_s=0.05, progress=lambda _: None)
    try:
        assert daemon.refresh() is True and daemon.lock.held
        _put(settings, run, REG.text("RUN_CLOSURE_MARKER_PATH_PATTERN"), {"platform_run_id": run, "status": "SPINE_GREEN"})
        assert daemon.refresh() is False and not daemon.lock.held
        assert current_holder(runtime_dsn, REG, run) is None
    finally:
        daemon.finish()


def test_run_daemon_refreshes_every_interval_until_stopped(settings: Settings, runtime_dsn: str) -> None:
    run = _seeded(settings)
    stop = threading.Event()
    counters = run_daemon("platform_run_reporter", settings, run, environ={}, stop=stop, progress=lambda _: None,
                          interval_s=0.01, max_refreshes=2)
    assert counters == {"refreshes": 2, "skipped": 0, "failed": 0}
    assert current_holder(runtime_dsn, REG, run) is None  # released on the way out


def test_env_conformance_is_pending_while_observations_are_missing(settings: Settings, tmp_path: Path) -> None:
    run = random_run_id()
    _bundle(settings, run, last_passed="P6")
    daemon = ConformanceDaemon(settings, run, environ=_env(tmp_path), interval_s=0.05, progress=lambda _: None)
    assert daemon.refresh() is True
    doc = _live(settings, run, LIVE_CONFORMANCE)
    assert doc["status"] == "PENDING" and doc["failed_checks"] == [] and doc["phase_reached"] == "P6"
    assert POLICY_PIN_CHECK in doc["pending_checks"]  # no decision reports the policy pin yet
    assert REGISTRY_PIN_CHECK not in doc["pending_checks"] + doc["failed_checks"]  # the daemon loaded the registry P1 pinned
    assert {c["category"] for c in doc["checks"]} >= {"handles_resolved", "run_scope_enforced",
                                                       "no_forbidden_infrastructure", "pinned_versions_in_use"}
    assert REG.text("ENV_CONFORMANCE_PATH_PATTERN") not in _keys(settings, run)  # P11's file stays P11's


def test_env_conformance_fails_when_a_decision_contradicts_the_pin(settings: Settings, runtime_dsn: str) -> None:
    run = _seeded(settings, runtime_dsn)  # decisions report policy digest 'p'; run.json pins none
    daemon = ConformanceDaemon(settings, run, environ={}, interval_s=0.05, progress=lambda _: None)
    assert daemon.refresh() is True
    doc = _live(settings, run, LIVE_CONFORMANCE)
    assert doc["status"] == "FAIL" and doc["failed_checks"] == [POLICY_PIN_CHECK]


@pytest.mark.parametrize("cli, argv", [(app, ["run"]), (conformance_app, ["run"])])
def test_a_daemon_without_run_scope_is_refused(cli: Any, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUIRED_PLATFORM_RUN_ID", raising=False)
    result = runner.invoke(cli, argv)
    assert result.exit_code == 1 and "RUN_SCOPE_MISSING" in result.output and "->" in result.output


@pytest.mark.parametrize("cli", [app, conformance_app])
def test_a_daemon_for_an_unknown_run_is_refused(cli: Any, settings: Settings) -> None:
    run = random_run_id()
    result = runner.invoke(cli, ["run", "--platform-run-id", run, "--refreshes", "1"])
    assert result.exit_code == 1 and "RUN_UNKNOWN" in result.output, result.output
    assert _keys(settings, run) == set()


def test_obs_gov_pack_runs_both_daemons_and_close_is_refused_until_the_pack_stops(
        settings: Settings, runtime_dsn: str, tmp_path: Path) -> None:
    from controller.compute.local_backend import daemon_commands, local_argv, running_packs, start_pack, stop_pack

    run = _seeded(settings)
    commands = {name: [*argv, "--interval-ms", "1000"] for name, argv in daemon_commands(REG, "obs_gov").items()}
    assert commands["platform_run_reporter"][:-2] == local_argv(("reporter", "run"))
    state = start_pack(REG, "obs_gov", run, tmp_path, {}, commands=commands)
    try:
        assert state["run_scope"] == run and state["running_count"] == 2
        deadline = time.monotonic() + 60
        while not (LIVE_CONFORMANCE in _keys(settings, run) and current_holder(runtime_dsn, REG, run)) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = {p.name: p.read_text()[-500:] for p in (tmp_path / run).glob("operate/*/logs/*.log")}
        holder = current_holder(runtime_dsn, REG, run)
        assert holder is not None and holder.alive and holder.holder.startswith(HOLDER_PREFIX), logs
        assert (tmp_path / run / LIVE_CONFORMANCE).is_file(), logs  # the supervisor passed the runs root
        result = runner.invoke(app, ["close", "--platform-run-id", run])
        assert result.exit_code == 1 and "REPORTER_LOCK_HELD" in result.output and HOLDER_PREFIX in result.output
    finally:
        stop_pack(REG, "obs_gov", tmp_path)
    assert "obs_gov" not in running_packs(REG, tmp_path)
    assert current_holder(runtime_dsn, REG, run) is None  # the daemon let the lock go on SIGTERM
    assert not _closed(settings, run)


def test_a_slow_refresh_stretches_the_pause_so_the_daemon_refreshes_at_most_a_twentieth_of_the_time() -> None:
    assert pause_after(0.01, 5.0, REFRESH_DUTY) == 5.0  # a quick refresh keeps the registry's interval
    assert pause_after(10.0, 5.0, REFRESH_DUTY) == pytest.approx(190.0)  # a 10 s refresh (a full-cap run)
    assert 10.0 / (10.0 + pause_after(10.0, 5.0, REFRESH_DUTY)) == pytest.approx(REFRESH_DUTY)
