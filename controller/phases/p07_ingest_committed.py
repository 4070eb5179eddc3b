"""P7 INGEST_COMMITTED: admissions are committed: receipts, bus offsets and quarantine are evidenced.

Gate (durable state): receipts exist under the run's receipts prefix, outcome counts add up to
attempts, at least one ADMIT, no unresolved PUBLISH_AMBIGUOUS, and every traffic and context
topic of the mode holds records.
"""

from __future__ import annotations

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, substrate_settings
from runtime.bus.factory import admin
from runtime.bus.port import OffsetKind
from runtime.errors import PlatformError
from runtime.ig.store import AdmissionStore
from runtime.ig.summaries import event_topics, write_offsets_snapshot, write_quarantine_summary, write_receipt_summary


class IngestCommitted(Phase):
    """P7."""

    phase_id = "P7"
    name = "INGEST_COMMITTED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Summarise receipts, offsets and quarantine; check the commit point."""
        settings = substrate_settings(ctx)
        if not settings.db_dsn:
            raise PlatformError("no database DSN in the substrate settings", code="DB_DSN_MISSING", next_step="run `fp dev-min-up`")
        store = AdmissionStore(settings.db_dsn)
        store.open()
        try:
            receipts = write_receipt_summary(ctx.writer, store)
            quarantine = write_quarantine_summary(ctx.writer, store, ctx.registry.text("S3_QUARANTINE_BUCKET"))
        finally:
            store.close()
        offset_kind: OffsetKind = "kafka_offset" if settings.bus == "kafka" else "kinesis_sequence"
        offsets = write_offsets_snapshot(ctx.writer, admin(settings), offset_kind)
        summary = ctx.writer.read("RECEIPT_SUMMARY_PATH_PATTERN") or {}
        snapshot = ctx.writer.read("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN") or {}
        prefix = ctx.registry.render("IG_RECEIPTS_PREFIX_PATTERN", platform_run_id=ctx.platform_run_id)
        receipt_objects = sum(1 for _ in settings.bucket("S3_EVIDENCE_BUCKET").list(prefix))
        with_records = {r["topic"] for r in snapshot.get("offset_ranges", [])}
        wanted = set(event_topics(ctx.registry))
        admitted = int(summary.get("counts", {}).get("by_outcome", {}).get("ADMIT", 0))
        mode_topics = {t for t in wanted if t in with_records}
        return PhaseOutcome([receipts, offsets, quarantine], [
            Check("receipts_present", receipt_objects > 0, f"{receipt_objects} receipt batch object(s) under {prefix}"),
            Check("admitted", admitted > 0, f"ADMIT={admitted}"),
            Check("no_unresolved_ambiguity", summary.get("publish_ambiguous_unresolved") == 0,
                  f"unresolved PUBLISH_AMBIGUOUS: {summary.get('publish_ambiguous_unresolved')}"),
            Check("topics_hold_records", bool(mode_topics), f"topics with records: {', '.join(sorted(mode_topics)) or 'none'}"),
        ])
