"""`python -m runtime archive_writer|ieg|ofp|csfb|al|dla|case_trigger|cm run`: one stream-worker component as a daemon.

Only wiring: the run scope from `--platform-run-id` (or REQUIRED_PLATFORM_RUN_ID, as the pack
supervisor and ECS pass it), settings from the environment, then runtime.worker.run. `--help`
imports nothing of the component: its handler loads when it runs. Errors leave as one operator
line and exit 1; SIGTERM finishes the batch, commits and exits 0.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from runtime.worker.run import DEFAULT_STARTUP_TIMEOUT_S

RunIdOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the pinned run")]


def worker_app(component: str, description: str) -> typer.Typer:
    """The typer app of one worker component (`run`; df, al and dla also take `--replay-group`)."""
    app = typer.Typer(help=description, no_args_is_help=True)

    @app.command("run")
    def run(
        platform_run_id: RunIdOpt,
        startup_timeout: Annotated[float, typer.Option(min=0, help="seconds to retry start-up while the bus, "
                                                                   "database or object store is down")] = DEFAULT_STARTUP_TIMEOUT_S,
        exit_when_idle: Annotated[int | None, typer.Option(min=1, help="stop after this many empty polls in a row "
                                                                        "(one-shot catch-up; default: run until stopped)")] = None,
        replay_group: Annotated[str | None, typer.Option(help="re-read the run's topics from the start under a second "
                                                              "consumer group of this name, writing the same tables "
                                                              "idempotently (df, al, dla only)")] = None,
    ) -> None:
        """Consume the run's input topics until SIGTERM/SIGINT, writing state, positions and health."""
        import threading

        from runtime.cli_errors import operator_errors
        from runtime.settings import load_settings
        from runtime.worker.run import install_stop_signals, require_run_id, run_component

        with operator_errors():
            require_run_id(platform_run_id)
            stop = threading.Event()
            install_stop_signals(stop)
            run_component(load_settings(), component, platform_run_id, environ=os.environ,
                          startup_timeout_s=startup_timeout, progress=lambda line: typer.echo(line, err=True),
                          stop=stop, idle_exit_after=exit_when_idle, replay_group=replay_group)

    @app.command("version")
    def version() -> None:
        """Print the component's worker version."""
        typer.echo(f"{component} worker v1")

    return app


archive_writer_app = worker_app("archive_writer", "ArchiveWriter: every admitted topic -> immutable batch objects.")
ieg_app = worker_app("ieg", "Identity and entity graph: entities and edges from arrivals, anchors and traffic.")
ofp_app = worker_app("ofp", "Online feature plane: point-in-time entity windows from admitted traffic.")
csfb_app = worker_app("csfb", "Context store and flow binding: join frames and the FlowBinding index.")
al_app = worker_app("al", "Action layer: action intents -> simulated effects executed once -> action outcomes.")
dla_app = worker_app("dla", "Decision log and audit: lane records -> hash-chained audit batches, lineage, audit events.")
case_trigger_app = worker_app("case_trigger", "CaseTrigger: decisions that need a human, joined with DLA's audit records "
                                              "-> case triggers.")
cm_app = worker_app("cm", "Case management: case triggers -> append-only case timelines.")
