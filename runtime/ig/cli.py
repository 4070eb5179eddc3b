"""`python -m runtime ig serve|ready-check|commit-summary`: run the gate under uvicorn for the pinned
run, and the P4/P7 checks of it as one-shot jobs (runtime.ig.verify).

The command only wires: settings from the environment, a publisher for the configured bus
(runtime.bus.factory), the app, uvicorn. Errors leave as one operator line and exit 1.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from runtime.bus.port import Publisher
from runtime.errors import PlatformError

app = typer.Typer(help="Ingestion Gate: admits events for one pinned run and publishes them to the bus.",
                  no_args_is_help=True)


def build_publisher(settings: object) -> Publisher:
    """The bus publisher of the configured kind; fails closed when no adapter is installed."""
    try:
        factory = importlib.import_module("runtime.bus.factory")
    except ImportError as e:
        raise PlatformError("no bus adapter factory (runtime.bus.factory) is installed", code="BUS_ADAPTER_MISSING",
                            next_step="install the bus adapters; IG never runs without a real publisher") from e
    publisher: Publisher = factory.publisher(settings)
    return publisher


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default: registry IG_LISTEN_ADDR)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: registry IG_PORT)")] = None,
) -> None:
    """Serve IG (health, push, OpenAPI) until stopped."""
    import uvicorn

    from runtime.db.migrate import require_migrations
    from runtime.ig.app import create_app
    from runtime.ig.settings import load_ig_settings

    try:
        settings = load_ig_settings()
        require_migrations(settings.db_dsn)
        publisher = build_publisher(settings.base)
        application = create_app(settings, publisher)
    except PlatformError as e:
        typer.echo(f"error {e.operator_line()}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"IG serving run {settings.platform_run_id} on {host or settings.listen_host}:{port or settings.port}")
    uvicorn.run(application, host=host or settings.listen_host, port=port or settings.port, log_level="warning",
                access_log=False)


@app.command()
def version() -> None:
    """Print the IG API version."""
    typer.echo("ig v1")


RunIdOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the pinned run")]


@app.command("ready-check")
def ready_check(
    platform_run_id: RunIdOpt,
    scenario_run_id: Annotated[str, typer.Option(help="scenario_run_id the smoke event carries")],
    service_name: Annotated[str, typer.Option(help="name of IG's pack or service, for the evidence")],
    pid: Annotated[int | None, typer.Option(help="IG's process id (local pack)")] = None,
    task_arn: Annotated[list[str] | None, typer.Option(help="IG's task ARN (ECS service; repeatable)")] = None,
    wait: Annotated[float, typer.Option(min=0, max=900, help="seconds to wait for IG to answer at all")] = 60.0,
) -> None:
    """P4: wait for IG, prove 401 without the key, health with it, a publish smoke and the receipt write."""
    from rich.console import Console

    from runtime.cli_errors import operator_errors
    from runtime.contracts.ids import is_platform_run_id
    from runtime.ig.verify import ready_check as check
    from runtime.settings import load_settings

    with operator_errors():
        if not is_platform_run_id(platform_run_id):
            raise PlatformError(f"{platform_run_id!r} is not a platform_run_id", code="RUN_ID_INVALID",
                                next_step="pass the run id P1 pinned")
        settings = load_settings()
        with Console(stderr=True).status(f"waiting up to {wait:.0f}s for IG to answer, then probing it..."):
            written = check(settings, platform_run_id, scenario_run_id, service_name=service_name, pid=pid,
                            task_arns=task_arn or [], wait_s=wait)
    typer.echo(f"IG ready for {platform_run_id}: {', '.join(written.uris)}")


@app.command("commit-summary")
def commit_summary(platform_run_id: RunIdOpt) -> None:
    """P7: receipt and quarantine summaries from the indexes, and the bus offsets snapshot."""
    from runtime.cli_errors import operator_errors
    from runtime.contracts.ids import is_platform_run_id
    from runtime.ig.verify import commit_summaries
    from runtime.settings import load_settings

    with operator_errors():
        if not is_platform_run_id(platform_run_id):
            raise PlatformError(f"{platform_run_id!r} is not a platform_run_id", code="RUN_ID_INVALID",
                                next_step="pass the run id P1 pinned")
        done = commit_summaries(load_settings(), platform_run_id)
    typer.echo(f"P7 summaries for {platform_run_id}: {done.receipts.relative_path}, {done.quarantine.relative_path}, "
               f"{done.offsets.relative_path}")
