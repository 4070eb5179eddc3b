"""The ingest boundary's P4 and P7 checks as job functions, run where IG and its database are
reachable (next to the laptop's substrate locally, inside the VPC as the reporter task in dev_min).

`ready_check` waits for IG to answer, then proves the auth boundary, health, a publish smoke and
the receipt write (ingest/ig_ready.json). `commit_summaries` derives the P7 files from the receipts
index, the quarantine index and the bus (receipt_summary, quarantine_summary, offsets snapshot).
Both write only into the run's bundle in the evidence bucket; the controller reads it back there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from runtime.bus.factory import admin
from runtime.bus.port import OffsetKind
from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence, run_bundle
from runtime.ig.settings import ig_base_url, read_ig_api_key
from runtime.ig.store import AdmissionStore
from runtime.ig.summaries import write_ig_ready, write_offsets_snapshot, write_quarantine_summary, write_receipt_summary
from runtime.settings import Settings


def wait_until_answering(url: str, timeout_s: float = 60.0) -> None:
    """Block until IG answers HTTP at all (any status), or fail with IG_NOT_ANSWERING."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError as e:
            if time.monotonic() >= deadline:
                raise PlatformError(f"IG does not answer at {url} after {timeout_s:.0f}s: {e}", code="IG_NOT_ANSWERING",
                                    next_step="read IG's log (its pack's logs folder, or the IG service's log group)") from e
            time.sleep(0.25)


def ready_check(settings: Settings, platform_run_id: str, scenario_run_id: str, *, service_name: str,
                pid: int | None = None, task_arns: list[str] | None = None, wait_s: float = 60.0) -> WrittenEvidence:
    """P4 from IG's side of the network: wait, probe, write ig_ready.json (nothing on failure)."""
    key_var = settings.registry.text("ENVVAR_IG_API_KEY")
    api_key = read_ig_api_key(settings)
    if not api_key:
        raise PlatformError(f"no IG API key in {key_var} or at SSM_IG_API_KEY_PATH", code="IG_KEY_MISSING",
                            next_step="re-run `fp dev-min-up` (bootstrap writes the key; the demo stack injects it)")
    base_url = ig_base_url(settings)
    wait_until_answering(base_url.rstrip("/") + settings.registry.text("IG_HEALTHCHECK_PATH"), wait_s)
    writer = EvidenceWriter(settings.registry, platform_run_id, [run_bundle(settings, platform_run_id)])
    return write_ig_ready(writer, base_url=base_url, api_key=api_key, receipts_store=settings.bucket("S3_EVIDENCE_BUCKET"),
                          receipts_bucket=settings.registry.text("S3_EVIDENCE_BUCKET"), scenario_run_id=scenario_run_id,
                          service_name=service_name, pid=pid, task_arns=task_arns)


@dataclass(frozen=True)
class CommitSummaries:
    """The three P7 files, as written."""

    receipts: WrittenEvidence
    quarantine: WrittenEvidence
    offsets: WrittenEvidence


def commit_summaries(settings: Settings, platform_run_id: str) -> CommitSummaries:
    """P7's evidence from durable state: the receipts and quarantine indexes, then the bus offsets."""
    if not settings.db_dsn:
        raise PlatformError(f"{settings.registry.text('ENVVAR_DB_DSN')} is not set", code="DB_DSN_MISSING",
                            next_step="run the job with the database DSN (locally `fp dev-min-up`; the demo stack injects it)")
    writer = EvidenceWriter(settings.registry, platform_run_id, [run_bundle(settings, platform_run_id)])
    store = AdmissionStore(settings.db_dsn)
    store.open()
    try:
        receipts = write_receipt_summary(writer, store)
        quarantine = write_quarantine_summary(writer, store, settings.registry.text("S3_QUARANTINE_BUCKET"))
    finally:
        store.close()
    offset_kind: OffsetKind = "kafka_offset" if settings.bus == "kafka" else "kinesis_sequence"
    offsets = write_offsets_snapshot(writer, admin(settings), offset_kind)
    return CommitSummaries(receipts, quarantine, offsets)

