"""`python -m runtime reporter close|run` and `python -m runtime env_conformance run`: the obs_gov plane's commands.

`reporter close --platform-run-id ID` is P11's job, the single writer that closes a run;
`reporter run` is the obs_gov pack's platform_run_reporter daemon and `env_conformance run` its
conformance daemon, refreshing `obs/live/` while the run is in flight (runtime/obs/daemons.py).

Run where the database lives (a local process, the TD_REPORTER ECS task in dev_min). It prints one
line per closure file and the verdict; it exits 0 when the closure files were written (the run may
still be PARTIAL: P11's gate reads them), 1 with one operator line (code, message, next step) when
the run cannot be closed or another reporter holds the lock (REPORTER_LOCK_HELD).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from runtime.cli_errors import operator_errors

app = typer.Typer(help="Obs/Gov reporter: close a run (P11) - reconciliation, replay anchors, conformance, anomalies, "
                       "the run report and run_completed.json, under the run's single-writer lock.", no_args_is_help=True)

RunOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the run to close")]
#: A daemon's run scope: the option, or REQUIRED_PLATFORM_RUN_ID as the pack supervisor and ECS pass it.
ScopeOpt = Annotated[str | None, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID",
                                              help="the run in flight (default: REQUIRED_PLATFORM_RUN_ID)")]
IntervalOpt = Annotated[int | None, typer.Option("--interval-ms", min=1, help="refresh interval (default: the registry's "
                                                                              "OBS_LIVE_REFRESH_INTERVAL_MS)")]
RefreshesOpt = Annotated[int | None, typer.Option("--refreshes", min=1, help="stop after this many refreshes "
                                                                             "(default: run until stopped)")]

conformance_app = typer.Typer(help="Obs/Gov env_conformance daemon: evaluate the environment-conformance checks of the run "
                                   "in flight every OBS_LIVE_REFRESH_INTERVAL_MS (obs/live/environment_conformance.json).",
                              no_args_is_help=True)


@app.callback()
def main() -> None:
    """Reporter commands."""


@app.command("close")
def close(platform_run_id: RunOpt) -> None:
    """Close the run: gather its durable state, write every closure file, run_completed.json last.
    Refused (nothing written) for an unknown run (RUN_UNKNOWN), a run that has not passed P10
    (REPORTER_RUN_NOT_CLOSABLE), a bundle missing a file (REPORTER_EVIDENCE_MISSING), or while
    another reporter holds the run (REPORTER_LOCK_HELD)."""
    from runtime.obs.close import close_run
    from runtime.settings import load_settings

    with operator_errors():
        closed = close_run(load_settings(), platform_run_id, progress=lambda line: typer.echo(line, err=True))
    for w in closed.written:
        typer.echo(f"wrote {w.relative_path} sha256 {w.sha256[:12]}")
    typer.echo(f"P11 {platform_run_id}: {closed.status}; reconciliation {closed.reconciliation_status}"
               + (f" (failed hops: {', '.join(closed.failed_hops)})" if closed.failed_hops else ""))
    for line in closed.failed_conditions:
        typer.echo(f"  not met: {line}")


def _run_daemon(component: str, platform_run_id: str | None, interval_ms: int | None, refreshes: int | None) -> None:
    """Shared wiring of the obs_gov daemons: run scope, signals, settings; one operator line on error."""
    import threading

    from runtime.cli_errors import operator_errors
    from runtime.errors import PlatformError
    from runtime.obs.daemons import run_daemon
    from runtime.settings import load_settings
    from runtime.worker.run import install_stop_signals

    with operator_errors():
        if not platform_run_id:
            raise PlatformError(f"{component} has no run scope: neither --platform-run-id nor REQUIRED_PLATFORM_RUN_ID is set",
                                code="RUN_SCOPE_MISSING",
                                next_step="start it through its pack (P2 sets the scope) or pass --platform-run-id")
        stop = threading.Event()
        install_stop_signals(stop)
        run_daemon(component, load_settings(), platform_run_id, environ=os.environ, stop=stop,
                   progress=lambda line: typer.echo(line, err=True),
                   interval_s=interval_ms / 1000 if interval_ms else None, max_refreshes=refreshes)


@app.command("run")
def run(platform_run_id: ScopeOpt = None, interval_ms: IntervalOpt = None, refreshes: RefreshesOpt = None) -> None:
    """The platform_run_reporter daemon: hold the run's single-writer lock while it runs and refresh
    obs/live/run_in_progress.json (phases, counts, reconciliation so far, anomalies) every interval.
    `reporter close` and `--phase P11` are refused (REPORTER_LOCK_HELD) until it stops."""
    _run_daemon("platform_run_reporter", platform_run_id, interval_ms, refreshes)


@conformance_app.callback()
def conformance_main() -> None:
    """env_conformance commands."""


@conformance_app.command("run")
def conformance_run(platform_run_id: ScopeOpt = None, interval_ms: IntervalOpt = None, refreshes: RefreshesOpt = None) -> None:
    """The env_conformance daemon: evaluate handles resolved, run scope of every pack, forbidden
    infrastructure and pins in use every interval into obs/live/environment_conformance.json
    (PASS, FAIL, or PENDING while an observation is not there yet). P11 keeps its own final evaluation."""
    _run_daemon("env_conformance", platform_run_id, interval_ms, refreshes)
