"""`python -m runtime rtdl caught-up`: P8's job, run where the database lives (an ECS task in dev_min).

Only wiring: settings from the environment, then runtime.rtdl.caught_up. Errors leave as one
operator line and exit 1; nothing PASS-looking is written when the RTDL core is not caught up.
"""

from __future__ import annotations

from typing import Annotated

import typer

from runtime.errors import PlatformError

app = typer.Typer(help="RTDL core: the P8 caught-up check over durable worker positions, health and state.",
                  no_args_is_help=True)

RunIdOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the pinned run")]


@app.command("caught-up")
def caught_up(
    platform_run_id: RunIdOpt,
    wait: Annotated[float, typer.Option(min=0, max=3600, help="seconds to wait for the workers to catch up")] = 600.0,
) -> None:
    """P8: wait until every rtdl_core group reached P7's end offsets, GREEN, no dead letters; write the evidence."""
    from runtime.cli_errors import operator_errors
    from runtime.contracts.ids import is_platform_run_id
    from runtime.rtdl.caught_up import write_caught_up
    from runtime.settings import load_settings

    with operator_errors():
        if not is_platform_run_id(platform_run_id):
            raise PlatformError(f"{platform_run_id!r} is not a platform_run_id", code="RUN_ID_INVALID",
                                next_step="pass the run id P1 pinned")
        written = write_caught_up(load_settings(), platform_run_id, wait_s=wait,
                                  progress=lambda line: typer.echo(line, err=True))
    typer.echo(f"P8 caught up for {platform_run_id}: {', '.join(w.relative_path for w in written)}")


@app.command("version")
def version() -> None:
    """Print the RTDL core version."""
    typer.echo("rtdl v1")
