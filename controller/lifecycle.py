"""The operator's three verbs for local_parity: up (P0), down (P12), and the run writer they share.

`dev-min-up` brings the substrate up and mints (or reuses, while it is still unpinned) the active
run, then proves P0 into that run's bundle. `dev-min-down` proves P12 into the same bundle.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.phases.base import RunContext, execute
from controller.phases.machine import RunOutcome, Slice, planned_phases, run_phases
from controller.phases.p00_substrate_ready import SubstrateReady, substrate_intact
from controller.phases.p12_teardown import Teardown
from controller.phases.pm1_packaging_ready import PackagingReady
from controller.runs import RunFolderError, RunFolders
from controller.substrate.local import Ports, SubstrateUp, settings_for, up
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.settings import Settings
from runtime.store.local import FolderStore


def run_writer(registry: Registry, folders: RunFolders, platform_run_id: str, settings: Settings | None) -> EvidenceWriter:
    """The run's evidence writer: the evidence bucket (when the substrate is up) and the run folder."""
    targets = []
    if settings is not None:
        prefix = registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=platform_run_id)
        targets.append(BundleTarget(settings.bucket("S3_EVIDENCE_BUCKET"), prefix))
    targets.append(BundleTarget(FolderStore(folders.evidence_dir(platform_run_id)), ""))
    return EvidenceWriter(registry, platform_run_id, targets)


def _reusable_active_run(folders: RunFolders, registry: Registry) -> str | None:
    """The active run if it is still unpinned (no run.json) and not torn down; else None."""
    try:
        run_id = folders.active_run_id()
    except RunFolderError:
        return None
    evidence = folders.evidence_dir(run_id)
    pinned = (evidence / registry.text("EVIDENCE_RUN_JSON_KEY")).exists()
    torn_down = (evidence / registry.text("TEARDOWN_PROOF_PATH_PATTERN")).exists()
    return None if pinned or torn_down else run_id


@dataclass(frozen=True)
class UpResult:
    """What `dev-min-up` did."""

    platform_run_id: str
    substrate: SubstrateUp | None  # None in dev_min: Terraform brought the substrate up
    p0_record: dict[str, Any]
    evidence_dir: Path


def dev_min_up_local(registry: Registry, *, bus: str, ports: Ports, base: Path | None = None) -> UpResult:
    """Substrate up + bootstrap, then P0 checked live into the active run's bundle."""
    substrate = up(registry, bus=bus, ports=ports, base=base)
    folders = RunFolders.from_registry(registry, base)
    run_id = _reusable_active_run(folders, registry) or folders.new_run()
    settings = settings_for(substrate.state, registry)
    processes = [{"name": p.name, "pid": p.pid, "port": p.port, "started_by_us": True} for p in substrate.state.processes]
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"processes": processes, "base": base, "bus": bus})
    execute(PackagingReady(), ctx)
    record = execute(SubstrateReady(), ctx)
    return UpResult(run_id, substrate, record, folders.evidence_dir(run_id))


@dataclass(frozen=True)
class DownResult:
    """What `dev-min-down` did."""

    platform_run_id: str
    p12_record: dict[str, Any]
    evidence_dir: Path
    already_torn_down: bool = False


def dev_min_down_local(registry: Registry, *, base: Path | None = None) -> DownResult:
    """P12: stop the substrate and prove it, into the active run's local bundle."""
    folders = RunFolders.from_registry(registry, base)
    run_id = folders.active_run_id()
    proof = folders.evidence_dir(run_id) / registry.text("TEARDOWN_PROOF_PATH_PATTERN")
    if proof.exists() and read_state(state_dir(registry, base)) is None:
        record = json.loads((folders.evidence_dir(run_id) / registry.render("PHASE_RECORD_PATH_PATTERN", phase_id="P12")).read_text())
        return DownResult(run_id, record, folders.evidence_dir(run_id), already_torn_down=True)
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, None), None, {"base": base})
    record = execute(Teardown(), ctx)
    return DownResult(run_id, record, folders.evidence_dir(run_id))


class RunLocked(PlatformError):
    """Another `dev-min-run` holds this run."""

    code = "RUN_LOCKED"
    next_step = "wait for the other dev-min-run to finish; only one controller drives a run at a time"


