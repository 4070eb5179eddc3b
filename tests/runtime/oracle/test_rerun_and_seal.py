"""Per-output rerun, fail-closed partial views, and the write-once seal."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.contracts.registry import load_registry
from tests.runtime.oracle.helpers import client, full_lane, invoke, oracle_bucket, read_json, snapshot

REG = load_registry("local_parity")
REQUIRED = REG.names("ORACLE_REQUIRED_OUTPUT_IDS")


def _view(run_id: str, output_id: str) -> str:
    return REG.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id=output_id)


def test_deleting_one_receipt_resorts_only_that_output(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root))
    target = "s4_event_labels_6B"
    others_before = {k: v for k, v in snapshot(oracle_settings, f"oracle/{run_id}/").items() if f"output_id={target}/" not in k}
    receipt_key = REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=target)
    old = read_json(oracle_settings, receipt_key)
    client(oracle_settings).delete_object(Bucket=oracle_bucket(oracle_settings), Key=receipt_key)
    assert invoke("check", "--platform-run-id", run_id).exit_code == 1
    r = invoke("stream-sort", "--platform-run-id", run_id)
    assert r.exit_code == 0, r.output
    assert f"{target}: SORTED" in r.output
    assert r.output.count("SKIPPED_VALID_RECEIPT") == len(REQUIRED) - 1
    new = read_json(oracle_settings, receipt_key)
    assert new["content_hash"] == old["content_hash"]
    others_after = {k: v for k, v in snapshot(oracle_settings, f"oracle/{run_id}/").items() if f"output_id={target}/" not in k}
    others_after.pop(f"oracle/{run_id}/checker/failure_report.json", None)
    others_before.pop(f"oracle/{run_id}/checker/failure_report.json", None)
    assert others_after == others_before
    assert invoke("check", "--platform-run-id", run_id).exit_code == 0


def test_stray_part_without_receipt_is_partial_exists(oracle_settings, run_id: str, engine_root: Path) -> None:
    for args in (["sync", "--root", str(engine_root)], ["pack"]):
        assert invoke(*args, "--platform-run-id", run_id).exit_code == 0
    target = "s3_event_stream_with_fraud_6B"
    stray = _view(run_id, target) + "part-000007.parquet"
    client(oracle_settings).put_object(Bucket=oracle_bucket(oracle_settings), Key=stray, Body=b"leftover")
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", target)
    assert r.exit_code == 1
    assert "STREAM_VIEW_PARTIAL_EXISTS" in r.output and "delete ONLY" in r.output
    keys = snapshot(oracle_settings, _view(run_id, target))
    assert list(keys) == [stray]  # nothing else written, no receipt
    # The way out: delete this output's prefix, re-run for this output only.
    client(oracle_settings).delete_object(Bucket=oracle_bucket(oracle_settings), Key=stray)
    assert invoke("stream-sort", "--platform-run-id", run_id, "--output-id", target).exit_code == 0


def test_stray_part_next_to_a_receipt_is_a_conflict(oracle_settings, run_id: str, engine_root: Path) -> None:
    full_lane(run_id, str(engine_root))
    target = "s1_session_index_6B"
    client(oracle_settings).put_object(Bucket=oracle_bucket(oracle_settings), Key=_view(run_id, target) + "part-000099.parquet", Body=b"x")
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", target)
    assert r.exit_code == 1 and "STREAM_VIEW_CONFLICT" in r.output
    r = invoke("check", "--platform-run-id", run_id, "--no-evidence")
    assert r.exit_code == 1 and "ORACLE_CHECKER_FAILED" in r.output
    report = read_json(oracle_settings, f"oracle/{run_id}/checker/failure_report.json")
    failed = [o["output_id"] for o in report["outputs"] if o["status"] == "FAIL"]
    assert failed == [target]


def _rewrite_first_file(root: Path, output_id: str) -> None:
    path = sorted((root / output_id).glob("part-*.parquet"))[0]
    table = pq.read_table(path)
    pq.write_table(table.slice(0, max(1, table.num_rows - 1)), path)


def test_altered_engine_file_after_seal_is_manifest_mismatch(oracle_settings, run_id: str, engine_root: Path) -> None:
    for args in (["sync", "--root", str(engine_root)], ["pack"]):
        assert invoke(*args, "--platform-run-id", run_id).exit_code == 0
    seal_key = REG.render("ORACLE_PACK_PREFIX_PATTERN", platform_run_id=run_id) + "_SEALED.json"
    seal_before = read_json(oracle_settings, seal_key)
    _rewrite_first_file(engine_root, "arrival_events_5B")
    r = invoke("sync", "--root", str(engine_root), "--platform-run-id", run_id)
    assert r.exit_code == 0 and "1 uploaded" in r.output
    r = invoke("pack", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "MANIFEST_MISMATCH" in r.output
    r = invoke("check-strict", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "SEAL_VERIFY_FAILED" in r.output and "arrival_events_5B" in r.output
    assert read_json(oracle_settings, seal_key) == seal_before  # the seal was never rewritten


def test_extra_object_under_engine_prefix_fails_check_strict(oracle_settings, run_id: str, engine_root: Path) -> None:
    for args in (["sync", "--root", str(engine_root)], ["pack"]):
        assert invoke(*args, "--platform-run-id", run_id).exit_code == 0
    key = REG.render("ORACLE_ENGINE_RUN_PREFIX_PATTERN", platform_run_id=run_id) + "arrival_events_5B/part-00099.parquet"
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": [1]}), buf)
    client(oracle_settings).put_object(Bucket=oracle_bucket(oracle_settings), Key=key, Body=buf.getvalue().to_pybytes())
    r = invoke("check-strict", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "unsealed object" in r.output


def test_receipt_and_a_part_both_missing_is_partial_exists(oracle_settings, run_id: str, engine_root: Path) -> None:
    for args in (["sync", "--root", str(engine_root)], ["pack"]):
        assert invoke(*args, "--platform-run-id", run_id).exit_code == 0
    target = "arrival_events_5B"
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", target, "--chunk-days", "1", "--threads", "1",
               "--memory-limit", "128MB", "--temp-dir", str(engine_root.parent / "spill"), "--max-temp-size", "1GiB",
               "--no-preserve-order")
    assert r.exit_code == 0, r.output
    receipt = read_json(oracle_settings, REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=target))
    assert receipt["knobs"]["chunk_days"] == 1 and receipt["knobs"]["preserve_order"] is False
    assert len(receipt["output"]["parts"]) >= 2
    s3, bucket = client(oracle_settings), oracle_bucket(oracle_settings)
    s3.delete_object(Bucket=bucket, Key=REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=target))
    s3.delete_object(Bucket=bucket, Key=_view(run_id, target) + receipt["output"]["parts"][-1]["name"])
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", target)
    assert r.exit_code == 1 and "STREAM_VIEW_PARTIAL_EXISTS" in r.output
