"""P9 DECISION_CHAIN_COMMITTED: the decision lane decided, acted on and logged every admitted traffic event.

The check runs as a job where the database lives (`decision committed`: a local process, an ECS
task in dev_min); it writes `decision_lane/decision_summary.json`, `action_summary.json` and
`audit_summary.json` only when the chain is committed. The phase collects the three and gates on
them: every admitted traffic event decided, AL intake == outcomes, DLA logged every record with
`lineage_unresolved_total == 0` and a verified audit chain, DL/DF/AL/DLA GREEN, no dead letters,
the decisions' policy the one P1 pinned in run.json, and a decision digest.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import GATE_JOB_TIMEOUT_S, compute_backend, run_job

#: The job component of P9 (runtime/components.py).
COMMITTED_JOB = "decision_committed"
#: The pack whose work P9 gates (started at P2 when the slice reaches P9).
PACK = "rtdl_decision_lane"
EVIDENCE = ("DECISION_LANE_EVIDENCE_PATH_PATTERN", "ACTION_SUMMARY_PATH_PATTERN", "DLA_EVIDENCE_PATH_PATTERN")


class DecisionChainCommitted(Phase):
    """P9."""

    phase_id = "P9"
    name = "DECISION_CHAIN_COMMITTED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Make sure the pack runs for this run (a run resumed `--from P9` after a `--to P8` slice never
        started it at P2), run the committed job, collect its evidence, gate on it."""
        backend = compute_backend(ctx)
        state = backend.pack_state(PACK)
        if not (state.running and state.run_scope == ctx.platform_run_id):
            backend.start_pack(PACK, ctx.platform_run_id, progress=ctx.options.get("job_progress"))
        run_job(ctx, COMMITTED_JOB, ["decision", "committed", "--platform-run-id", ctx.platform_run_id],
                default_timeout=GATE_JOB_TIMEOUT_S)
        evidence = collected(ctx, *EVIDENCE)
        decision = ctx.writer.read("DECISION_LANE_EVIDENCE_PATH_PATTERN") or {}
        action = ctx.writer.read("ACTION_SUMMARY_PATH_PATTERN") or {}
        audit = ctx.writer.read("DLA_EVIDENCE_PATH_PATTERN") or {}
        run = ctx.writer.read("EVIDENCE_RUN_JSON_KEY") or {}
        pinned = ((run.get("config") or {}).get("policy") or {}).get("digest")
        counts = decision.get("counts") or {}
        acts = action.get("counts") or {}
        chain = audit.get("chain") or {}
        health = decision.get("health") or {}
        members = list(ctx.registry.mapping("PACKS")[PACK])
        dead = {"df": counts.get("dead_letters"), "al": acts.get("refused"), "dla": (audit.get("counts") or {}).get("dead_letters")}
        return PhaseOutcome(evidence, [
            Check("all_admitted_decided", decision.get("all_admitted_decided") is True and counts.get("decisions", 0) > 0,
                  f"{counts.get('decisions')} decision(s) for {counts.get('admitted_traffic_events')} admitted traffic event(s)"),
            Check("intake_equals_outcomes", action.get("intake_equals_outcomes") is True,
                  f"{acts.get('intents')} intent(s), {acts.get('outcomes')} outcome(s),"
                  f" {acts.get('duplicates_prevented')} duplicate(s) prevented"),
            Check("lineage_resolved", audit.get("lineage_unresolved_total") == 0 and bool(audit),
                  f"lineage_unresolved_total {audit.get('lineage_unresolved_total')}"),
            Check("audit_chain_verified", chain.get("verified") is True and not chain.get("problems"),
                  f"{(audit.get('counts') or {}).get('batches')} batch(es), head {chain.get('head_sha256')}"),
            Check("health_green", bool(health) and all(health.get(c) == "GREEN" for c in members),
                  ", ".join(f"{c}={health.get(c, 'MISSING')}" for c in members)),
            Check("dead_letters_explained", all(v == 0 for v in dead.values()),
                  ", ".join(f"{c}={v}" for c, v in dead.items())),
            Check("policy_pinned", bool(pinned) and (decision.get("policy") or {}).get("digest") == pinned,
                  f"decisions under {(decision.get('policy') or {}).get('digest')}, run.json pins {pinned}"),
            Check("decision_digest", bool(decision.get("decision_digest")), f"decision_digest {decision.get('decision_digest')}"),
        ])
