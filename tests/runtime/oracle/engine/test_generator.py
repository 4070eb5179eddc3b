"""The synthetic engine: deterministic bytes, unsorted files, schema-true traffic, exact fraud truth."""

from __future__ import annotations

import hashlib
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from runtime.contracts.registry import load_registry
from runtime.contracts.schemas import compiled_validator
from runtime.errors import PlatformError
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import MARKER, generate

REG = load_registry("local_parity")
CFG = EngineConfig(seed=11, scale=3000, fraud_rate=0.05, files_per_output=3, days=2)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _table(root: Path, output_id: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((root / output_id).glob("part-*.parquet"))])


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "a"
    generate(CFG, root)
    return root


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(run_root: Path, tmp_path: Path) -> None:
    again = generate(CFG, tmp_path / "b")
    assert again.generated
    assert _digests(run_root) == _digests(tmp_path / "b")
    other = EngineConfig(seed=12, scale=3000, fraud_rate=0.05, files_per_output=3, days=2)
    generate(other, tmp_path / "c")
    assert (
        _digests(tmp_path / "c")["s3_event_stream_with_fraud_6B/part-00000.parquet"]
        != _digests(run_root)["s3_event_stream_with_fraud_6B/part-00000.parquet"]
    )


def test_every_output_has_several_unsorted_files(run_root: Path) -> None:
    ids = REG.names("ORACLE_TRAFFIC_OUTPUT_IDS") + REG.names("ORACLE_CONTEXT_OUTPUT_IDS") + REG.names("ORACLE_TRUTH_OUTPUT_IDS")
    for output_id in ids:
        files = sorted((run_root / output_id).glob("part-*.parquet"))
        assert len(files) == 3, output_id
    ts = pq.read_table(sorted((run_root / "s3_event_stream_with_fraud_6B").glob("*.parquet"))[0]).column("ts_utc").to_pylist()
    assert ts != sorted(ts)


def test_traffic_and_context_rows_satisfy_their_payload_schemas(run_root: Path) -> None:
    for event_class, entry in REG.mapping("EVENT_CLASS_MAP").items():
        table = _table(run_root, entry["output_id"])
        assert table.schema.field("ts_utc").type == pa.timestamp("us", tz="UTC")
        validator = compiled_validator(f"events/payloads/{event_class}.schema.json")
        for row in table.slice(0, 200).to_pylist():
            row["ts_utc"] = row["ts_utc"].astimezone(UTC).isoformat().replace("+00:00", "Z")
            errors = [e.message for e in validator.iter_errors(row)]
            assert errors == [], (event_class, errors)


def test_truth_labels_are_exact_and_cover_every_flow(run_root: Path) -> None:
    anchors = _table(run_root, "s3_flow_anchor_with_fraud_6B")
    truth = _table(run_root, "s4_flow_truth_labels_6B")
    labels = _table(run_root, "s4_event_labels_6B")
    traffic = _table(run_root, "s3_event_stream_with_fraud_6B")
    baseline = _table(run_root, "s2_event_stream_baseline_6B")
    assert sorted(anchors.column("flow_id").to_pylist()) == sorted(truth.column("flow_id").to_pylist())
    assert labels.num_rows == traffic.num_rows
    fraud_flows = set(pc.filter(truth.column("flow_id"), truth.column("is_fraud")).to_pylist())
    baseline_flows = set(baseline.column("flow_id").to_pylist())
    assert fraud_flows and not (fraud_flows & baseline_flows)  # the overlay adds fraud, the baseline has none
    assert set(traffic.column("flow_id").to_pylist()) - baseline_flows == fraud_flows
    share = len(fraud_flows) / truth.num_rows
    assert 0.03 < share < 0.07
    patterns = set(truth.column("fraud_pattern").to_pylist())
    assert patterns == {"none", "card_testing", "account_takeover", "amount_anomaly", "mule_transfer"}
    by_flow = {r["flow_id"]: r for r in truth.to_pylist()}
    for r in labels.to_pylist():
        assert r["is_fraud"] == by_flow[r["flow_id"]]["is_fraud"]
        assert r["fraud_pattern"] == by_flow[r["flow_id"]]["fraud_pattern"]


def test_fraud_patterns_look_like_their_names(run_root: Path) -> None:
    traffic = _table(run_root, "s3_event_stream_with_fraud_6B").to_pylist()
    truth = {r["flow_id"]: r["fraud_pattern"] for r in _table(run_root, "s4_flow_truth_labels_6B").to_pylist()}
    home_devices: dict[str, set[str]] = {}
    for r in traffic:
        if truth[r["flow_id"]] == "none":
            home_devices.setdefault(r["customer_id"], set()).add(r["device_id"])
    legit_amounts = sorted(r["amount"] for r in traffic if truth[r["flow_id"]] == "none")
    median = legit_amounts[len(legit_amounts) // 2]
    ct = [r for r in traffic if truth[r["flow_id"]] == "card_testing"]
    assert ct and max(r["amount"] for r in ct) <= 3.0
    ato = [r for r in traffic if truth[r["flow_id"]] == "account_takeover"]
    assert ato and all(r["device_id"] not in home_devices.get(r["customer_id"], set()) for r in ato)
    anomaly = [r["amount"] for r in traffic if truth[r["flow_id"]] == "amount_anomaly"]
    assert anomaly and sorted(anomaly)[len(anomaly) // 2] > 5 * median
    mule = [r for r in traffic if truth[r["flow_id"]] == "mule_transfer"]
    assert mule and all(r["channel"] == "p2p" and r["amount"] >= 100 for r in mule)


def test_bank_view_is_not_the_truth(run_root: Path) -> None:
    bank = _table(run_root, "s4_flow_bank_view_6B").to_pylist()
    truth = {r["flow_id"]: r["is_fraud"] for r in _table(run_root, "s4_flow_truth_labels_6B").to_pylist()}
    confirmed = [b for b in bank if b["bank_label"] == "FRAUD_CONFIRMED"]
    assert confirmed and all(truth[b["flow_id"]] for b in confirmed)
    assert any(truth[b["flow_id"]] and b["bank_label"] == "NO_CLAIM" for b in bank)  # missed fraud exists
    assert all(b["reported_at_utc"] is None for b in bank if b["bank_label"] == "NO_CLAIM")


def test_generate_is_a_noop_for_the_same_config_and_refuses_others(run_root: Path, tmp_path: Path) -> None:
    before = _digests(run_root)
    assert generate(CFG, run_root).generated is False
    assert _digests(run_root) == before
    with pytest.raises(PlatformError) as e:
        generate(EngineConfig(seed=99, scale=3000), run_root)
    assert e.value.code == "ENGINE_RUN_CONFLICT"
    partial = tmp_path / "partial"
    (partial / "arrival_events_5B").mkdir(parents=True)
    (partial / "arrival_events_5B" / "part-00000.parquet").write_bytes(b"x")
    with pytest.raises(PlatformError) as e:
        generate(CFG, partial)
    assert e.value.code == "ENGINE_RUN_PARTIAL"
    assert (run_root / MARKER).exists()
