"""The whole lane through the CLI against the moto server: generate -> sync -> pack -> sort -> check."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pyarrow.parquet as pq
from typer.testing import CliRunner

from runtime.oracle.cli import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def snapshot(settings, prefix: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    client = boto3.client("s3", endpoint_url=settings.object_store_endpoint, region_name="us-east-1")
    bucket = settings.registry.text("S3_ORACLE_BUCKET")
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["ETag"]
    return out


def test_full_lane_passes_and_second_run_changes_nothing(oracle_settings, run_id: str, engine_root: Path) -> None:
    for args in (["sync", "--root", str(engine_root)], ["pack"], ["check-strict"], ["stream-sort"], ["check"]):
        r = invoke(*args, "--platform-run-id", run_id)
        assert r.exit_code == 0, (args, r.output)
    assert "oracle checker PASS" in r.output
    before = snapshot(oracle_settings, f"oracle/{run_id}/")
    for args in (["sync", "--root", str(engine_root)], ["pack"], ["stream-sort"], ["check"]):
        r = invoke(*args, "--platform-run-id", run_id)
        assert r.exit_code == 0, (args, r.output)
    assert "SKIPPED_VALID_RECEIPT" in invoke("stream-sort", "--platform-run-id", run_id).output
    after = snapshot(oracle_settings, f"oracle/{run_id}/")
    after.pop(f"oracle/{run_id}/checker/failure_report.json", None)
    assert before == after