@contextmanager
def run_lock(folders: RunFolders, platform_run_id: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on the run (released when the process ends, even by a kill)."""
    path = folders.run_dir(platform_run_id) / ".controller.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"run {platform_run_id} is being driven by another dev-min-run") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class RunResult:
    """What `dev-min-run` did."""

    platform_run_id: str
    outcome: RunOutcome
    new_run: bool


def dev_min_run_local(registry: Registry, selection: Slice, *, gate: int | None, bus: str | None,
                      base: Path | None = None, progress: Callable[[str, str], None] | None = None,
                      options: dict[str, Any] | None = None) -> RunResult:
    """P1..P11 (or a slice) on the active run; a pinned run gets a fresh run unless resuming."""
    planned_phases(selection)  # refuse a bad slice before touching anything
    state = read_state(state_dir(registry, base))
    if state is None:
        raise PlatformError("the local substrate is not up", code="SUBSTRATE_DOWN", next_step="run `fp dev-min-up` first")
    if bus and bus != state.bus:
        raise PlatformError(f"--bus {bus} but the substrate runs the {state.bus} bus", code="BUS_MISMATCH",
                            next_step=f"bring the substrate up with --bus {bus} (fp dev-min-down; fp dev-min-up --bus {bus})")
    folders = RunFolders.from_registry(registry, base)
    run_id = folders.active_run_id()
    settings = settings_for(state, registry)
    resuming = bool(selection.from_ or selection.only)
    pinned = (folders.evidence_dir(run_id) / registry.text("EVIDENCE_RUN_JSON_KEY")).exists()
    new_run = pinned and not resuming
    options = {"bus": state.bus, "gate": gate, "base": base, **(options or {})}
    if new_run:
        run_id = folders.new_run()
        processes = [{"name": p.name, "pid": p.pid, "port": p.port, "started_by_us": True} for p in state.processes]
        p0 = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                        {**options, "processes": processes})
        execute(PackagingReady(), p0)
        execute(SubstrateReady(), p0)
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings, options,
                     preconditions=[substrate_intact])
    with run_lock(folders, run_id):
        outcome = run_phases(ctx, selection, progress)
    return RunResult(run_id, outcome, new_run)


def dev_min_settings(registry: Registry) -> Settings:
    """The controller's view of dev_min: real AWS (or the endpoint the environment names), Kafka."""
    from runtime.settings import load_settings

    return load_settings(environment=registry.environment)


def dev_min_up_cloud(registry: Registry, *, options: dict[str, Any] | None = None, base: Path | None = None) -> UpResult:
    """dev_min for a fresh run: apply core (persistent, cheap: the ECR repository P(-1) pushes to and
    the evidence bucket every phase writes to), then P(-1), then P0 (demo apply + preflight). A
    failing P(-1) stops before demo, the costly part, is applied: no image, nothing to run."""
    from controller.devmin.terraform import stack_from_registry
    from controller.devmin.wiring import adapters
    from controller.phases.p00_dev_min import DevMinSubstrateReady

    options = dict(options or {})
    wired = options.get("devmin_adapters") or adapters(registry)
    options["devmin_adapters"] = wired
    wired.runner.apply(stack_from_registry(registry, "core"))
    folders = RunFolders.from_registry(registry, base)
    run_id = folders.new_run()
    settings = dev_min_settings(registry)
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"bus": settings.bus, **options})
    execute(PackagingReady(), ctx)

    record = execute(DevMinSubstrateReady(), ctx)
    return UpResult(run_id, None, record, folders.evidence_dir(run_id))


def dev_min_run_cloud(registry: Registry, selection: Slice, *, gate: int | None, options: dict[str, Any] | None = None,
                      base: Path | None = None, progress: Callable[[str, str], None] | None = None) -> RunResult:
    """P1..P11 (or a slice) of the active dev_min run, every job and daemon on ECS.

    A dev_min run gets its P(-1) and P0 from `dev-min-up --env dev_min` (the phase machine refuses
    to start without them); a run that is already pinned is only resumed (--from/--phase), never
    re-pinned as a new run here."""
    planned_phases(selection)
    folders = RunFolders.from_registry(registry, base)
    try:
        run_id = folders.active_run_id()
    except RunFolderError as e:
        raise RunFolderError(e.message, next_step="run `fp dev-min-up --env dev_min` to create a dev_min run") from None
    settings = dev_min_settings(registry)
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"bus": settings.bus, "gate": gate, "base": base, **(options or {})})
    resuming = bool(selection.from_ or selection.only)
    if not resuming and ctx.writer.read("EVIDENCE_RUN_JSON_KEY") is not None:
        raise PlatformError(f"dev_min run {run_id} is already pinned", code="RUN_ALREADY_PINNED",
                            next_step="resume it with --from/--phase, or start a fresh run with `fp dev-min-up --env dev_min`")
    with run_lock(folders, run_id):
        outcome = run_phases(ctx, selection, progress)
    return RunResult(run_id, outcome, False)


def dev_min_down_cloud(registry: Registry, *, options: dict[str, Any] | None = None, base: Path | None = None) -> DownResult:
    """dev_min P12 for the active run: destroy demo only, verify, record the proof in the run's bundle."""
    from controller.phases.p12_dev_min import DevMinTeardown

    folders = RunFolders.from_registry(registry, base)
    run_id = folders.active_run_id()
    settings = dev_min_settings(registry)
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings, dict(options or {}))
    record = execute(DevMinTeardown(), ctx)
    return DownResult(run_id, record, folders.evidence_dir(run_id))
