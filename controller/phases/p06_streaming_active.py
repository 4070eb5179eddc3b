"""P6 STREAMING_ACTIVE: WSP runs as a job (local process or ECS task), finds READY for this run,
and streams the stream views to IG, at most the pinned gate per output, in the pinned traffic mode.

Gate: the job exited 0, wsp_start and wsp_summary are in the bundle, every output emitted > 0
records and none failed. Re-runnable: IG dedupe absorbs replays (same event ids).
"""

from __future__ import annotations

from typing import Any

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import run_job
from controller.phases.run_options import DEFAULT_MODE


def wsp_argv(platform_run_id: str, options: dict[str, Any]) -> list[str]:
    """The WSP job's command line: the run's pinned gate (events per output) and traffic mode."""
    argv = ["wsp", "run", "--platform-run-id", platform_run_id, "--mode", str(options.get("mode") or DEFAULT_MODE)]
    if options.get("gate"):
        argv += ["--max-events-per-output", str(options["gate"])]
    if options.get("restream"):
        argv.append("--restream")
    return argv


class StreamingActive(Phase):
    """P6."""

    phase_id = "P6"
    name = "STREAMING_ACTIVE"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the WSP job and collect its evidence."""
        job = run_job(ctx, "wsp", wsp_argv(ctx.platform_run_id, ctx.options))
        evidence = collected(ctx, "WSP_START_PATH_PATTERN", "WSP_SUMMARY_PATH_PATTERN")
        summary = ctx.writer.read("WSP_SUMMARY_PATH_PATTERN") or {}
        per_output = summary.get("per_output", [])
        silent = [o["output_id"] for o in per_output if not o.get("emitted")]
        failures = int(summary.get("totals", {}).get("failures", 0)) if summary else 0
        return PhaseOutcome(evidence, [
            Check("wsp_job_exit_0", job.exit_code == 0, f"log {job.log_location}"),
            Check("every_output_emitted", bool(per_output) and not silent, f"silent: {', '.join(silent)}" if silent else None),
            Check("no_send_failures", failures == 0, f"{failures} failures" if failures else None),
        ])
