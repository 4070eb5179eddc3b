"""P4 and P7 evidence of the ingest boundary, derived from durable state only.

- `write_ig_ready` (P4, ingest/ig_ready.json): health with the key, 401 without it, one smoke
  event admitted through IG (its eb_ref from the receipt) and the receipt batch object IG wrote.
- `write_receipt_summary` (P7): receipts by outcome and by event class from the append-only index;
  both add up to the attempts, checked before writing; unresolved PUBLISH_AMBIGUOUS counted.
- `write_offsets_snapshot` (P7): per topic/partition the first and last offset (Kafka) or
  sequence (Kinesis) through the BusAdmin port.
- `write_quarantine_summary` (P7): quarantined events by reason and the objects keeping them.
A check that fails raises IG_NOT_READY / RECEIPTS_INCOHERENT instead of writing a PASS-looking file.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from runtime.bus.port import BusAdmin, OffsetKind
from runtime.contracts.ids import event_id, utc_iso
from runtime.contracts.probes import INGEST_PROBE_PRODUCER
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence
from runtime.ig.domain import Outcome
from runtime.ig.store import AdmissionStore
from runtime.store.port import ObjectStore

SMOKE_PRODUCER = INGEST_PROBE_PRODUCER


class IgNotReady(PlatformError):
    """A P4 readiness check failed; ig_ready.json is not written."""

    code = "IG_NOT_READY"
    next_step = "fix IG (service, key, topics, bucket permissions) and rerun P4"


class ReceiptsIncoherent(PlatformError):
    """Receipt counts do not add up; the summary is not written."""

    code = "RECEIPTS_INCOHERENT"
    next_step = "inspect ig_receipts for the run; receipts are append-only, never edit them"


def event_topics(registry: Registry, classes: Collection[str] | None = None) -> list[str]:
    """The topics IG publishes to: of every event class of the registry, or of `classes` only."""
    return sorted({registry.topic(spec["topic"]).name for cls, spec in registry.mapping("EVENT_CLASS_MAP").items()
                   if classes is None or cls in classes})


def smoke_event(platform_run_id: str, scenario_run_id: str) -> dict[str, Any]:
    """A minimal envelope that satisfies the existing contracts (no new schema), recognisable by its producer."""
    ts = utc_iso()
    payload = {"arrival_id": f"ig_ready_smoke_{platform_run_id}", "ts_utc": ts, "session_id": "ig_ready_smoke",
               "customer_id": "ig_ready_smoke", "channel": "smoke", "ip_country": "GB"}
    return {"event_id": event_id("ig_ready_smoke", {"platform_run_id": platform_run_id}), "event_class": "context_arrival_events",
            "event_type": "context_arrival_events", "schema_version": "v1", "platform_run_id": platform_run_id,
            "scenario_run_id": scenario_run_id, "ts_utc": ts, "producer": SMOKE_PRODUCER, "payload": payload}


def write_ig_ready(evidence: EvidenceWriter, *, base_url: str, api_key: str, receipts_store: ObjectStore,
                   receipts_bucket: str, scenario_run_id: str, service_name: str, pid: int | None = None,
                   task_arns: list[str] | None = None, client: httpx.Client | None = None) -> WrittenEvidence:
    """Probe IG (auth boundary, health, publish smoke, S3 write) and write ingest/ig_ready.json."""
    reg = evidence.registry
    header = reg.text("IG_AUTH_HEADER_NAME")
    health_url = base_url.rstrip("/") + reg.text("IG_HEALTHCHECK_PATH")
    http = client or httpx.Client(timeout=30)
    try:
        unauth = http.get(health_url)
        if unauth.status_code != 401:
            raise IgNotReady(f"GET {health_url} without the key answered {unauth.status_code}, not 401")
        health = http.get(health_url, headers={header: api_key})
        if health.status_code != 200:
            raise IgNotReady(f"GET {health_url} with the key answered {health.status_code}")
        push = http.post(base_url.rstrip("/") + reg.text("IG_INGEST_PATH"), headers={header: api_key},
                         json=smoke_event(evidence.platform_run_id, scenario_run_id))
        if push.status_code != 200:
            raise IgNotReady(f"the publish smoke push answered {push.status_code}: {push.text[:200]}")
        result = push.json()["results"][0]
        receipt = result.get("original_receipt") or result["receipt"]
        if result["outcome"] not in (Outcome.ADMIT.value, Outcome.DUPLICATE.value) or not receipt.get("eb_ref"):
            raise IgNotReady(f"the publish smoke event was {result['outcome']}, not admitted: {result.get('error')}")
        state = http.get(health_url, headers={header: api_key}).json()["state"]
    except httpx.HTTPError as e:
        raise IgNotReady(f"IG at {base_url} unreachable: {e}") from e
    finally:
        if client is None:
            http.close()
    batch_key = _find_batch(receipts_store, reg.render("IG_RECEIPTS_PREFIX_PATTERN", platform_run_id=evidence.platform_run_id),
                            receipt["receipt_id"])
    eb = receipt["eb_ref"]
    doc = {
        **evidence.base_fields("P4", ["IG_HEALTHCHECK_PATH", "IG_AUTH_HEADER_NAME", "SSM_IG_API_KEY_PATH", "IG_INGEST_PATH",
                                      "IG_RECEIPTS_PREFIX_PATTERN", "S3_EVIDENCE_BUCKET", "FP_BUS_CONTEXT_ARRIVAL_EVENTS_V1"]),
        "scenario_run_id": scenario_run_id,
        "service": {"name": service_name, "base_url": base_url, "task_arns": task_arns or [], "pid": pid},
        "health": {"status_code": 200, "state": state},
        "auth_check": {"unauthenticated_status": 401, "passed": True},
        "publish_smoke": {"topic": eb["topic"], "partition": eb["partition"], "offset": eb["offset"],
                          "offset_kind": eb["offset_kind"], "receipt_id": receipt["receipt_id"], "outcome": result["outcome"]},
        "s3_write_smoke": {"bucket": receipts_bucket, "key": batch_key, "ok": True},
    }
    return evidence.write("IG_READY_PATH_PATTERN", doc)


def _find_batch(store: ObjectStore, prefix: str, receipt_id: str) -> str:
    """The receipts batch object holding `receipt_id` (newest first; P4 has only a few)."""
    keys = sorted((o.key for o in store.list(prefix)), reverse=True)[:50]
    for key in keys:
        if receipt_id.encode() in store.get(key):
            return key
    raise IgNotReady(f"no receipts batch object under {store.uri(prefix)} holds the smoke receipt {receipt_id}")


def write_receipt_summary(evidence: EvidenceWriter, store: AdmissionStore) -> WrittenEvidence:
    """ingest/receipt_summary.json from the receipts index; outcome and class counts must both equal attempts."""
    run_id = evidence.platform_run_id
    by_outcome_raw, by_class, attempts = store.outcome_counts(run_id)
    by_outcome = {o.value: int(by_outcome_raw.get(o.value, 0)) for o in Outcome}
    if sum(by_outcome.values()) != attempts or sum(by_class.values()) != attempts:
        raise ReceiptsIncoherent(f"receipts of {run_id}: outcomes {sum(by_outcome.values())}, classes "
                                 f"{sum(by_class.values())}, attempts {attempts}")
    unresolved = store.unresolved_ambiguous(run_id)
    doc = {
        **evidence.base_fields("P7", ["IG_RECEIPTS_PREFIX_PATTERN", "S3_EVIDENCE_BUCKET", "RECEIPT_SUMMARY_PATH_PATTERN"]),
        "counts": {"by_outcome": by_outcome, "by_event_class": {k: int(v) for k, v in sorted(by_class.items())}},
        "attempts": attempts,
        "publish_ambiguous_unresolved": unresolved,
        "gate": "PASS" if unresolved == 0 and by_outcome["ADMIT"] > 0 else "FAIL",
    }
    return evidence.write("RECEIPT_SUMMARY_PATH_PATTERN", doc)


def write_offsets_snapshot(evidence: EvidenceWriter, admin: BusAdmin, offset_kind: OffsetKind,
                           topics: list[str] | None = None) -> WrittenEvidence:
    """ingest/kafka_offsets_snapshot.json: first and last offset/sequence per topic partition or shard."""
    captured = utc_iso()
    ranges: list[dict[str, Any]] = []
    empty: list[dict[str, Any]] = []
    for topic in topics or event_topics(evidence.registry):
        for r in admin.ranges(topic):
            if r.start_offset is None or r.end_offset is None:
                empty.append({"topic": r.topic, "partition": r.partition})
                continue
            ranges.append({"topic": r.topic, "partition": r.partition, "start_offset": r.start_offset,
                           "end_offset": r.end_offset, "offset_kind": offset_kind, "captured_at_utc": captured})
    doc = {
        **evidence.base_fields("P7", ["KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN", "EVENT_CLASS_MAP"]),
        "offset_ranges": ranges,
        "empty_partitions": empty,
        "captured_at_utc": captured,
    }
    return evidence.write("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN", doc)


def write_quarantine_summary(evidence: EvidenceWriter, store: AdmissionStore, quarantine_bucket: str) -> WrittenEvidence:
    """ingest/quarantine_summary.json: quarantined events by reason and the batch objects keeping their payloads."""
    by_reason, objects = store.quarantine_counts(evidence.platform_run_id)
    doc = {
        **evidence.base_fields("P7", ["S3_QUARANTINE_BUCKET", "S3_QUARANTINE_PREFIX_PATTERN", "QUARANTINE_INDEX_PATH_PATTERN"]),
        "counts": {"by_reason": {k: int(v) for k, v in sorted(by_reason.items())}, "total": int(sum(by_reason.values()))},
        "bucket": quarantine_bucket,
        "objects": objects,
    }
    return evidence.write("QUARANTINE_INDEX_PATH_PATTERN", doc)
