"""P8 RTDL_CAUGHT_UP: the RTDL core made durable everything P7 committed, healthy and without dead letters.

The check runs as a job where the database lives (`rtdl caught-up`: a local process, an ECS task
in dev_min); it writes `rtdl_core/offsets_snapshot.json` and `rtdl_core/caught_up.json` only when
caught up. The phase collects both and gates on them: every (group, partition) covered with lag
<= RTDL_CAUGHT_UP_LAG_MAX, every component GREEN, dead letters 0 or explained, a state digest.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import GATE_JOB_TIMEOUT_S, ensure_pack, run_job

#: The job component of P8 (runtime/components.py).
CAUGHT_UP_JOB = "rtdl_caught_up"
#: The pack whose work P8 gates (started at P2 when the slice reaches P8).
PACK = "rtdl_core"


class RtdlCaughtUp(Phase):
    """P8."""

    phase_id = "P8"
    name = "RTDL_CAUGHT_UP"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Make sure the pack runs for this run (a run resumed `--from P8` after a `--to P7` slice never
        started it at P2), run the caught-up job, collect its evidence, gate on it."""
        ensure_pack(ctx, PACK)
        run_job(ctx, CAUGHT_UP_JOB, ["rtdl", "caught-up", "--platform-run-id", ctx.platform_run_id],
                default_timeout=GATE_JOB_TIMEOUT_S)
        evidence = collected(ctx, "OFFSETS_SNAPSHOT_PATH_PATTERN", "RTDL_CORE_EVIDENCE_PATH_PATTERN")
        doc = ctx.writer.read("RTDL_CORE_EVIDENCE_PATH_PATTERN") or {}
        snapshot = ctx.writer.read("OFFSETS_SNAPSHOT_PATH_PATTERN") or {}
        allowed = ctx.registry.integer("RTDL_CAUGHT_UP_LAG_MAX")
        rows = snapshot.get("partitions", [])
        behind = [f"{r['consumer_group_id']} {r['topic']}/{r['partition']} lag {r['lag']}" for r in rows if r["lag"] > allowed]
        health = doc.get("health", {})
        dead = doc.get("dead_letters", {})
        packs = ctx.registry.mapping("PACKS")[PACK]
        return PhaseOutcome(evidence, [
            Check("caught_up", doc.get("caught_up") is True and bool(rows) and not behind,
                  f"{len(rows) - len(behind)}/{len(rows)} (group, partition) within lag {allowed}"
                  + (f"; behind: {', '.join(behind[:5])}" if behind else "")),
            Check("groups_complete", set(snapshot.get("consumer_groups", [])) == {
                  ctx.registry.render("CONSUMER_GROUP_ID_PATTERN", component=c, platform_run_id=ctx.platform_run_id)
                  for c in packs}, f"groups {', '.join(snapshot.get('consumer_groups', [])) or 'none'}"),
            Check("health_green", bool(health) and all(health.get(c) == "GREEN" for c in packs),
                  ", ".join(f"{c}={health.get(c, 'MISSING')}" for c in packs)),
            Check("dead_letters_explained", int(dead.get("total", -1)) == int(dead.get("explained", 0)),
                  f"dead letters {dead.get('total')}, explained {dead.get('explained')}"),
            Check("state_digest", bool(doc.get("state_digest")), f"state_digest {doc.get('state_digest')}"),
        ])
