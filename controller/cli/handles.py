"""`fp handles ...`: the registry checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import console, err_console, operator_errors
from controller.handles_lint import lint
from runtime.paths import REPO_ROOT, registry_path

app = typer.Typer(help="Check the handles registry and the code against it.", no_args_is_help=True)


@app.command("lint")
def lint_command(
    root: Annotated[Path, typer.Option(help="repository root to scan")] = REPO_ROOT,
    registry: Annotated[Path | None, typer.Option(help="registry file (default: the repository's)")] = None,
) -> None:
    """Fail (exit 1) on a registry that breaks its schema, a missing or unknown handle key, or a
    registry resource name written as a literal outside the registry. One line per finding."""
    with operator_errors():
        findings = lint(root.resolve(), (registry or registry_path()).resolve())
    for finding in findings:
        err_console.print(str(finding), highlight=False, soft_wrap=True)
    if findings:
        err_console.print(f"handles lint: {len(findings)} finding(s)", highlight=False)
        raise typer.Exit(1)
    console.print("handles lint: OK")
