"""`fp dev-min-up` and `fp dev-min-down`: the operator's bring-up (P0) and teardown (P12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.common import ENV_HELP, console, operator_errors
from controller.cli.options import registry_for, resolve_bus
from controller.lifecycle import dev_min_down_local, dev_min_run_cloud, dev_min_run_local, dev_min_up_local
from controller.phases.machine import Slice
from controller.phases.run_options import validate_given
from controller.status import phase_rows, pinned_line
from controller.substrate.local import Ports
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

EnvOpt = Annotated[str | None, typer.Option("--env", help=ENV_HELP)]


def dev_min_up(
    env: EnvOpt = None,
    bus: Annotated[str | None, typer.Option(help="local bus: kinesis or kafka")] = None,
) -> None:
    """P0: bring the substrate up (local: embedded servers; dev_min: Terraform core + demo) and prove it."""
    with operator_errors():
        registry = registry_for(env)
        if registry.environment == "dev_min":
            _dev_min_up(registry)
            return
        with console.status("P0: substrate up, bootstrap, live checks..."):
            result = dev_min_up_local(registry, bus=resolve_bus(bus, registry), ports=Ports.from_registry(registry))
    console.print(f"P0 SUBSTRATE_READY: PASS for run {result.platform_run_id}")
    console.print(f"evidence: {result.evidence_dir}")


def _dev_min_up(registry: Registry) -> None:
    """dev_min P(-1) (image) then P0 (terraform apply core + demo, the seed 004 preflight), for a fresh run."""
    from controller.lifecycle import dev_min_up_cloud

    with console.status("P(-1) image, then terraform apply core + demo, then the P0 preflight (minutes)..."):
        result = dev_min_up_cloud(registry)
    console.print(f"P0 SUBSTRATE_READY: PASS for run {result.platform_run_id}", highlight=False)
    console.print(f"evidence: {result.evidence_dir}")


def _dev_min_down(registry: Registry) -> None:
    """dev_min P12: destroy demo only, verify nothing costly is left, write the teardown proof."""
    from controller.lifecycle import dev_min_down_cloud

    with console.status("terraform destroy demo, then verify (minutes)..."):
        result = dev_min_down_cloud(registry)
    console.print(f"P12 TEARDOWN: PASS for run {result.platform_run_id}", highlight=False)
    console.print(f"evidence: {result.evidence_dir}")


def dev_min_down(env: EnvOpt = None) -> None:
    """P12: stop/destroy what is costly, prove nothing is left, keep the evidence."""
    with operator_errors():
        registry = registry_for(env)
        if registry.environment == "dev_min":
            _dev_min_down(registry)
            return
        result = dev_min_down_local(registry)
    if result.already_torn_down:
        console.print(f"run {result.platform_run_id} was already torn down; nothing to do")
    else:
        console.print(f"P12 TEARDOWN: PASS for run {result.platform_run_id}")
    console.print(f"evidence: {result.evidence_dir}")


def dev_min_run(
    env: EnvOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="stop after this phase (bounded slice, e.g. P7)")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="resume a failed run from this phase")] = None,
    phase: Annotated[str | None, typer.Option("--phase", help="re-run one phase (allowed: P3, P5, P6, P11)")] = None,
    gate: Annotated[int | None, typer.Option(help="bounded gate: events per output (20, 200, N); recorded as partial")] = None,
    bus: Annotated[str | None, typer.Option(help="must match the substrate's bus: kinesis or kafka")] = None,
    seed: Annotated[int | None, typer.Option(help="oracle world seed (default 42); pinned by P1")] = None,
    scale: Annotated[int | None, typer.Option(help="oracle engine scale, traffic events (default: 20 x gate, at least 2000; "
                                                   "20000 without a gate); pinned by P1")] = None,
    mode: Annotated[str | None, typer.Option(help="traffic mode: fraud (default) or baseline; pinned by P1")] = None,
) -> None:
    """P1..P11 in order, fail-closed: stops at the first failing gate with its code and next step.
    A resumed run (--from/--phase) keeps the gate, seed, scale and mode P1 pinned; another value is CONFIG_DRIFT."""
    if gate is not None and gate < 1:
        with operator_errors():
            raise PlatformError(f"--gate must be at least 1, got {gate}", code="BAD_GATE", next_step="use --gate 20 or --gate 200")
    with operator_errors():
        validate_given(seed=seed, scale=scale, mode=mode)
    run_options = {"seed": seed, "scale": scale, "mode": mode}
    with operator_errors():
        registry = registry_for(env)
        if registry.environment == "dev_min" and bus not in (None, "kafka"):
            raise PlatformError(f"--bus {bus}: dev_min runs on Confluent Cloud Kafka only", code="BUS_MISMATCH",
                                next_step="drop --bus (it only chooses the local bus)")
        started: list[str] = []

        def progress(phase_id: str, name: str) -> None:
            started.append(phase_id)
            console.print(f"{phase_id} {name} ...")

        last_line: list[str] = [""]

        def job_progress(line: str) -> None:
            if line != last_line[0]:  # an ECS wait polls every few seconds; print changes only
                last_line[0] = line
                console.print(f"  {line}", style="dim", highlight=False)

        try:
            selection = Slice(to=to, from_=from_, only=phase)
            if registry.environment == "dev_min":
                result = dev_min_run_cloud(registry, selection, gate=gate, progress=progress,
                                           options={"job_progress": job_progress, **run_options})
            else:
                result = dev_min_run_local(registry, selection, gate=gate, bus=bus, progress=progress,
                                           options={"job_progress": job_progress, **run_options})
        finally:
            if started:
                _print_active_status(registry)
    console.print(f"run {result.platform_run_id}: {len(result.outcome.records)} phase(s) PASS"
                  + (" (bounded run: partial, never Spine Green)" if any(r.get("bounded_gate") for r in result.outcome.records) else ""))


def _print_active_status(registry: Registry) -> None:
    from controller.runs import RunFolderError, RunFolders

    try:
        folders = RunFolders.from_registry(registry)
        print_status(registry, folders.evidence_dir(folders.active_run_id()))
    except RunFolderError:
        pass


def print_status(registry: Registry, evidence_dir: Path) -> None:
    """The phase table of one run."""
    table = Table(title=f"run {evidence_dir.parent.name}")
    for column in ("phase", "name", "state", "started", "took", "evidence", "error"):
        table.add_column(column, overflow="fold")
    colors = {"PASS": "green", "FAIL": "red", "RUNNING": "yellow"}
    for row in phase_rows(registry, evidence_dir):
        color = colors.get(row.state, "dim")
        table.add_row(row.phase_id, row.name, f"[{color}]{row.state}[/]", row.started[11:19],
                      f"{row.duration_s:.1f}s" if row.duration_s is not None else "", row.evidence, row.error_code)
    console.print(table)
    pinned = pinned_line(evidence_dir / registry.text("EVIDENCE_RUN_JSON_KEY"))
    if pinned:
        console.print(f"pinned: {pinned}", highlight=False)
    failed = [r for r in phase_rows(registry, evidence_dir) if r.state == "FAIL"]
    for row in failed:
        console.print(f"[red]{row.phase_id} {row.error_code}[/]: next step: {row.next_step}", highlight=False)


def status(
    run: Annotated[str | None, typer.Argument(help="platform_run_id (default: the active run)")] = None,
    env: EnvOpt = None,
) -> None:
    """Print the phase table of a run from its evidence: state, start, duration, evidence, error code."""
    from controller.runs import RunFolderError, RunFolders

    with operator_errors():
        registry = registry_for(env)
        folders = RunFolders.from_registry(registry)
        run_id = run or folders.active_run_id()
        if not folders.run_dir(run_id).is_dir():
            raise RunFolderError(f"no run folder for {run_id}", next_step=f"runs are listed in {folders.root}")
    print_status(registry, folders.evidence_dir(run_id))
