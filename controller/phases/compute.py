"""How phases reach the run's compute backend: one backend per run context, and jobs run through
it with the run's timeout, the operator's progress line and a record of every job in the phase.

The backend (local processes, or ECS) comes from the environment, so no phase branches on it.
"""

from __future__ import annotations

from pathlib import Path

from controller.compute.factory import backend_for
from controller.compute.port import ComputeBackend, JobFailed, JobResult
from controller.packaging import pinned_image
from controller.phases.base import RunContext
from controller.progress_probe import monitor as progress_monitor
from controller.substrate.state import read_state, state_dir
from runtime.errors import PlatformError


def compute_backend(ctx: RunContext) -> ComputeBackend:
    """The run's compute backend, built once per run context: locally it carries the substrate's
    endpoints to every process; on ECS every task runs the image P(-1) pinned. Options
    `aws_clients` and `ecs_poll_seconds` replace the AWS clients and the ECS polling interval (a
    drill against another account or endpoint)."""
    if ctx.backend is not None:
        return ctx.backend
    environment: dict[str, str] = {}
    if ctx.registry.environment == "local_parity":
        base: Path | None = ctx.options.get("base")
        substrate = read_state(state_dir(ctx.registry, base))
        if substrate is None:
            raise PlatformError("the local substrate is not up", code="SUBSTRATE_DOWN", next_step="run `fp dev-min-up`")
        environment = substrate.runtime_environment(ctx.registry)
    ctx.backend = backend_for(ctx.registry, runs_root=ctx.folders.root, environment=environment,
                              commands=ctx.options.get("daemon_commands"), clients=ctx.options.get("aws_clients"),
                              poll_seconds=ctx.options.get("ecs_poll_seconds"),
                              image=pinned_image(ctx.writer.read("PACKAGING_READY_PATH_PATTERN")))
    return ctx.backend


#: A gate job (P8, P9, P10) fails on its own once its plane stops advancing (its `--wait`,
#: runtime/evidence/gate_wait.py); the job timeout only catches one that hangs outside that loop,
#: so it must outlast the longest full-cap run a plane can still be advancing through.
GATE_JOB_TIMEOUT_S = 6 * 3600.0


def run_job(ctx: RunContext, component: str, argv: list[str], *, default_timeout: float = 3600.0) -> JobResult:
    """Run one job of this run on its compute backend, scoped to the run, with the run's job
    timeout (`job_timeout`) and the operator's progress line (`job_progress`). The result (task
    ARN or pid, exit code, log) goes into the phase record, also when the job fails; a failure
    raises with the job's own error code."""
    backend = compute_backend(ctx)
    try:
        with progress_monitor(ctx):  # live progress of the streaming and commit phases (option run_progress)
            result = backend.run_job(component, argv, ctx.platform_run_id,
                                     timeout=float(ctx.options.get("job_timeout", default_timeout)),
                                     progress=ctx.options.get("job_progress"))
    except JobFailed as e:
        ctx.jobs.append(e.result.to_evidence())
        raise
    ctx.jobs.append(result.to_evidence())
    return result


def ensure_pack(ctx: RunContext, pack: str) -> None:
    """Start `pack` for this run unless it already runs for it (a run resumed `--from` a gate phase
    never started it at P2, e.g. after a shorter slice)."""
    backend = compute_backend(ctx)
    state = backend.pack_state(pack)
    if not (state.running and state.run_scope == ctx.platform_run_id):
        backend.start_pack(pack, ctx.platform_run_id, progress=ctx.options.get("job_progress"))
