"""P5 READY_PUBLISHED: the Scenario Runner, run as a one-shot job, gates on the sealed oracle and
publishes READY.

The job runs through the compute backend (a local process, or the SR task on ECS in dev_min).
Gate, from the evidence SR wrote to the bundle: every SR gate passed (seal, every required stream
view) and READY landed on the control topic at a known offset/sequence. Re-runnable with a new
equivalence key, after the lease TTL, or after `python -m runtime sr lease-clear`; a held lease
fails the phase with SR's own LEASE_BUSY.
"""

from __future__ import annotations

import os

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import run_job


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
        """Run the SR job for this run and collect its evidence."""
        argv = ["sr", "run", "--platform-run-id", ctx.platform_run_id, "--equivalence-key", equivalence_key(ctx)]
        job = run_job(ctx, "sr", argv)
        evidence = collected(ctx, "SR_PASS_PATH_PATTERN", "READY_PUBLISH_RECEIPT_PATH_PATTERN")
        passed = ctx.writer.read("SR_PASS_PATH_PATTERN") or {}
        ready = ctx.writer.read("READY_PUBLISH_RECEIPT_PATH_PATTERN") or {}
        failed_gates = [g.get("name") for g in passed.get("gates", []) if not g.get("ok")]
        return PhaseOutcome(evidence, [
            Check("sr_gates_passed", bool(passed.get("gates")) and not failed_gates,
                  ", ".join(str(g) for g in failed_gates) or f"sr job {job.log_location}"),
            Check("ready_published", ready.get("offset") is not None,
                  f"{ready.get('topic')} partition {ready.get('partition')} offset {ready.get('offset')}"),
        ])
