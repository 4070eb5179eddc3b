"""The checker verifies order on the parts themselves, not only that the files exist."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from runtime.contracts.canonical import canonical_json
from runtime.contracts.registry import load_registry
from tests.runtime.oracle.helpers import client, full_lane, invoke, oracle_bucket, read_json

REG = load_registry("local_parity")


def test_out_of_order_part_with_consistent_receipt_fails_the_checker(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root))
    target = "s4_flow_truth_labels_6B"
    prefix = REG.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id=target)
    s3, bucket = client(oracle_settings), oracle_bucket(oracle_settings)
    part_key = prefix + "part-000000.parquet"
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=part_key)["Body"].read()))
    buf = io.BytesIO()
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), buf)
    data = buf.getvalue()
    s3.put_object(Bucket=bucket, Key=part_key, Body=data)
    # Make manifest and receipt describe the tampered part, so only the ordering check can catch it.
    manifest_key = REG.render("S3_STREAM_VIEW_MANIFEST_PATTERN", platform_run_id=run_id, output_id=target)
    receipt_key = REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=target)
    manifest = read_json(oracle_settings, manifest_key)
    receipt = read_json(oracle_settings, receipt_key)
    for doc in (manifest, receipt["output"]):
        doc["parts"][0]["size"] = len(data)
        doc["parts"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest_bytes = canonical_json(manifest)
    receipt["view_manifest_sha256"] = hashlib.sha256(manifest_bytes).hexdigest()
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_bytes)
    s3.put_object(Bucket=bucket, Key=receipt_key, Body=json.dumps(receipt).encode())
    r = invoke("check", "--platform-run-id", run_id, "--no-evidence")
    assert r.exit_code == 1 and "ORACLE_CHECKER_FAILED" in r.output
    report = read_json(oracle_settings, f"oracle/{run_id}/checker/failure_report.json")
    [failed] = [o for o in report["outputs"] if o["status"] == "FAIL"]
    assert failed["output_id"] == target and any("out of order" in p for p in failed["problems"])


def test_failed_check_writes_summary_but_no_checker_pass(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root))
    ev_bucket = REG.text("S3_EVIDENCE_BUCKET")
    root = REG.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=run_id)
    s3 = client(oracle_settings)
    s3.delete_object(Bucket=ev_bucket, Key=root + REG.text("CHECKER_PASS_PATH_PATTERN"))
    prefix = REG.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id="arrival_events_5B")
    s3.delete_object(Bucket=oracle_bucket(oracle_settings), Key=prefix + "part-000000.parquet")
    r = invoke("check", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "arrival_events_5B" in r.output
    summary = read_json(oracle_settings, root + REG.text("STREAM_SORT_SUMMARY_PATH_PATTERN"), bucket=ev_bucket)
    assert summary["all_pass"] is False
    assert [o["output_id"] for o in summary["outputs"] if o["status"] == "FAIL"] == ["arrival_events_5B"]
    listed = s3.list_objects_v2(Bucket=ev_bucket, Prefix=root + REG.text("CHECKER_PASS_PATH_PATTERN")).get("KeyCount")
    assert listed == 0
