"""SR end to end on the embedded substrate: gates, lease rules, READY on the control topic, evidence."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_tansu
from runtime.bus import factory
from runtime.bus.kafka import KafkaAdmin, KafkaPublisher
from runtime.bus.port import EbRef, OutboundRecord
from runtime.contracts.ids import scenario_run_id
from runtime.db.migrate import connect
from runtime.errors import PlatformError, PublishAmbiguous
from runtime.evidence.writer import schema_violations
from runtime.settings import Settings
from runtime.sr.domain import GateFailed, SrInputInvalid
from runtime.sr.lease import LeaseBusy, LeaseStore
from runtime.sr.runner import run_scenario_runner
from tests.runtime.bus.conftest import bus_settings
from tests.runtime.sr.conftest import evidence_writer, write_pack


def _ready_messages(settings: Settings, platform_run_id: str, *, expect: int, timeout_s: float) -> list[tuple[dict, object]]:
    control = settings.registry.topic("FP_BUS_CONTROL_V1").name
    consumer = factory.consumer(settings, [control], f"sr-test-{uuid.uuid4().hex[:8]}", platform_run_id)
    try:
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < expect and time.monotonic() < deadline:
            got += consumer.poll(10, 2.0)
        if expect == 0:
            got += consumer.poll(10, 2.0)
        return [(json.loads(r.value), r) for r in got]
    finally:
        consumer.close()


def test_happy_path_publishes_ready_and_writes_valid_evidence(any_bus_settings: Settings, run_id: str, equivalence_key: str) -> None:
    settings = any_bus_settings
    write_pack(settings, run_id)
    writer = evidence_writer(settings, run_id)
    lines: list[str] = []
    result = run_scenario_runner(settings, run_id, equivalence_key, writer, progress=lines.append)

    assert result.scenario_run_id == scenario_run_id(equivalence_key)
    assert all(g.ok for g in result.gates) and len(result.gates) == 1 + len(settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS"))
    assert any("READY published" in line for line in lines)

    [(message, record)] = _ready_messages(settings, run_id, expect=1, timeout_s=40)
    assert message == {
        "platform_run_id": run_id,
        "scenario_run_id": result.scenario_run_id,
        "facts_view_ref": result.facts_view_ref,
        "oracle_pack_ref": result.oracle_pack_ref,
        "equivalence_key": equivalence_key,
        "published_at_utc": result.published_at_utc,
    }
    assert record.key == run_id  # type: ignore[attr-defined]
    assert record.eb_ref == result.ready_ref  # type: ignore[attr-defined]

    sr_pass = writer.read("SR_PASS_PATH_PATTERN")
    receipt = writer.read("READY_PUBLISH_RECEIPT_PATH_PATTERN")
    assert sr_pass is not None and receipt is not None
    assert schema_violations("evidence/sr_pass.schema.json", sr_pass) == []
    assert schema_violations("evidence/ready_publish_receipt.schema.json", receipt) == []
    assert (receipt["topic"], receipt["partition"], receipt["offset"], receipt["offset_kind"]) == (
        result.ready_ref.topic, result.ready_ref.partition, result.ready_ref.offset, result.ready_ref.offset_kind)
    assert receipt["offset_kind"] == ("kafka_offset" if settings.bus == "kafka" else "kinesis_sequence")

    evidence = settings.bucket("S3_EVIDENCE_BUCKET")
    facts_key = result.facts_view_ref.split("/", 3)[3]
    assert facts_key.startswith(settings.registry.render("SR_ARTIFACTS_PREFIX_PATTERN", platform_run_id=run_id))
    facts = json.loads(evidence.get(facts_key))
    assert facts["output_ids"] == settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS")
    assert set(facts["stream_view_prefixes"]) == set(facts["output_ids"])
    assert facts["oracle_pack_ref"] == result.oracle_pack_ref


def test_second_sr_with_the_same_key_while_the_lease_is_held_is_lease_busy(kinesis_settings: Settings, run_id: str,
                                                                         equivalence_key: str) -> None:
    write_pack(kinesis_settings, run_id)
    writer = evidence_writer(kinesis_settings, run_id)
    run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)
    with pytest.raises(LeaseBusy) as caught:
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)
    assert caught.value.code == "LEASE_BUSY" and "lease-clear" in caught.value.next_step
    assert len(_ready_messages(kinesis_settings, run_id, expect=2, timeout_s=6)) == 1


def test_lease_is_reusable_after_expiry(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    write_pack(kinesis_settings, run_id)
    writer = evidence_writer(kinesis_settings, run_id)
    run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer, ttl_seconds=1)
    time.sleep(1.5)
    second = run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer, ttl_seconds=1)
    assert second.scenario_run_id == scenario_run_id(equivalence_key)
    assert len(_ready_messages(kinesis_settings, run_id, expect=2, timeout_s=10)) == 2


def test_lease_is_reusable_after_an_explicit_clear(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    write_pack(kinesis_settings, run_id)
    writer = evidence_writer(kinesis_settings, run_id)
    run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)
    store = LeaseStore(kinesis_settings.db_dsn or "")
    assert store.current(scenario_run_id(equivalence_key)) is not None
    assert store.clear(scenario_run_id(equivalence_key)) is True
    assert store.clear(scenario_run_id(equivalence_key)) is False
    run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)


def _assert_nothing_published(settings: Settings, run_id: str, equivalence_key: str) -> None:
    writer = evidence_writer(settings, run_id)
    assert writer.read("SR_PASS_PATH_PATTERN") is None
    assert writer.read("READY_PUBLISH_RECEIPT_PATH_PATTERN") is None
    assert _ready_messages(settings, run_id, expect=0, timeout_s=3) == []
    assert LeaseStore(settings.db_dsn or "").current(scenario_run_id(equivalence_key)) is None  # released on failure
    prefix = settings.registry.render("SR_ARTIFACTS_PREFIX_PATTERN", platform_run_id=run_id)
    assert list(settings.bucket("S3_EVIDENCE_BUCKET").list(prefix)) == []


def test_missing_seal_publishes_nothing_and_names_the_gate(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    pack = write_pack(kinesis_settings, run_id)
    pack.store.delete(pack.seal_key())
    with pytest.raises(GateFailed) as caught:
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, evidence_writer(kinesis_settings, run_id))
    assert caught.value.code == "SR_GATE_FAILED"
    assert "oracle_seal" in caught.value.message and "stream_view:" not in caught.value.message
    _assert_nothing_published(kinesis_settings, run_id, equivalence_key)


def test_missing_receipt_of_one_output_publishes_nothing(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    pack = write_pack(kinesis_settings, run_id)
    victim = kinesis_settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS")[3]
    pack.store.delete(pack.receipt_key(victim))
    with pytest.raises(GateFailed) as caught:
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, evidence_writer(kinesis_settings, run_id))
    assert f"stream_view:{victim}" in caught.value.message and "_stream_sort_receipt.json does not exist" in caught.value.message
    _assert_nothing_published(kinesis_settings, run_id, equivalence_key)


def test_part_listed_in_manifest_but_absent_fails_the_gate(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    pack = write_pack(kinesis_settings, run_id)
    victim = kinesis_settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS")[0]
    pack.store.delete(pack.part_key(victim, "part-000001.parquet"))
    with pytest.raises(GateFailed, match=r"part-000001\.parquet"):
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, evidence_writer(kinesis_settings, run_id))
    _assert_nothing_published(kinesis_settings, run_id, equivalence_key)


def test_a_failed_gate_leaves_the_key_free_for_a_fixed_rerun(kinesis_settings: Settings, run_id: str, equivalence_key: str) -> None:
    pack = write_pack(kinesis_settings, run_id)
    seal = pack.store.get(pack.seal_key())
    pack.store.delete(pack.seal_key())
    with pytest.raises(GateFailed):
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, evidence_writer(kinesis_settings, run_id))
    pack.store.put(pack.seal_key(), seal)
    result = run_scenario_runner(kinesis_settings, run_id, equivalence_key, evidence_writer(kinesis_settings, run_id))
    assert all(g.ok for g in result.gates)


@pytest.mark.parametrize(
    ("platform_run_id", "key", "fragment"),
    [
        ("platform_20260101T000000Z", "", "empty"),
        ("platform_20260101T000000Z", "   ", "empty"),
        ("platform_20260101T000000Z", " padded", "whitespace"),
        ("platform_20260101T000000Z", "k" * 257, "at most 256"),
        ("platform_2026", "k", "malformed"),
        ("", "k", "malformed"),
    ],
)
def test_bad_input_is_refused_before_anything_is_touched(kinesis_settings: Settings, platform_run_id: str, key: str,
                                                         fragment: str) -> None:
    writer = evidence_writer(kinesis_settings, "platform_20260101T000000Z")
    with pytest.raises(SrInputInvalid, match=fragment) as caught:
        run_scenario_runner(kinesis_settings, platform_run_id, key, writer)
    assert caught.value.code == "SR_INPUT_INVALID"
    with connect(kinesis_settings.db_dsn or "") as conn:
        assert conn.execute("SELECT count(*) FROM sr_run_leases WHERE equivalence_key = %s", (key,)).fetchone() == (0,)


def test_ambiguous_ready_keeps_the_lease_and_writes_no_evidence(kinesis_settings: Settings, run_id: str, equivalence_key: str,
                                                                tmp_path: Path) -> None:
    write_pack(kinesis_settings, run_id)
    proc = start_tansu("127.0.0.1", free_port(), tmp_path / "tansu")
    bootstrap = f"127.0.0.1:{proc.port}"
    stopped = False
    try:
        settings = bus_settings("kafka", kafka_bootstrap=bootstrap, moto_endpoint=kinesis_settings.object_store_endpoint,
                                postgres_dsn=kinesis_settings.db_dsn)
        control = settings.registry.topic("FP_BUS_CONTROL_V1")
        KafkaAdmin(bootstrap).ensure_topic(control.name, control.partitions, control.retention_hours)
        publisher = KafkaPublisher(bootstrap, delivery_timeout_ms=2000)
        assert isinstance(publisher.publish([OutboundRecord(control.name, "warm-up", b"{}")])[0], EbRef)
        stop_pid(proc.pid, proc.argv)
        stopped = True
        writer = evidence_writer(settings, run_id)
        with pytest.raises(PublishAmbiguous) as caught:
            run_scenario_runner(settings, run_id, equivalence_key, writer, publisher=publisher)
        assert caught.value.code == "PUBLISH_AMBIGUOUS" and "control topic" in caught.value.next_step
        assert LeaseStore(settings.db_dsn or "").current(scenario_run_id(equivalence_key)) is not None
        assert writer.read("SR_PASS_PATH_PATTERN") is None
        assert writer.read("READY_PUBLISH_RECEIPT_PATH_PATTERN") is None
    finally:
        if not stopped:
            stop_pid(proc.pid, proc.argv)


def test_changed_oracle_under_a_pinned_scenario_is_a_facts_conflict(kinesis_settings: Settings, run_id: str,
                                                                   equivalence_key: str) -> None:
    pack = write_pack(kinesis_settings, run_id)
    writer = evidence_writer(kinesis_settings, run_id)
    first = run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)
    LeaseStore(kinesis_settings.db_dsn or "").clear(first.scenario_run_id)
    same = run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)  # identical facts: accepted
    assert same.facts_view_ref == first.facts_view_ref
    LeaseStore(kinesis_settings.db_dsn or "").clear(first.scenario_run_id)
    victim = kinesis_settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS")[0]
    receipt = json.loads(pack.store.get(pack.receipt_key(victim)))
    pack.store.put(pack.receipt_key(victim), json.dumps(receipt | {"rebuilt": True}).encode())
    with pytest.raises(PlatformError) as caught:
        run_scenario_runner(kinesis_settings, run_id, equivalence_key, writer)
    assert caught.value.code == "SR_FACTS_CONFLICT"
    assert len(_ready_messages(kinesis_settings, run_id, expect=3, timeout_s=6)) == 2
