"""P3 ORACLE_READY: the oracle lane as the run's batch jobs, one per sub-step (seed 004 P3.4):
oracle_seed (generate or reuse the engine run, sync, seal), oracle_stream_sort, oracle_checker.

The jobs run through the compute backend (local processes, or ECS tasks in dev_min) and write
their evidence to the run's bundle in the object store; the phase copies it into every bundle
target. The engine run is deterministic for (seed, scale, scenario), pinned by P1 (`--seed`,
`--scale`); locally it is cached under the runs root and reused by later runs. A baseline-mode run
(`--mode baseline`) also sorts and checks the outputs that mode streams. Gate: the pack
is sealed and the checker passed every required output. Re-runnable per output: valid receipts are skipped.
"""

from __future__ import annotations

from typing import Any

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected, substrate_settings
from controller.phases.compute import run_job
from controller.phases.run_options import DEFAULT_MODE, engine_config
from runtime.contracts.registry import Registry
from runtime.oracle.layout import OracleLayout
from runtime.wsp.envelope import OutputPlan


def mode_outputs(registry: Registry, mode: str) -> list[str]:
    """The outputs the oracle must sort and check for a traffic mode: the required set (SR's READY
    needs it) plus what WSP streams in that mode. Empty for the default mode: the jobs' default is
    exactly the required set."""
    if mode == DEFAULT_MODE:
        return []
    required = registry.names("ORACLE_REQUIRED_OUTPUT_IDS")
    return [*required, *(o for o in OutputPlan(registry, mode).outputs if o not in required)]


def oracle_jobs(registry: Registry, platform_run_id: str, options: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The three P3 jobs (component, argv) of the run, with the seed, scale and traffic mode it pinned."""
    config = engine_config(options)
    config.validate()
    selected = [arg for output_id in mode_outputs(registry, options.get("mode") or DEFAULT_MODE)
                for arg in ("--output-id", output_id)]
    return [
        ("oracle_seed", ["oracle", "seed", "--platform-run-id", platform_run_id, "--seed", str(config.seed),
                         "--scale", str(config.scale)]),
        ("oracle_stream_sort", ["oracle", "stream-sort", "--platform-run-id", platform_run_id, *selected]),
        ("oracle_checker", ["oracle", "check", "--platform-run-id", platform_run_id, *selected]),
    ]


class OracleReady(Phase):
    """P3."""

    phase_id = "P3"
    name = "ORACLE_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the three jobs in order and collect their evidence."""
        settings = substrate_settings(ctx)
        run_id = ctx.platform_run_id
        checker = [run_job(ctx, component, argv) for component, argv in oracle_jobs(ctx.registry, run_id, ctx.options)][-1]
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
