"""P0 SUBSTRATE_READY (dev_min): apply core then demo through Terraform, run the seed 004 P0
preflight, and record it in the run's bundle.

The preflight writes the environment-level demo apply snapshot itself; this phase adds the run's
substrate snapshot (the same checks, per run) so P0 has its evidence in every run bundle, like
local_parity. A failing preflight fails the phase with the preflight's own code.
"""

from __future__ import annotations

from typing import Any

from controller.devmin.checks import BUCKET_HANDLES
from controller.devmin.up import dev_min_up
from controller.devmin.wiring import DevMinAdapters, adapters
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext


class DevMinSubstrateReady(Phase):
    """P0 for dev_min."""

    phase_id = "P0"
    name = "SUBSTRATE_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Terraform apply + preflight, then the run's substrate snapshot."""
        wired: DevMinAdapters = ctx.options.get("devmin_adapters") or adapters(ctx.registry)
        result = dev_min_up(ctx.registry, wired.runner, wired.aws, kafka_admin=wired.kafka_admin,
                            platform_run_id=ctx.platform_run_id)
        checks = [Check(c.name, c.ok, c.detail) for c in result.preflight.checks]
        by_name = {c.name: c for c in result.preflight.checks}
        buckets: list[dict[str, Any]] = []
        for key in BUCKET_HANDLES:
            name = ctx.registry.text(key)
            seen = by_name.get(f"bucket_writable:{name}")
            buckets.append({"handle": key, "name": name, "exists": seen is not None, "writable": bool(seen and seen.ok)})
        database = by_name.get("runtime_db_present")
        document = {
            **ctx.writer.base_fields("P0", ["DEMO_APPLY_SNAPSHOT_KEY", *BUCKET_HANDLES]),
            "environment": ctx.registry.environment, "bus": "kafka",
            "checks": [c.to_dict() for c in checks], "all_ok": all(c.ok for c in checks),
            "buckets": buckets, "topics": [], "secrets": [],
            "database": {"reachable": bool(database and database.ok), "server_version": None, "migrations_applied": []},
            "endpoints": {"demo_apply_snapshot": result.snapshot_uri},
        }
        return PhaseOutcome([ctx.writer.write("SUBSTRATE_SNAPSHOT_PATH_PATTERN", document)], checks)
