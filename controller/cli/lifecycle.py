"""`fp dev-min-up` and `fp dev-min-down`: the operator's bring-up (P0) and teardown (P12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.padding import Padding
from rich.table import Table

from controller.cli.common import ENV_HELP, console, operator_errors
from controller.cli.options import registry_for, resolve_bus
from controller.cli.progress_view import progress_options
from controller.lifecycle import dev_min_down_local, dev_min_run_cloud, dev_min_run_local, dev_min_up_local
from controller.phases.machine import Slice
from controller.phases.run_options import validate_given
from controller.status import PhaseRow, closure, component_rows, phase_rows, pinned_line
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
    console.print(f"evidence: {result.evidence_dir}", soft_wrap=True, highlight=False)


def _dev_min_up(registry: Registry) -> None:
    """dev_min P(-1) (image) then P0 (terraform apply core + demo, the seed 004 preflight), for a fresh run."""
    from controller.lifecycle import dev_min_up_cloud

    with console.status("P(-1) image, then terraform apply core + demo, then the P0 preflight (minutes)..."):
        result = dev_min_up_cloud(registry)
    console.print(f"P0 SUBSTRATE_READY: PASS for run {result.platform_run_id}", highlight=False)
    console.print(f"evidence: {result.evidence_dir}", soft_wrap=True, highlight=False)


def _dev_min_down(registry: Registry) -> None:
    """dev_min P12: destroy demo only, verify nothing costly is left, write the teardown proof."""
    from controller.lifecycle import dev_min_down_cloud

    with console.status("terraform destroy demo, then verify (minutes)..."):
        result = dev_min_down_cloud(registry)
    console.print(f"P12 TEARDOWN: PASS for run {result.platform_run_id}", highlight=False)
    console.print(f"evidence: {result.evidence_dir}", soft_wrap=True, highlight=False)


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
    console.print(f"evidence: {result.evidence_dir}", soft_wrap=True, highlight=False)


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
                                           options={"job_progress": job_progress, **progress_options(console), **run_options})
        finally:
            if started:
                _print_active_status(registry)  # its failure is the CLI boundary's error line, printed once
    console.print(f"run {result.platform_run_id}: {len(result.outcome.records)} phase(s) PASS"
                  + next((f" (bounded run, Gate-{r['bounded_gate']})" for r in result.outcome.records if r.get("bounded_gate")), ""))


def _print_active_status(registry: Registry) -> None:
    from controller.runs import RunFolderError, RunFolders

    try:
        folders = RunFolders.from_registry(registry)
        print_status(registry, folders.evidence_dir(folders.active_run_id()), failures=False)
    except RunFolderError:
        pass


def print_status(registry: Registry, evidence_dir: Path, *, failures: bool = True) -> None:
    """The phase table of one run, readable at 80 columns and in a pipe: one line per phase (ids,
    names, states and times never wrap), then the evidence files of each phase (wrapped between
    file names, never inside one), then with `failures` each FAIL's code, message and next step
    (`dev-min-run` leaves that to its error line, so an error is printed once)."""
    rows = phase_rows(registry, evidence_dir)
    console.print(f"run {evidence_dir.parent.name}", highlight=False, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("phase", "name", "state", "started", "took"):
        table.add_column(column, no_wrap=True, justify="right" if column == "took" else "left")
    colors = {"PASS": "green", "FAIL": "red", "RUNNING": "yellow"}
    for row in rows:
        color = colors.get(row.state, "dim")
        table.add_row(row.phase_id, row.name, f"[{color}]{row.state}[/]", row.started[11:19],
                      f"{row.duration_s:.1f}s" if row.duration_s is not None else "")
    console.print(table)
    _print_in_flight(registry, evidence_dir, rows)
    _print_obs_live(registry, evidence_dir, rows)
    with_evidence = [r for r in rows if r.evidence]
    if with_evidence:
        files = Table.grid(padding=(0, 2))
        files.add_column(no_wrap=True)
        files.add_column(overflow="fold", min_width=max(len(name) for r in with_evidence for name in r.evidence.split()))
        for row in with_evidence:
            files.add_row(row.phase_id, row.evidence)
        console.print("evidence files:")
        console.print(Padding(files, (0, 0, 0, 2)))
    components = component_rows(registry, evidence_dir.parent)
    if components:
        workers = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("component", "health", "lag", "dead letters", "updated"):
            workers.add_column(column, no_wrap=True, justify="right" if column in ("lag", "dead letters") else "left")
        health_colors = {"GREEN": "green", "AMBER": "yellow", "RED": "red"}
        for c in components:
            workers.add_row(c.component, f"[{health_colors.get(c.health, 'dim')}]{c.health}[/]",
                            "" if c.lag is None else str(c.lag), "" if c.dead_letters is None else str(c.dead_letters),
                            c.written[11:19])
        console.print(workers)
    pinned = pinned_line(evidence_dir / registry.text("EVIDENCE_RUN_JSON_KEY"))
    if pinned:
        console.print(f"pinned: {pinned}", highlight=False)
    for row in rows if failures else []:
        if row.state == "FAIL":
            console.print(f"[red]{row.phase_id} {row.error_code}[/]: {row.message} -> next step: {row.next_step}",
                          highlight=False)
    _print_closure(registry, evidence_dir)


def _print_in_flight(registry: Registry, evidence_dir: Path, rows: list[PhaseRow]) -> None:
    """For the phase in flight, its last progress sample from the run folder (counts, rate, ETA, age)."""
    from datetime import UTC, datetime

    from controller.progress import ProgressFileInvalid, progress_line, read_progress

    running = [r.phase_id for r in rows if r.state == "RUNNING"]
    if not running:
        return
    try:
        progress = read_progress(evidence_dir.parent / registry.text("RUN_PROGRESS_PATH_PATTERN"))
    except ProgressFileInvalid as e:
        console.print(f"[yellow]progress unreadable[/]: {e.operator_line()}", highlight=False)
        return
    if progress is None or progress.phase_id not in running:
        return
    age = (datetime.now(UTC) - datetime.fromisoformat(progress.at_utc.replace("Z", "+00:00"))).total_seconds()
    console.print(f"in flight: {progress_line(progress)}", highlight=False)
    console.print(f"  (counted at {progress.at_utc[11:19]}, {max(0, age):.0f}s ago)", style="dim", highlight=False)


def _print_obs_live(registry: Registry, evidence_dir: Path, rows: list[PhaseRow]) -> None:
    """On a run in flight, the obs_gov daemons' latest live summaries from the run folder."""
    import json
    import time

    from runtime.obs.live import status_line

    if not any(r.state == "RUNNING" for r in rows):
        return
    docs = []
    for key in ("LIVE_RUN_REPORT_PATH_PATTERN", "LIVE_ENV_CONFORMANCE_PATH_PATTERN"):
        try:
            docs.append(json.loads((evidence_dir.parent / registry.text(key)).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            docs.append(None)
    line = status_line(docs[0], docs[1], now_s=time.time())
    if line:
        console.print(line, highlight=False)


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is under it (short enough for 80 columns and
    still a path the operator can paste), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _print_closure(registry: Registry, evidence_dir: Path) -> None:
    """The last lines of a closed run: SPINE_GREEN (or PARTIAL and each condition it did not meet) and
    where its report is; nothing before P11 wrote `run_completed.json`."""
    from controller.cli.report import report_paths

    closed = closure(registry, evidence_dir)
    if closed is None:
        return
    if closed.status == "INVALID":
        console.print(f"[red]closure INVALID[/]: {closed.problem} -> next step: fp evidence validate "
                      f"{shown_path(evidence_dir)}", highlight=False)
        return
    at = closed.completed_at_utc[11:19]
    gate = f" (Gate-{closed.bounded_gate})" if closed.bounded_gate else " (full cap)"
    if closed.status == "SPINE_GREEN":
        console.print(f"[bold green]SPINE_GREEN[/]{gate} run closed at {at}", highlight=False)
    else:
        console.print(f"[yellow]{closed.status}[/]{gate} run closed at {at}", highlight=False)
        if closed.not_met:
            not_met = Table.grid(padding=(0, 1))
            not_met.add_column(no_wrap=True)
            not_met.add_column(overflow="fold")
            for condition in closed.not_met:
                not_met.add_row("[red]not met[/]", condition)
            console.print(Padding(not_met, (0, 0, 0, 2)), highlight=False)
    json_path, html_path = report_paths(registry, evidence_dir)
    for label, path in (("report", json_path), ("html", html_path)):
        if path.is_file():
            console.print(f"{label}: {shown_path(path)}", highlight=False, soft_wrap=True)


def status(
    run: Annotated[str | None, typer.Argument(help="platform_run_id (default: the active run)")] = None,
    env: EnvOpt = None,
) -> None:
    """Print the phase table of a run from its evidence: state, start, duration, evidence, error code."""
    from controller.runs import RunFolders

    with operator_errors():
        registry = registry_for(env)
        folders = RunFolders.from_registry(registry)
        run_id = folders.existing_run(run)
    print_status(registry, folders.evidence_dir(run_id))
