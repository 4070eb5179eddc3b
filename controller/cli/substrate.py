"""`fp substrate up|status|down`: the embedded local substrate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from controller.cli.common import ENV_HELP, console, operator_errors
from controller.cli.options import registry_for, require_local, resolve_bus
from controller.substrate import epoch, local
from runtime.contracts.registry import Registry
from runtime.db.postgres import redact
from runtime.errors import PlatformError

app = typer.Typer(help="Start, inspect and stop the embedded local substrate (moto server, PostgreSQL, Tansu).",
                  no_args_is_help=True)

EnvOpt = Annotated[str | None, typer.Option("--env", help=ENV_HELP)]


@app.command("up")
def up_command(
    env: EnvOpt = None,
    bus: Annotated[str | None, typer.Option(help="event bus: kinesis (on the moto server) or kafka (Tansu)")] = None,
    moto_port: Annotated[int | None, typer.Option(help="override LOCAL_MOTO_PORT")] = None,
    pg_port: Annotated[int | None, typer.Option(help="override LOCAL_POSTGRES_PORT")] = None,
    kafka_port: Annotated[int | None, typer.Option(help="override LOCAL_KAFKA_PORT")] = None,
) -> None:
    """Start what is not running yet, then bootstrap buckets, topics, secrets and schemas (idempotent)."""
    with operator_errors():
        registry = registry_for(env)
        require_local(registry, "fp substrate up")
        with console.status("starting the substrate and bootstrapping it..."):
            result = local.up(registry, bus=resolve_bus(bus, registry),
                              ports=local.Ports.from_registry(registry, moto_port, pg_port, kafka_port))
    started = ", ".join(result.started_now) or "nothing (already running)"
    console.print(f"substrate up ({result.state.bus} bus); started: {started}")
    b = result.bootstrap
    console.print(f"bootstrap: {len(b.buckets_created)} bucket(s), {len(b.topics_created)} topic(s), "
                  f"{len(b.secrets_written)} secret(s), {len(b.migrations_applied)} migration(s) created now")
    _print_status(registry)


def _print_status(registry: Registry) -> bool:
    state, rows = local.status(registry)
    if state is None:
        console.print("substrate: down (no recorded state)")
        return False
    table = Table(title=f"substrate ({state.environment}, bus={state.bus})")
    for column in ("process", "pid", "port", "running", "answering", "log"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.name, str(r.pid), str(r.port), _yes(r.running), _yes(r.answering), r.log)
    console.print(table)
    console.print(f"object store: {state.object_store_endpoint}\ndatabase (runtime role): {redact(state.db_dsn)}\n"
                  f"kafka: {state.kafka_bootstrap or '-'}", highlight=False)
    console.print(f"[yellow]note:[/] {epoch.IN_MEMORY_NOTE}", highlight=False)
    intact = _print_epoch(registry, state)
    return intact and all(r.running and r.answering for r in rows)


def _print_epoch(registry: Registry, state: local.SubstrateState) -> bool:
    """The substrate epoch and which store still holds it; False when any lost it (or none is recorded)."""
    if not state.epoch:
        console.print("epoch: none recorded (run `fp substrate up`)", highlight=False)
        return False
    try:
        lost = epoch.read_marks(local.settings_for(state, registry)).lost(state.epoch)
    except PlatformError as e:
        console.print(f"epoch: {state.epoch} (cannot check: {e.code})", highlight=False)
        return False
    if lost:
        console.print(f"[red]epoch: {state.epoch} LOST by {', '.join(lost)}[/] (SUBSTRATE_STATE_LOST): {epoch.NEW_RUN_STEP}",
                      highlight=False)
        return False
    console.print(f"epoch: {state.epoch} (held by the object store, SSM and PostgreSQL)", highlight=False)
    return True


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


@app.command("status")
def status_command(env: EnvOpt = None) -> None:
    """Print a table of the substrate's processes; exit 1 if any is down."""
    with operator_errors():
        registry = registry_for(env)
        require_local(registry, "fp substrate status")
    if not _print_status(registry):
        raise typer.Exit(1)


@app.command("down")
def down_command(env: EnvOpt = None) -> None:
    """Stop exactly the processes `up` started (by pid); exit 1 if any survives."""
    with operator_errors():
        registry = registry_for(env)
        require_local(registry, "fp substrate down")
        result = local.down(registry)
    console.print(f"stopped: {', '.join(result.stopped) or 'nothing (was not running)'}")
    if result.still_running or result.ports_still_taken:
        console.print(f"[red]still running:[/] {result.still_running} ports taken: {result.ports_still_taken}")
        raise typer.Exit(1)
