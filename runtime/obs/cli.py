"""`python -m runtime reporter close --platform-run-id ID`: P11's job, the single writer that closes a run.

Run where the database lives (a local process, the TD_REPORTER ECS task in dev_min). It prints one
line per closure file and the verdict; it exits 0 when the closure files were written (the run may
still be PARTIAL: P11's gate reads them), 1 with one operator line (code, message, next step) when
the run cannot be closed or another reporter holds the lock (REPORTER_LOCK_HELD).
"""

from __future__ import annotations

from typing import Annotated

import typer

from runtime.cli_errors import operator_errors

app = typer.Typer(help="Obs/Gov reporter: close a run (P11) - reconciliation, replay anchors, conformance, anomalies, "
                       "the run report and run_completed.json, under the run's single-writer lock.", no_args_is_help=True)

RunOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the run to close")]


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
