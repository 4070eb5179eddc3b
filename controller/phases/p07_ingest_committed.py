"""P7 INGEST_COMMITTED: admissions are committed: receipts, bus offsets and quarantine are evidenced.

The summaries come from a job where the database lives (`ig commit-summary` under the reporter
task definition in dev_min; a local process otherwise). Gate, from durable state: receipt batch
objects exist under the run's receipts prefix, outcome counts add up to attempts, at least one
ADMIT, no unresolved PUBLISH_AMBIGUOUS, and the event topics hold records.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected, substrate_settings
from controller.phases.compute import run_job
from controller.phases.p04_ingest_ready import VERIFIER_JOB
from runtime.ig.summaries import event_topics


class IngestCommitted(Phase):
    """P7."""

    phase_id = "P7"
    name = "INGEST_COMMITTED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the summary job, collect its evidence, check the commit point."""
        settings = substrate_settings(ctx)
        run_job(ctx, VERIFIER_JOB, ["ig", "commit-summary", "--platform-run-id", ctx.platform_run_id], default_timeout=600)
        evidence = collected(ctx, "RECEIPT_SUMMARY_PATH_PATTERN", "KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN",
                             "QUARANTINE_INDEX_PATH_PATTERN")
        summary = ctx.writer.read("RECEIPT_SUMMARY_PATH_PATTERN") or {}
        snapshot = ctx.writer.read("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN") or {}
        prefix = ctx.registry.render("IG_RECEIPTS_PREFIX_PATTERN", platform_run_id=ctx.platform_run_id)
        receipt_objects = sum(1 for _ in settings.bucket("S3_EVIDENCE_BUCKET").list(prefix))
        with_records = {r["topic"] for r in snapshot.get("offset_ranges", [])}
        admitted = int(summary.get("counts", {}).get("by_outcome", {}).get("ADMIT", 0))
        mode_topics = {t for t in event_topics(ctx.registry) if t in with_records}
        return PhaseOutcome(evidence, [
            Check("receipts_present", receipt_objects > 0, f"{receipt_objects} receipt batch object(s) under {prefix}"),
            Check("admitted", admitted > 0, f"ADMIT={admitted}"),
            Check("no_unresolved_ambiguity", summary.get("publish_ambiguous_unresolved") == 0,
                  f"unresolved PUBLISH_AMBIGUOUS: {summary.get('publish_ambiguous_unresolved')}"),
            Check("topics_hold_records", bool(mode_topics), f"topics with records: {', '.join(sorted(mode_topics)) or 'none'}"),
        ])
