"""`fp stacks ...`: synthesise the Terraform stacks, list what they hold, estimate what they cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.common import console, operator_errors
from runtime.errors import PlatformError
from stacks.synth import DEFAULT_OUT, ENV_OF_STACK, STACKS_BY_ENV, is_current, stack_file, synth

app = typer.Typer(help="Synthesise, inspect and price the core / demo / local_parity stacks.", no_args_is_help=True)

EnvOption = Annotated[str | None, typer.Option("--env", help="dev_min or local_parity (default: both)")]
StackOption = Annotated[str | None, typer.Option("--stack", help="core, demo or local_parity (default: all of --env)")]
OutOption = Annotated[Path, typer.Option("--out", help="output directory")]
RegistryOption = Annotated[Path | None, typer.Option("--registry", help="registry file (default: the repository's)")]


def _selection(env: str | None, stack: str | None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    if env is not None and env not in STACKS_BY_ENV:
        raise PlatformError(f"unknown environment {env!r}; known: {', '.join(STACKS_BY_ENV)}", code="UNKNOWN_ENV",
                            next_step="use --env dev_min or --env local_parity")
    if stack is not None:
        if stack not in ENV_OF_STACK:
            raise PlatformError(f"unknown stack {stack!r}; known: {', '.join(ENV_OF_STACK)}", code="UNKNOWN_STACK",
                                next_step="use --stack core, demo or local_parity")
        if env is not None and ENV_OF_STACK[stack] != env:
            raise PlatformError(f"stack {stack} belongs to {ENV_OF_STACK[stack]}, not {env}", code="UNKNOWN_STACK",
                                next_step=f"use --env {ENV_OF_STACK[stack]} or drop --env")
        return (ENV_OF_STACK[stack],), (stack,)
    envs = (env,) if env else tuple(STACKS_BY_ENV)
    return envs, None


@app.command("synth")
def synth_command(
    env: EnvOption = None,
    stack: StackOption = None,
    out: OutOption = DEFAULT_OUT,
    registry: RegistryOption = None,
    git_sha: Annotated[str | None, typer.Option(help="commit of the image tag git-<sha> (default: HEAD)")] = None,
) -> None:
    """Write the Terraform JSON of the chosen stacks to OUT/stacks/<stack>/cdk.tf.json and print the time taken."""
    with operator_errors():
        envs, stacks = _selection(env, stack)
        with console.status("synthesising (cdktn)..."):
            result = synth(environments=envs, stacks=stacks, out_dir=out, registry_file=registry, sha=git_sha)
    for name, path in result.files.items():
        console.print(f"{name}: {path}", highlight=False)
    console.print(f"synthesised {len(result.stacks)} stack(s) in {result.seconds:.1f} s", highlight=False)


@app.command("show")
def show_command(
    env: EnvOption = None,
    stack: StackOption = None,
    out: OutOption = DEFAULT_OUT,
    registry: RegistryOption = None,
) -> None:
    """List the resources of each stack (type, logical id, name); synthesises first when OUT is stale."""
    from runtime.paths import registry_path
    from stacks.inventory import load_stack, resources

    with operator_errors():
        envs, stacks = _selection(env, stack)
        wanted = stacks or tuple(s for e in envs for s in STACKS_BY_ENV[e])
        source = (registry or registry_path()).resolve()
        if not is_current(out, source, wanted):
            with console.status("synthesising (cdktn)..."):
                synth(environments=envs, stacks=wanted, out_dir=out, registry_file=source)
        for name in wanted:
            table = Table(title=f"stack {name}", show_lines=False)
            for column in ("type", "logical id", "name"):
                table.add_column(column, overflow="fold")
            count = 0
            for resource in resources(name, load_stack(stack_file(out, name))):
                table.add_row(resource.type, resource.logical_id, resource.name)
                count += 1
            table.caption = f"{count} resources"
            console.print(table)


@app.command("cost")
def cost_command(
    env: Annotated[str, typer.Option("--env", help="environment with a bill (dev_min)")] = "dev_min",
    registry: RegistryOption = None,
    prices: Annotated[Path | None, typer.Option(help="price table (default: stacks/prices.yaml)")] = None,
) -> None:
    """Print core per month and demo per hour; exit 1 when core + the demo-window month exceeds the budget."""
    from stacks.cost import PRICES_FILE, check_budget, estimate

    with operator_errors():
        result = estimate(env, registry_file=registry, prices_file=prices or PRICES_FILE)
        for title, lines, unit in (("core (per month)", result.core_monthly, "month"),
                                   ("demo (per hour)", result.demo_hourly, "hour"),
                                   ("per demo window", result.per_window, "window")):
            table = Table(title=title)
            table.add_column("item")
            table.add_column("basis")
            table.add_column(f"{result.currency}/{unit}", justify="right")
            for line in lines:
                table.add_row(line.item, line.basis, f"{line.amount:.4f}")
            console.print(table)
        console.print(f"core: {result.core_total:.2f} {result.currency}/month; demo: {result.demo_hour_total:.4f} "
                      f"{result.currency}/hour; month with {result.demo_hours_per_month} demo hours: "
                      f"{result.month_total:.2f} {result.currency} = {result.month_total_budget:.2f} {result.budget_currency} "
                      f"(budget {result.budget_limit} {result.budget_currency})", highlight=False)
        console.print(f"prices as of {result.as_of}; sources: {', '.join(result.sources)}", highlight=False)
        check_budget(result)
    console.print("within budget")
