"""Shared helpers of the oracle tests: invoke the CLI, list and read oracle-bucket objects."""

from __future__ import annotations

import json
from typing import Any

import boto3
from typer.testing import CliRunner, Result

from runtime.oracle.cli import app

runner = CliRunner()


def invoke(*args: str) -> Result:
    """Run `python -m runtime oracle <args>` in-process."""
    return runner.invoke(app, list(args), catch_exceptions=False)


def client(settings: Any) -> Any:
    """A boto3 S3 client on the settings' endpoint."""
    return boto3.client("s3", endpoint_url=settings.object_store_endpoint, region_name="us-east-1")


def oracle_bucket(settings: Any) -> str:
    """The registry's oracle bucket."""
    return str(settings.registry.text("S3_ORACLE_BUCKET"))


def snapshot(settings: Any, prefix: str) -> dict[str, str]:
    """key -> etag of every object under `prefix` in the oracle bucket."""
    out = {}
    for page in client(settings).get_paginator("list_objects_v2").paginate(Bucket=oracle_bucket(settings), Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["ETag"]
    return out


def read_json(settings: Any, key: str, bucket: str | None = None) -> dict[str, Any]:
    """A JSON object from the oracle (or given) bucket."""
    body = client(settings).get_object(Bucket=bucket or oracle_bucket(settings), Key=key)["Body"].read()
    return dict(json.loads(body))


def full_lane(run_id: str, root: str, *extra_sort: str) -> None:
    """sync + pack + stream-sort + check, asserting each step succeeds."""
    for args in (["sync", "--root", root], ["pack"], ["stream-sort", *extra_sort], ["check"]):
        r = invoke(*args, "--platform-run-id", run_id)
        assert r.exit_code == 0, (args, r.output)
