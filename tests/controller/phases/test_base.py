"""`execute`: the phase record always lands in the run folder, also when the object store is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.phases.base import Phase, PhaseOutcome, RunContext, execute
from controller.runs import RunFolders
from runtime.contracts.registry import load_registry
from runtime.errors import ObjectStoreUnavailable, PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore
from runtime.store.s3 import S3Store

RUN = "platform_20261123T120000Z"


class _LosesTheObjectStore(Phase):
    """A phase during which the object store goes away (the moto server restarted: buckets gone)."""

    phase_id = "P6"
    name = "STREAMING_ACTIVE"

    def __init__(self, s3_client, bucket: str):  # type: ignore[no-untyped-def]
        self.s3, self.bucket = s3_client, bucket

    def run(self, ctx: RunContext) -> PhaseOutcome:
        for item in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        self.s3.delete_bucket(Bucket=self.bucket)
        raise ObjectStoreUnavailable(f"GET s3://{self.bucket}/x failed: NoSuchBucket")


def _context(tmp_path: Path, s3_client, bucket: str) -> RunContext:  # type: ignore[no-untyped-def]
    registry = load_registry("local_parity")
    folders = RunFolders(tmp_path / "runs")
    prefix = registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=RUN)
    writer = EvidenceWriter(registry, RUN, [BundleTarget(S3Store(bucket, client=s3_client), prefix),
                                            BundleTarget(FolderStore(folders.evidence_dir(RUN)), "")])
    return RunContext(registry, RUN, folders, writer, None, {"gate": 20})


def test_a_phase_that_loses_the_object_store_leaves_a_local_fail_record_saying_so(tmp_path: Path, s3_client, bucket) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(tmp_path, s3_client, bucket)
    with pytest.raises(PlatformError) as info:
        execute(_LosesTheObjectStore(s3_client, bucket), ctx)
    assert info.value.code == "OBJECT_STORE_UNAVAILABLE"
    record = json.loads((ctx.folders.evidence_dir(RUN) / "phases/P6.json").read_text())
    assert record["state"] == "FAIL" and record["error_code"] == "OBJECT_STORE_UNAVAILABLE"
    assert record["bounded_gate"] == 20
    assert f"s3://{bucket}/" in record["evidence_mirror_error"]


def test_a_phase_started_without_its_object_store_fails_with_a_local_record(tmp_path: Path, s3_client, bucket) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(tmp_path, s3_client, bucket)
    s3_client.delete_bucket(Bucket=bucket)
    with pytest.raises(PlatformError) as info:
        execute(_LosesTheObjectStore(s3_client, "never-reached"), ctx)
    assert info.value.code == "OBJECT_STORE_UNAVAILABLE"
    record = json.loads((ctx.folders.evidence_dir(RUN) / "phases/P6.json").read_text())
    assert record["state"] == "FAIL" and record["error_code"] == "OBJECT_STORE_UNAVAILABLE"
    assert record["evidence_mirror_error"]
