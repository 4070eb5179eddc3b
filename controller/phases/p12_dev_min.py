"""P12 TEARDOWN (dev_min): destroy the demo stack only, prove the account is billing-safe, and
record the proof in the run's bundle (the evidence bucket and the local mirror).

Any leftover (a service, the database, a demo secret, a NAT gateway, the Kafka cluster) fails the
phase with TEARDOWN_LEFTOVER naming it; no proof is written then (seed 004 P12.7, stop the line).
"""

from __future__ import annotations

from controller.devmin.teardown import dev_min_down
from controller.devmin.wiring import DevMinAdapters, adapters
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext


class DevMinTeardown(Phase):
    """P12 for dev_min."""

    phase_id = "P12"
    name = "TEARDOWN"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """terraform destroy demo, verify against the account, write the proof."""
        wired: DevMinAdapters = ctx.options.get("devmin_adapters") or adapters(ctx.registry)
        extra = {"cluster_probe": ctx.options["cluster_probe"]} if "cluster_probe" in ctx.options else {}
        result = dev_min_down(ctx.registry, wired.runner, wired.aws, ctx.platform_run_id, writer=ctx.writer, **extra)
        return PhaseOutcome([result.written], [Check(c.name, c.ok, c.detail) for c in result.checks])
