"""P2 DAEMONS_READY: every pack the run's slice needs is running, scoped to this run.

Gate: per pack in scope, its supervisor runs, every daemon is RUNNING, and the run scope it
enforces is this platform_run_id. Evidence `operate/daemons_ready.json`.
"""

from __future__ import annotations

from pathlib import Path

from controller.compute.local_backend import pack_id, start_pack
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from controller.substrate.state import read_state, state_dir
from runtime.errors import PlatformError


class DaemonsReady(Phase):
    """P2 on the local compute backend."""

    phase_id = "P2"
    name = "DAEMONS_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Start (or keep) each pack in scope and record its state."""
        base: Path | None = ctx.options.get("base")
        substrate = read_state(state_dir(ctx.registry, base))
        if substrate is None:
            raise PlatformError("the local substrate is not up", code="SUBSTRATE_DOWN", next_step="run `fp dev-min-up`")
        environment = substrate.runtime_environment(ctx.registry)
        packs = list(ctx.options.get("packs", []))
        commands = ctx.options.get("daemon_commands")
        rows, checks = [], []
        for pack in packs:
            state = start_pack(ctx.registry, pack, ctx.platform_run_id, ctx.folders.root, environment, commands=commands)
            processes = [{"name": p["name"], "status": p["status"], "pid": p.get("pid"), "task_arn": None, "service": None}
                         for p in state["processes"]]
            rows.append({"pack_id": pack_id(ctx.registry, pack), "state": state["state"], "processes": processes,
                         "desired_count": state["desired_count"], "running_count": state["running_count"]})
            checks.append(Check(f"{pack}_running", state["running_count"] == state["desired_count"],
                                f"{state['running_count']}/{state['desired_count']} running"))
            checks.append(Check(f"{pack}_run_scope", state["run_scope"] == ctx.platform_run_id, f"scope {state['run_scope']}"))
        document = {
            **ctx.writer.base_fields("P2", ["PACKS", "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", "DAEMONS_READY_PATH_PATTERN"]),
            "packs": rows,
            "run_scope": {"env_key": ctx.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"), "value": ctx.platform_run_id},
            "all_running": all(c.ok for c in checks),
        }
        return PhaseOutcome([ctx.writer.write("DAEMONS_READY_PATH_PATTERN", document)], checks)
