"""`python -m runtime ig serve`: run the gate under uvicorn for the pinned run.

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

    from runtime.db.migrate import apply_migrations
    from runtime.ig.app import create_app
    from runtime.ig.settings import load_ig_settings

    try:
        settings = load_ig_settings()
        apply_migrations(settings.db_dsn)
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
