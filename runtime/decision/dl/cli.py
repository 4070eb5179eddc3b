"""`python -m runtime dl run`: the degrade ladder of one run as a daemon (runtime/decision/dl/daemon.py).

Only wiring, like the stream workers' CLI (runtime/worker/cli.py): the run scope from
`--platform-run-id` (or REQUIRED_PLATFORM_RUN_ID, as the pack supervisor and ECS pass it),
settings from the environment. Errors leave as one operator line and exit 1; SIGTERM stops it
after the tick in hand and exits 0.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from runtime.worker.cli import RunIdOpt
from runtime.worker.run import DEFAULT_STARTUP_TIMEOUT_S

app = typer.Typer(help="Degrade ladder: the decision lane's posture GREEN / AMBER / RED from its inputs' health.",
                  no_args_is_help=True)


@app.command("run")
def run(
    platform_run_id: RunIdOpt,
    startup_timeout: Annotated[float, typer.Option(min=0, help="seconds to retry start-up while the database "
                                                               "or object store is down")] = DEFAULT_STARTUP_TIMEOUT_S,
    ticks: Annotated[int | None, typer.Option(min=1, help="stop after this many evaluations (default: run until "
                                                           "stopped)")] = None,
) -> None:
    """Judge the lane's health every DL_EVAL_INTERVAL_MS until SIGTERM/SIGINT, appending posture changes."""
    import threading

    from runtime.cli_errors import operator_errors
    from runtime.decision.dl.daemon import run_dl
    from runtime.settings import load_settings
    from runtime.worker.run import install_stop_signals, require_run_id

    with operator_errors():
        require_run_id(platform_run_id)
        stop = threading.Event()
        install_stop_signals(stop)
        run_dl(load_settings(), platform_run_id, environ=os.environ, stop=stop, startup_timeout_s=startup_timeout,
               progress=lambda line: typer.echo(line, err=True), max_ticks=ticks)


@app.command("version")
def version() -> None:
    """Print DL's version."""
    typer.echo("dl daemon v1")
