"""`fp evidence validate`: check an evidence bundle in a folder or under an s3:// prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from controller.cli.common import ENV_HELP, console, err_console, operator_errors
from controller.cli.options import registry_for
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.errors import PlatformError
from runtime.evidence.bundle import validate_bundle
from runtime.evidence.catalog import PHASE_NAMES
from runtime.settings import load_settings
from runtime.store.local import FolderStore
from runtime.store.port import ObjectStore
from runtime.store.s3 import S3Store

app = typer.Typer(help="Check evidence bundles.", no_args_is_help=True)


def _open(location: str, env: str | None) -> tuple[ObjectStore, str]:
    registry = registry_for(env)
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        if not bucket:
            raise PlatformError(f"{location!r} names no bucket", code="BAD_LOCATION", next_step="use s3://bucket/prefix/")
        state = read_state(state_dir(registry)) if registry.environment == "local_parity" else None
        settings = settings_for(state, registry) if state else load_settings(environment=registry.environment)
        return S3Store(bucket, client=settings.s3()), prefix.rstrip("/") + "/" if prefix else ""
    path = Path(location)
    if not path.is_dir():
        raise PlatformError(f"{location} is not a folder", code="BUNDLE_NOT_FOUND",
                            next_step="pass runs/fraud-platform/<platform_run_id>/evidence or s3://bucket/evidence/runs/<id>/")
    return FolderStore(path), ""


@app.command("validate")
def validate_command(
    location: Annotated[str, typer.Argument(help="a bundle folder, or s3://bucket/prefix/")],
    env: Annotated[str | None, typer.Option("--env", help=ENV_HELP)] = None,
) -> None:
    """Validate schemas, required files of the phases claimed, ids and digests; list every violation."""
    with operator_errors():
        store, prefix = _open(location, env)
        report = validate_bundle(store, prefix, registry_for(env))
    console.print(f"evidence bundle {report.platform_run_id or '?'}", highlight=False, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("phase", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for phase_id, state in report.phases.items():  # in seed 003's order, P(-1) first
        table.add_row(phase_id, PHASE_NAMES.get(phase_id, ""), state)
    console.print(table)
    console.print(f"{len(report.files)} file(s) checked at {report.location}", highlight=False, soft_wrap=True)
    for name in report.unknown_files:
        console.print(f"note: {name} is not in the evidence catalogue (not validated)", highlight=False, soft_wrap=True)
    if not report.ok:
        for violation in report.violations:
            err_console.print(f"violation {violation}", highlight=False, soft_wrap=True)
        err_console.print(f"evidence validate: {len(report.violations)} violation(s)")
        raise typer.Exit(1)
    console.print("evidence validate: OK")
