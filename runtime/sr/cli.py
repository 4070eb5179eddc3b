"""`python -m runtime sr ...`: run the Scenario Runner once, or clear a stuck lease.

Thin: parse, build settings + evidence writer, call `run_scenario_runner`. Inputs default to the
environment variables the registry names (PLATFORM_RUN_ID, SCENARIO_EQUIVALENCE_KEY_INPUT), as
on ECS. A PlatformError becomes one `error CODE: message -> next step` line and exit 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from runtime.cli_errors import operator_errors
from runtime.contracts.registry import Registry
from runtime.db.migrate import require_migrations
from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter, run_bundle
from runtime.settings import load_settings
from runtime.sr import domain
from runtime.sr.lease import LeaseStore
from runtime.sr.runner import run_scenario_runner

app = typer.Typer(help="Scenario Runner (P5): gate the oracle stream views and publish READY.", no_args_is_help=True)
console = Console()
T = TypeVar("T")


def _from_env(registry: Registry, handle: str) -> str | None:
    """The value of the environment variable a registry `env:NAME` handle points at."""
    source = registry.text(handle)
    return os.environ.get(source[4:]) if source.startswith("env:") else None


def _required(value: str | None, what: str, option: str) -> str:
    if value is None:
        raise domain.SrInputInvalid(f"no {what} given", next_step=f"pass {option} (or set its environment variable)")
    return value


def _guard(fn: Callable[[], T]) -> T:
    with operator_errors():
        return fn()


@app.command("run")
def run(
    platform_run_id: Annotated[str | None, typer.Option(help="the pinned run (default: $REQUIRED_PLATFORM_RUN_ID)")] = None,
    equivalence_key: Annotated[str | None, typer.Option(help="run equivalence key (default: $SR_RUN_EQUIVALENCE_KEY)")] = None,
) -> None:
    """Check the seal and every required stream view; on PASS write run facts, publish READY, write evidence."""

    def work() -> None:
        settings = load_settings()
        registry = settings.registry
        run_id = _required(platform_run_id or _from_env(registry, "PLATFORM_RUN_ID"), "platform_run_id", "--platform-run-id")
        key = _required(
            equivalence_key if equivalence_key is not None else _from_env(registry, "SCENARIO_EQUIVALENCE_KEY_INPUT"),
            "equivalence key",
            "--equivalence-key",
        )
        domain.validate_inputs(run_id, key)
        writer = EvidenceWriter(registry, run_id, [run_bundle(settings, run_id)])
        result = run_scenario_runner(settings, run_id, key, writer, progress=lambda line: console.print(line, highlight=False))
        console.print(
            f"READY {result.platform_run_id} scenario_run_id={result.scenario_run_id} "
            f"{result.ready_ref.topic}[{result.ready_ref.partition}]@{result.ready_ref.offset}",
            highlight=False,
        )

    _guard(work)


@app.command("lease-clear")
def lease_clear(
    equivalence_key: Annotated[str, typer.Option(help="the equivalence key whose lease to drop")],
) -> None:
    """Drop the SR lease of an equivalence key, whoever holds it (operator action; READY already out stays out)."""

    def work() -> None:
        scenario = domain.validate_key(equivalence_key)
        settings = load_settings()
        if not settings.db_dsn:
            raise PlatformError("no DSN set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN")
        require_migrations(settings.db_dsn)
        cleared = LeaseStore(settings.db_dsn).clear(scenario)
        console.print(f"lease of scenario_run_id {scenario} {'cleared' if cleared else 'was not held'}", highlight=False)

    _guard(work)
