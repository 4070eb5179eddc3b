"""P2 DAEMONS_READY: every pack the run's slice needs is running, scoped to this run.

The compute backend (local supervised processes, or ECS services) comes from the environment;
the phase never branches on it. Gate: per pack in scope, every daemon runs and the run scope it
enforces is this platform_run_id. Evidence `operate/daemons_ready.json` (pids or task ARNs).
"""

from __future__ import annotations

from pathlib import Path

from controller.compute.factory import backend_for
from controller.compute.port import ComputeBackend, JobResult, job_failed
from controller.packaging import pinned_image
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from controller.substrate.state import read_state, state_dir
from runtime.errors import PlatformError


def compute_backend(ctx: RunContext) -> ComputeBackend:
    """The run's compute backend: locally it carries the substrate's endpoints to every process; on
    ECS every task runs the image P(-1) pinned. Options `aws_clients` and `ecs_poll_seconds` replace
    the AWS clients and the ECS polling interval (a drill against another account or endpoint)."""
    environment: dict[str, str] = {}
    if ctx.registry.environment == "local_parity":
        base: Path | None = ctx.options.get("base")
        substrate = read_state(state_dir(ctx.registry, base))
        if substrate is None:
            raise PlatformError("the local substrate is not up", code="SUBSTRATE_DOWN", next_step="run `fp dev-min-up`")
        environment = substrate.runtime_environment(ctx.registry)
    return backend_for(ctx.registry, runs_root=ctx.folders.root, environment=environment,
                       commands=ctx.options.get("daemon_commands"), clients=ctx.options.get("aws_clients"),
                       poll_seconds=ctx.options.get("ecs_poll_seconds"),
                       image=pinned_image(ctx.writer.read("PACKAGING_READY_PATH_PATTERN")))


def run_job(ctx: RunContext, component: str, argv: list[str], *, default_timeout: float = 3600.0) -> JobResult:
    """Run one job of this run on its compute backend, scoped to the run, with the run's job
    timeout (`job_timeout`) and the operator's progress line (`job_progress`). The result (task
    ARN or pid, exit code, log) goes into the phase record; a failure raises with the job's own
    error code."""
    backend = compute_backend(ctx)
    result = backend.run_job(component, argv, ctx.platform_run_id, timeout=float(ctx.options.get("job_timeout", default_timeout)),
                             progress=ctx.options.get("job_progress"), check=False)
    ctx.jobs.append(result.to_evidence())
    if result.exit_code != 0:
        where = f"task {result.task_arn}" if result.task_arn else f"pid {result.pid}"
        raise job_failed(result, where, "ECS_TASK_FAILED" if backend.kind == "ecs" else "JOB_FAILED")
    return result


class DaemonsReady(Phase):
    """P2."""

    phase_id = "P2"
    name = "DAEMONS_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Start (or keep) each pack in scope and record its state."""
        backend = compute_backend(ctx)
        rows, checks = [], []
        for pack in list(ctx.options.get("packs", [])):
            state = backend.start_pack(pack, ctx.platform_run_id, progress=ctx.options.get("job_progress"))
            rows.append(state.to_evidence())
            checks.append(Check(f"{pack}_running", state.running, f"{state.running_count}/{state.desired_count} running"))
            checks.append(Check(f"{pack}_run_scope", state.run_scope == ctx.platform_run_id, f"scope {state.run_scope}"))
        document = {
            **ctx.writer.base_fields("P2", ["PACKS", "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", "DAEMONS_READY_PATH_PATTERN"]),
            "packs": rows,
            "run_scope": {"env_key": ctx.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"), "value": ctx.platform_run_id},
            "all_running": all(c.ok for c in checks),
        }
        return PhaseOutcome([ctx.writer.write("DAEMONS_READY_PATH_PATTERN", document)], checks)
