"""P3 ORACLE_READY: the oracle lane as the run's batch job: generate, sync, seal, stream-sort, check.

The engine run is deterministic for (seed, scale, scenario), so it is generated once per config
under the runs root and reused by later runs. Gate: the pack is sealed and the checker passed
every required output (stream-view parts, manifest and receipt present and consistent, order
verified). Re-runnable per output: valid receipts are skipped.
"""

from __future__ import annotations

from pathlib import Path

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected, substrate_settings
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import read_marker
from runtime.oracle.lane import run_oracle_lane

#: Engine scale (traffic events) when the run has no bounded gate; a gate of N needs far fewer.
DEFAULT_SCALE = 20_000


def engine_config(ctx: RunContext) -> EngineConfig:
    """The engine config of the run: scale follows the bounded gate so a Gate-20 run stays small."""
    gate = ctx.options.get("gate")
    scale = int(ctx.options.get("engine_scale") or (max(2_000, gate * 20) if gate else DEFAULT_SCALE))
    return EngineConfig(seed=int(ctx.options.get("engine_seed", 42)), scale=scale)


def engine_root(ctx: RunContext, config: EngineConfig) -> Path:
    """Where the engine run of `config` lives (shared by runs with the same config)."""
    return ctx.folders.root / "engine" / f"{config.scenario}-seed{config.seed}-scale{config.scale}"


class OracleReady(Phase):
    """P3."""

    phase_id = "P3"
    name = "ORACLE_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the lane and collect its evidence."""
        settings = substrate_settings(ctx)
        config = engine_config(ctx)
        root = engine_root(ctx, config)
        result = run_oracle_lane(settings, ctx.platform_run_id, root, ctx.writer,
                                 config=None if read_marker(root) is not None else config)
        evidence = collected(ctx, "SEED_SNAPSHOT_PATH_PATTERN", "STREAM_SORT_SUMMARY_PATH_PATTERN", "CHECKER_PASS_PATH_PATTERN")
        failing = [c.output_id for c in result.checks if not c.ok]
        return PhaseOutcome(evidence, [
            Check("pack_sealed", bool(result.pack), None),
            Check("stream_views_checked", result.passed, f"failing outputs: {', '.join(failing)}" if failing else None),
        ])
