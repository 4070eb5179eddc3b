"""`fp devmin ...`: the dev_min cloud steps one at a time (package, up, preflight, teardown).

Thin: each command parses its options, builds the adapters (Terraform CLI, boto3 clients from
the settings' region/endpoint, the Confluent admin client) and calls one function of
controller.devmin / controller.packaging. `fp dev-min-up/down --env dev_min` call the same ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.common import console, err_console, operator_errors
from controller.devmin.checks import Check
from controller.devmin.preflight import preflight
from controller.devmin.teardown import dev_min_down, verify_only
from controller.devmin.up import dev_min_up
from controller.devmin.wiring import adapters
from controller.packaging import package
from runtime.contracts.registry import Registry, load_registry
from runtime.paths import REPO_ROOT

app = typer.Typer(help="dev_min (AWS + Confluent Cloud) steps: package, up, preflight, teardown.", no_args_is_help=True)

DEVMIN_ENV_HELP = "handles registry environment (default: $FP_ENV, else dev_min)"
EnvOption = Annotated[str | None, typer.Option("--env", help=DEVMIN_ENV_HELP)]
RunOption = Annotated[str, typer.Option("--run", help="platform_run_id whose evidence bundle gets the teardown proof")]
StacksRoot = Annotated[Path, typer.Option(help="folder the registry's TF_STACK_*_DIR paths are relative to")]


def _registry(env: str | None) -> Registry:
    return load_registry(env or os.environ.get("FP_ENV") or "dev_min")


def _print_checks(title: str, checks: list[Check] | tuple[Check, ...]) -> None:
    table = Table(title=title)
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for c in checks:
        table.add_row(c.name, "[green]yes[/]" if c.ok else "[red]NO[/]", c.detail)
    console.print(table)


@app.command("package")
def package_command(env: Annotated[str | None, typer.Option("--env", help="default: $FP_ENV, else local_parity")] = None) -> None:
    """P(-1): compute the git-<sha> image tag, identify the package and smoke-test `python -m runtime --help`.
    dev_min (clean tree + Docker engine + ECR) builds, smoke-tests and pushes the image, or reuses the tag if
    ECR has it, and prints the digest ECR holds; each failing step exits 1 with its code (docs/dev_min.md)."""
    with operator_errors():
        registry = load_registry(env or os.environ.get("FP_ENV") or "local_parity")
        with console.status("packaging: git sha, package digest, smoke test") as status:
            result = package(registry, progress=lambda line: status.update(f"packaging: {line}"))
    image = f"  image={result.image_uri}{' (reused)' if result.image_reused else ''}" if result.image_uri else ""
    console.print(f"P(-1) PASS  image_tag={result.image_tag}  image_digest={result.image_digest}  "
                  f"package_digest={result.package_digest}  git_dirty={result.git_dirty}{image}", highlight=False)


@app.command("up")
def up_command(env: EnvOption = None, stacks_root: StacksRoot = REPO_ROOT) -> None:
    """P0: terraform apply core then demo, then the preflight; writes the demo apply snapshot."""
    with operator_errors():
        registry = _registry(env)
        with console.status("terraform apply core, then demo, then P0 preflight (minutes)"):
            a = adapters(registry)
            result = dev_min_up(registry, a.runner, a.aws, kafka_admin=a.kafka_admin, stacks_root=stacks_root)
    _print_checks("P0 preflight", result.preflight.checks)
    console.print(f"P0 PASS  snapshot: {result.snapshot_uri}", highlight=False)


@app.command("preflight")
def preflight_command(env: EnvOption = None) -> None:
    """P0 checks only (no apply): buckets writable, SSM secrets, topics, NAT = 0, LB = 0, budget, ECS, DB."""
    with operator_errors():
        registry = _registry(env)
        with console.status("P0 preflight"):
            a = adapters(registry)
            result = preflight(registry, a.aws, a.kafka_admin)
    _print_checks("P0 preflight", result.checks)
    console.print(f"P0 PASS  snapshot: {result.snapshot_uri}", highlight=False)


@app.command("teardown")
def teardown_command(run: RunOption, env: EnvOption = None, stacks_root: StacksRoot = REPO_ROOT) -> None:
    """P12: terraform destroy demo (core stays), verify nothing costly is left, write teardown_proof.json.
    Any leftover exits 1 naming it, and no proof is written."""
    with operator_errors():
        registry = _registry(env)
        with console.status("terraform destroy demo, then verify (minutes)"):
            a = adapters(registry)
            result = dev_min_down(registry, a.runner, a.aws, run, stacks_root=stacks_root)
    _print_checks("P12 teardown", result.checks)
    console.print(f"P12 PASS  proof: {', '.join(result.written.uris)}", highlight=False)


@app.command("teardown-verify")
def teardown_verify_command(run: RunOption, env: EnvOption = None) -> None:
    """The P12 checks alone (destroys and writes nothing): exit 1 while anything costly is left."""
    with operator_errors():
        registry = _registry(env)
        checks = verify_only(registry, adapters(registry).aws, run)
    _print_checks("billing-safe?", checks)
    failed = [c for c in checks if not c.ok]
    if failed:
        err_console.print(f"[bold red]error[/] TEARDOWN_LEFTOVER: {', '.join(c.name for c in failed)} "
                          "-> destroy by tag (docs/dev_min.md), then rerun", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print("billing-safe: nothing costly left", highlight=False)
