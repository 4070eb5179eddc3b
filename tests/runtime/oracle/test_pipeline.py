"""The whole lane through the CLI against the moto server: generate -> sync -> pack -> sort -> check."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb

from runtime.contracts.registry import load_registry
from runtime.evidence.writer import schema_violations
from tests.runtime.oracle.helpers import client, full_lane, invoke, read_json, snapshot

REG = load_registry("local_parity")
REQUIRED = REG.names("ORACLE_REQUIRED_OUTPUT_IDS")


def test_full_lane_passes_and_second_run_changes_nothing(oracle_settings, run_id: str, engine_root: Path) -> None:
    r = invoke("check-strict", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "ORACLE_NOT_SEALED" in r.output
    full_lane(run_id, str(engine_root))
    before = snapshot(oracle_settings, f"oracle/{run_id}/")
    assert invoke("check-strict", "--platform-run-id", run_id).exit_code == 0
    r = invoke("sync", "--root", str(engine_root), "--platform-run-id", run_id)
    assert "0 uploaded" in r.output
    r = invoke("pack", "--platform-run-id", run_id)
    assert "no-op" in r.output
    r = invoke("stream-sort", "--platform-run-id", run_id)
    assert r.exit_code == 0 and r.output.count("SKIPPED_VALID_RECEIPT") == len(REQUIRED)
    assert invoke("check", "--platform-run-id", run_id).exit_code == 0
    assert snapshot(oracle_settings, f"oracle/{run_id}/") == before


def test_stream_view_layout_is_ordered_and_receipted(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root), "--chunk-days", "1")
    keys = snapshot(oracle_settings, f"oracle/{run_id}/stream_view/ts_utc/")
    for output_id in REQUIRED:
        prefix = f"oracle/{run_id}/stream_view/ts_utc/output_id={output_id}/"
        assert f"{prefix}_stream_view_manifest.json" in keys
        receipt = read_json(oracle_settings, f"{prefix}_stream_sort_receipt.json")
        assert receipt["sort_keys"] == REG.mapping("ORACLE_SORT_KEY_BY_OUTPUT_ID")[output_id]
        assert receipt["input"]["rows"] == receipt["output"]["rows"] > 0
        assert receipt["input"]["content_hash"] == receipt["output"]["content_hash"]
        assert {"validate", "sort", "verify", "total"} <= set(receipt["timings_seconds"])
        parts = sorted(k for k in keys if k.startswith(prefix + "part-"))
        assert [p[len(prefix) :] for p in parts] == [p["name"] for p in receipt["output"]["parts"]]
    # ts-keyed outputs are chunked by day (2 simulated days -> >= 2 parts), flow-keyed ones are not.
    fraud_prefix = f"oracle/{run_id}/stream_view/ts_utc/output_id=s3_event_stream_with_fraud_6B/"
    fraud_parts = sorted(k for k in keys if k.startswith(fraud_prefix + "part-"))
    assert len(fraud_parts) >= 2
    # Read the parts back in order with DuckDB on local copies: ts_utc never decreases.
    s3 = client(oracle_settings)
    local = []
    for i, key in enumerate(fraud_parts):
        path = engine_root.parent / f"p{i}.parquet"
        path.write_bytes(s3.get_object(Bucket=REG.text("S3_ORACLE_BUCKET"), Key=key)["Body"].read())
        local.append(str(path))
    ts = [
        row[0]
        for row in duckdb.sql(
            f"SELECT epoch_us(ts_utc) FROM read_parquet({local!r}, filename=true, file_row_number=true) ORDER BY filename, file_row_number"
        ).fetchall()
    ]
    assert ts == sorted(ts) and len(ts) > 100


def test_evidence_files_are_written_and_valid(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root))
    bucket = REG.text("S3_EVIDENCE_BUCKET")
    root = REG.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=run_id)
    for path_key, schema in (
        ("SEED_SNAPSHOT_PATH_PATTERN", "seed_snapshot"),
        ("STREAM_SORT_SUMMARY_PATH_PATTERN", "stream_sort_summary"),
        ("CHECKER_PASS_PATH_PATTERN", "checker_pass"),
    ):
        doc = read_json(oracle_settings, root + REG.text(path_key), bucket=bucket)
        assert schema_violations(f"evidence/{schema}.schema.json", doc) == []
        assert doc["platform_run_id"] == run_id and doc["phase_id"] == "P3"
    checker = read_json(oracle_settings, root + REG.text("CHECKER_PASS_PATH_PATTERN"), bucket=bucket)
    assert checker["status"] == "PASS" and sorted(o["output_id"] for o in checker["outputs"]) == sorted(REQUIRED)
    seed = read_json(oracle_settings, root + REG.text("SEED_SNAPSHOT_PATH_PATTERN"), bucket=bucket)
    assert seed["objects"] == seed["uploaded"] and seed["seed"] == 7


def test_key_range_parts_keep_global_order_for_flow_keyed_outputs(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root), "--rows-per-part", "40")
    for output_id in ("s4_event_labels_6B", "s3_event_stream_with_fraud_6B"):
        receipt = read_json(oracle_settings, REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=output_id))
        parts = receipt["output"]["parts"]
        assert len(parts) >= 5 and sum(p["rows"] for p in parts) == receipt["input"]["rows"]
        # key ranges: each part's smallest first-key is above the previous part's largest
        assert all(a["first_key_max"] < b["first_key_min"] for a, b in itertools.pairwise(parts))
    r = invoke("stream-sort", "--platform-run-id", run_id, "--memory-limit", "lots")
    assert r.exit_code == 1 and "SORT_KNOB_INVALID" in r.output
