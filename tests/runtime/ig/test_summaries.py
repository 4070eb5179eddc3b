"""P4/P7 evidence written from durable state, against a served IG and the real bus."""

from __future__ import annotations

import json

import pytest

from controller.substrate.processes import free_port
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.ig.app import create_app
from runtime.ig.store import AdmissionStore
from runtime.ig.summaries import (
    IgNotReady,
    write_ig_ready,
    write_offsets_snapshot,
    write_quarantine_summary,
    write_receipt_summary,
)
from tests.runtime.ig.conftest import API_KEY, push
from tests.support.events import SCENARIO, envelope
from tests.support.ig_server import ThreadServer
from tests.support.kafka_bus import RealKafkaAdmin


@pytest.fixture
def evidence(ig_settings, store, run_id) -> EvidenceWriter:
    return EvidenceWriter(ig_settings.registry, run_id, [BundleTarget(store, f"evidence/runs/{run_id}/")])


def test_ig_ready_records_health_auth_publish_and_s3_smoke(ig_settings, publisher, store, evidence, run_id, bucket):
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with ThreadServer(app, free_port()) as server:
        written = write_ig_ready(evidence, base_url=server.url, api_key=API_KEY, receipts_store=store, receipts_bucket=bucket,
                                 scenario_run_id=SCENARIO, service_name="ig", pid=None)
    doc = json.loads(store.get(f"evidence/runs/{run_id}/{written.relative_path}"))
    assert doc["auth_check"] == {"unauthenticated_status": 401, "passed": True}
    assert doc["health"]["state"] == "GREEN"
    assert doc["publish_smoke"]["offset_kind"] == "kafka_offset" and isinstance(doc["publish_smoke"]["offset"], int)
    assert doc["s3_write_smoke"]["key"].startswith(f"platform/{run_id}/ig/receipts/")


def test_ig_ready_fails_closed_when_auth_is_wrong(ig_settings, publisher, store, evidence, bucket):
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with ThreadServer(app, free_port()) as server, pytest.raises(IgNotReady):
        write_ig_ready(evidence, base_url=server.url, api_key="wrong-key-0123456789", receipts_store=store,
                       receipts_bucket=bucket, scenario_run_id=SCENARIO, service_name="ig")
    assert list(store.list("evidence/")) == []


def test_p7_summaries_add_up(client, ig_settings, migrated_dsn, evidence, store, run_id, kafka_bootstrap, bus_topics, bucket):
    events = [envelope(run_id, n) for n in range(6)] + [envelope(run_id, n, "context_arrival_entities") for n in range(3)]
    push(client, {"events": events})
    push(client, {"events": events[:4]})  # 4 DUPLICATE
    bad = envelope(run_id, 50)
    bad["payload"].pop("amount")
    changed = envelope(run_id, 0)
    changed["payload"]["amount"] = 0.5
    push(client, {"events": [bad, changed]})  # 1 QUARANTINE, 1 ANOMALY
    admission = AdmissionStore(migrated_dsn)
    admission.open()
    try:
        write_receipt_summary(evidence, admission)
        write_quarantine_summary(evidence, admission, bucket)
    finally:
        admission.close()
    write_offsets_snapshot(evidence, RealKafkaAdmin(kafka_bootstrap), "kafka_offset",
                           [bus_topics["traffic_fraud"], bus_topics["context_arrival_entities"]])
    root = f"evidence/runs/{run_id}/ingest/"
    receipts = json.loads(store.get(root + "receipt_summary.json"))
    assert receipts["counts"]["by_outcome"] == {"ADMIT": 9, "DUPLICATE": 4, "QUARANTINE": 1, "ANOMALY": 1,
                                                "PUBLISH_AMBIGUOUS": 0}
    assert receipts["attempts"] == 15 == sum(receipts["counts"]["by_event_class"].values())
    assert receipts["gate"] == "PASS"
    quarantine = json.loads(store.get(root + "quarantine_summary.json"))
    assert quarantine["counts"]["by_reason"] == {"PAYLOAD_HASH_MISMATCH": 1, "PAYLOAD_INVALID": 1}
    assert all(store.exists(k) for k in quarantine["objects"])
    offsets = json.loads(store.get(root + "kafka_offsets_snapshot.json"))
    assert {r["topic"] for r in offsets["offset_ranges"]} == {bus_topics["traffic_fraud"], bus_topics["context_arrival_entities"]}
