"""P10 CASE_LABELS_COMMITTED: the case and labels plane committed the run's cases and labels, healthy.

Both jobs run where the database lives (local processes, ECS tasks in dev_min): first LS's bank
view intake (`ls ingest-bank-view`, idempotent: a rerun appends only what is missing), then the
gate job (`case committed`), which waits bounded for the plane to catch up and writes
`case_labels/case_summary.json` and `label_summary.json` only when it did. The phase collects
both and gates on them: triggers present, a case for every triggered subject, labels present,
case_trigger/cm/ls GREEN, dead letters 0 or explained, both digests.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import GATE_JOB_TIMEOUT_S, ensure_pack, run_job

#: The job components of P10 (runtime/components.py).
INTAKE_JOB = "ls_bank_view_intake"
COMMITTED_JOB = "case_labels_committed"
#: The pack whose work P10 gates (started at P2 when the slice reaches P10).
PACK = "case_labels"


class CaseLabelsCommitted(Phase):
    """P10."""

    phase_id = "P10"
    name = "CASE_LABELS_COMMITTED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Make sure the pack runs for this run (a run resumed `--from P10` never started it at P2), run
        the bank view intake and the gate job, collect their evidence, gate on it."""
        ensure_pack(ctx, PACK)
        run_job(ctx, INTAKE_JOB, ["ls", "ingest-bank-view", "--platform-run-id", ctx.platform_run_id], default_timeout=900)
        run_job(ctx, COMMITTED_JOB, ["case", "committed", "--platform-run-id", ctx.platform_run_id],
                default_timeout=GATE_JOB_TIMEOUT_S)
        evidence = collected(ctx, "CASE_EVIDENCE_PATH_PATTERN", "LABEL_EVIDENCE_PATH_PATTERN")
        cases = ctx.writer.read("CASE_EVIDENCE_PATH_PATTERN") or {}
        labels = ctx.writer.read("LABEL_EVIDENCE_PATH_PATTERN") or {}
        counts, label_counts = cases.get("counts", {}), labels.get("counts", {})
        health = {**cases.get("health_by_component", {}), "ls": labels.get("health", "MISSING")}
        dead = [d for d in (cases.get("dead_letters"), labels.get("dead_letters")) if isinstance(d, dict)]
        total, explained = sum(int(d.get("total", 0)) for d in dead), sum(int(d.get("explained", 0)) for d in dead)
        return PhaseOutcome(evidence, [
            Check("triggers_present", int(counts.get("triggers_published", 0)) > 0,
                  f"triggers published {counts.get('triggers_published')}, processed {counts.get('triggers_processed')}"),
            Check("every_subject_has_its_case",
                  bool(cases) and cases.get("cases_missing") == 0 and cases.get("triggers_unattached") == 0
                  and counts.get("triggers_processed") == counts.get("triggers_published"),
                  f"cases {counts.get('cases')}, cases missing {cases.get('cases_missing')}, "
                  f"triggers unattached {cases.get('triggers_unattached')}"),
            Check("labels_present", int(label_counts.get("assertions_appended", 0)) > 0,
                  f"assertions {label_counts.get('assertions_appended')} by source {labels.get('assertions_by_source')}"),
            Check("health_green", all(health.get(c) == "GREEN" for c in ("case_trigger", "cm", "ls")),
                  ", ".join(f"{c}={health.get(c, 'MISSING')}" for c in ("case_trigger", "cm", "ls"))),
            Check("dead_letters_explained", len(dead) == 2 and total == explained,
                  f"dead letters {total}, explained {explained}"),
            Check("digests", bool(cases.get("case_digest")) and bool(labels.get("label_digest")),
                  f"case_digest {cases.get('case_digest')}, label_digest {labels.get('label_digest')}"),
        ])
