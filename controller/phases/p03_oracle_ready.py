"""P3 ORACLE_READY: the oracle lane as the run's batch jobs, one per sub-step (seed 004 P3.4):
oracle_seed (generate or reuse the engine run, sync, seal), oracle_stream_sort, oracle_checker.

The jobs run through the compute backend (local processes, or ECS tasks in dev_min) and write
their evidence to the run's bundle in the object store; the phase copies it into every bundle
target. The engine run is deterministic for (seed, scale, scenario); locally it is cached under
the runs root and reused by later runs. Gate: the pack is sealed and the checker passed every
required output. Re-runnable per output: valid receipts are skipped.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected, substrate_settings
from controller.phases.compute import run_job
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.layout import OracleLayout

#: Engine scale (traffic events) when the run has no bounded gate; a gate of N needs far fewer.
DEFAULT_SCALE = 20_000


def engine_config(ctx: RunContext) -> EngineConfig:
    """The engine config of the run: scale follows the bounded gate so a Gate-20 run stays small."""
    gate = ctx.options.get("gate")
    scale = int(ctx.options.get("engine_scale") or (max(2_000, gate * 20) if gate else DEFAULT_SCALE))
    return EngineConfig(seed=int(ctx.options.get("engine_seed", 42)), scale=scale)


class OracleReady(Phase):
    """P3."""

    phase_id = "P3"
    name = "ORACLE_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the three jobs in order and collect their evidence."""
        settings = substrate_settings(ctx)
        config = engine_config(ctx)
        config.validate()
        run_id = ctx.platform_run_id
        run_job(ctx, "oracle_seed", ["oracle", "seed", "--platform-run-id", run_id, "--seed", str(config.seed),
                                     "--scale", str(config.scale)])
        run_job(ctx, "oracle_stream_sort", ["oracle", "stream-sort", "--platform-run-id", run_id])
        checker = run_job(ctx, "oracle_checker", ["oracle", "check", "--platform-run-id", run_id])
        evidence = collected(ctx, "SEED_SNAPSHOT_PATH_PATTERN", "STREAM_SORT_SUMMARY_PATH_PATTERN", "CHECKER_PASS_PATH_PATTERN")
        sealed = settings.bucket("S3_ORACLE_BUCKET").exists(OracleLayout(ctx.registry, run_id).seal_key)
        verdict = ctx.writer.read("CHECKER_PASS_PATH_PATTERN") or {}
        summary = ctx.writer.read("STREAM_SORT_SUMMARY_PATH_PATTERN") or {}
        failing = [o["output_id"] for o in summary.get("outputs", []) if o.get("status") != "PASS"]
        return PhaseOutcome(evidence, [
            Check("pack_sealed", sealed, OracleLayout(ctx.registry, run_id).seal_key),
            Check("stream_views_checked", verdict.get("status") == "PASS" and not failing,
                  f"failing outputs: {', '.join(failing)}" if failing else f"checker job {checker.log_location}"),
        ])
