"""P5 READY_PUBLISHED: the Scenario Runner gates on the sealed oracle and publishes READY.

Gate: SR's own gates passed (seal, every required stream view), READY landed on the control
topic at a known offset/sequence, and sr_pass + ready_publish_receipt are in the bundle. Re-runnable
with a new equivalence key, after the lease TTL, or after `python -m runtime sr lease-clear`.
"""

from __future__ import annotations

import os

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected, substrate_settings
from runtime.sr.runner import run_scenario_runner


def equivalence_key(ctx: RunContext) -> str:
    """--equivalence-key, else the environment variable the registry names, else the run id."""
    source = ctx.registry.text("SCENARIO_EQUIVALENCE_KEY_INPUT")
    variable = source.split(":", 1)[1] if source.startswith("env:") else source
    return str(ctx.options.get("equivalence_key") or os.environ.get(variable) or ctx.platform_run_id)


class ReadyPublished(Phase):
    """P5."""

    phase_id = "P5"
    name = "READY_PUBLISHED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run SR for this run and collect its evidence."""
        settings = substrate_settings(ctx)
        result = run_scenario_runner(settings, ctx.platform_run_id, equivalence_key(ctx), ctx.writer)
        ctx.options["scenario_run_id"] = result.scenario_run_id
        evidence = collected(ctx, "SR_PASS_PATH_PATTERN", "READY_PUBLISH_RECEIPT_PATH_PATTERN")
        return PhaseOutcome(evidence, [
            Check("sr_gates_passed", all(g.ok for g in result.gates), ", ".join(g.name for g in result.gates if not g.ok) or None),
            Check("ready_published", result.ready_ref.offset is not None,
                  f"{result.ready_ref.topic} partition {result.ready_ref.partition} offset {result.ready_ref.offset}"),
        ])
