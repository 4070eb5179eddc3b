"""P2 DAEMONS_READY: every pack the run's slice needs is running, scoped to this run.

The compute backend (local supervised processes, or ECS services) comes from the environment;
the phase never branches on it (except that in dev_min the database owner's migrations job runs
first; locally P0's `fp substrate up` did it). Gate: per pack in scope, every daemon runs and the run scope it
enforces is this platform_run_id. Evidence `operate/daemons_ready.json` (pids or task ARNs).
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from controller.phases.compute import compute_backend, run_job
from runtime.components import component, unbuilt_members

#: The owner's job that creates the runtime role, applies migrations and grants (runtime/db/cli.py).
#: Locally `fp substrate up` (P0) does the same; in dev_min it runs on ECS before any daemon,
#: because the runtime's own role cannot migrate.
MIGRATIONS_JOB = "db_migrations"


class DaemonsReady(Phase):
    """P2."""

    phase_id = "P2"
    name = "DAEMONS_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Start (or keep) each pack in scope and record its state."""
        backend = compute_backend(ctx)
        if ctx.registry.environment == "dev_min":
            run_job(ctx, MIGRATIONS_JOB, list(component(MIGRATIONS_JOB).argv), default_timeout=600)
        rows, checks = [], []
        for pack in list(ctx.options.get("packs", [])):
            state = backend.start_pack(pack, ctx.platform_run_id, progress=ctx.options.get("job_progress"))
            rows.append(state.to_evidence())
            checks.append(Check(f"{pack}_running", state.running, f"{state.running_count}/{state.desired_count} running"))
            checks.append(Check(f"{pack}_run_scope", state.run_scope == ctx.platform_run_id, f"scope {state.run_scope}"))
            left_out = unbuilt_members(ctx.registry, pack)
            if left_out:  # recorded, not hidden: the phase gating on them fails closed naming them
                checks.append(Check(f"{pack}_partial", True, f"not in this build, started without: {', '.join(left_out)}"))
        document = {
            **ctx.writer.base_fields("P2", ["PACKS", "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", "DAEMONS_READY_PATH_PATTERN"]),
            "packs": rows,
            "run_scope": {"env_key": ctx.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"), "value": ctx.platform_run_id},
            "all_running": all(c.ok for c in checks),
        }
        return PhaseOutcome([ctx.writer.write("DAEMONS_READY_PATH_PATTERN", document)], checks)
