"""The evidence writer: validate first, write base truth once, mirror to the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.contracts.registry import load_registry
from runtime.errors import EvidenceConflict, EvidenceInvalid
from runtime.evidence.writer import BundleTarget, EvidenceNotMirrored, EvidenceWriter
from runtime.store.local import FolderStore
from runtime.store.s3 import S3Store

RUN = "platform_20261123T120000Z"


@pytest.fixture
def writer(s3_client, bucket: str, tmp_path: Path) -> EvidenceWriter:  # type: ignore[no-untyped-def]
    registry = load_registry("local_parity")
    prefix = registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=RUN)
    return EvidenceWriter(registry, RUN, [
        BundleTarget(S3Store(bucket, client=s3_client), prefix),
        BundleTarget(FolderStore(tmp_path / "evidence"), ""),
    ])


def _run_started(writer: EvidenceWriter) -> dict:
    return {**writer.base_fields("P1", ["EVIDENCE_RUN_JSON_KEY"]), "started_at_utc": "2026-11-23T12:00:00Z"}


def test_valid_document_lands_in_s3_and_in_the_run_folder(writer: EvidenceWriter, s3_client, bucket, tmp_path) -> None:  # type: ignore[no-untyped-def]
    written = writer.write("RUN_STARTED_PATH_PATTERN", _run_started(writer))
    body = s3_client.get_object(Bucket=bucket, Key=f"evidence/runs/{RUN}/run_started.json")["Body"].read()
    assert json.loads(body)["platform_run_id"] == RUN
    assert (tmp_path / "evidence" / "run_started.json").read_bytes() == body
    assert len(written.uris) == 2


def test_document_missing_platform_run_id_is_refused_and_nothing_is_written(writer: EvidenceWriter, tmp_path) -> None:  # type: ignore[no-untyped-def]
    document = _run_started(writer)
    del document["platform_run_id"]
    with pytest.raises(EvidenceInvalid, match="platform_run_id"):
        writer.write("RUN_STARTED_PATH_PATTERN", document)
    assert not (tmp_path / "evidence" / "run_started.json").exists()


def test_document_of_another_run_is_refused(writer: EvidenceWriter) -> None:
    document = {**_run_started(writer), "platform_run_id": "platform_20200101T000000Z"}
    with pytest.raises(EvidenceInvalid, match="is not this run"):
        writer.write("RUN_STARTED_PATH_PATTERN", document)


def test_second_conflicting_write_of_base_truth_fails_and_keeps_the_first(writer: EvidenceWriter, tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer.write("RUN_STARTED_PATH_PATTERN", _run_started(writer))
    first = (tmp_path / "evidence" / "run_started.json").read_bytes()
    with pytest.raises(EvidenceConflict):
        writer.write("RUN_STARTED_PATH_PATTERN", {**_run_started(writer), "started_at_utc": "2026-11-23T13:00:00Z"})
    assert (tmp_path / "evidence" / "run_started.json").read_bytes() == first


def test_rewriting_identical_base_truth_is_a_no_op(writer: EvidenceWriter, s3_client, bucket, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = f"evidence/runs/{RUN}/run_started.json"
    first = _run_started(writer)
    writer.write("RUN_STARTED_PATH_PATTERN", first)
    stored = s3_client.get_object(Bucket=bucket, Key=key)
    stored_bytes = stored["Body"].read()
    folder_bytes = (tmp_path / "evidence" / "run_started.json").read_bytes()
    again = {**_run_started(writer), "written_at_utc": "2099-01-01T00:00:00Z"}  # only the volatile field differs
    assert again != first
    writer.write("RUN_STARTED_PATH_PATTERN", again)
    after = s3_client.get_object(Bucket=bucket, Key=key)
    assert after["Body"].read() == stored_bytes
    assert (after["ETag"], after["LastModified"], after.get("Metadata")) == (
        stored["ETag"], stored["LastModified"], stored.get("Metadata"))
    assert (tmp_path / "evidence" / "run_started.json").read_bytes() == folder_bytes
    assert json.loads(stored_bytes)["written_at_utc"] == first["written_at_utc"]


def _phase_record(writer: EvidenceWriter, state: str) -> dict:
    return {**writer.base_fields("P6", ["PHASE_RECORD_PATH_PATTERN"]), "name": "STREAMING_ACTIVE", "state": state,
            "attempt": 1, "started_at_utc": "2026-11-23T12:00:00Z", "evidence": []}


def test_a_lost_object_store_still_leaves_the_local_record_and_says_it_was_not_mirrored(
        writer: EvidenceWriter, s3_client, bucket, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3_client.delete_bucket(Bucket=bucket)  # what a restarted in-memory moto server looks like
    with pytest.raises(EvidenceNotMirrored) as info:
        writer.write("PHASE_RECORD_PATH_PATTERN", _phase_record(writer, "FAIL"), phase_id="P6")
    local = tmp_path / "evidence" / "phases" / "P6.json"
    assert json.loads(local.read_text())["state"] == "FAIL"
    assert info.value.code == "OBJECT_STORE_UNAVAILABLE"
    assert f"s3://{bucket}/" in info.value.message and str(local) in info.value.message
    assert [t.prefix for t in info.value.landed] == [""]
