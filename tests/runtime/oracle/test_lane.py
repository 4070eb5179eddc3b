"""The controller-facing lane function, and run-independent receipts for the same seed."""

from __future__ import annotations

from pathlib import Path

from runtime.contracts.registry import load_registry
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.oracle.duck import SortKnobs
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.lane import run_oracle_lane
from runtime.store.local import FolderStore
from tests.runtime.oracle.helpers import read_json

REG = load_registry("local_parity")
CFG = EngineConfig(seed=5, scale=300, fraud_rate=0.05, files_per_output=2, days=1)


def test_run_oracle_lane_generates_if_needed_and_passes(oracle_settings, run_id: str, tmp_path: Path) -> None:
    writer = EvidenceWriter(REG, run_id, [BundleTarget(FolderStore(tmp_path / "bundle"), "")])
    result = run_oracle_lane(oracle_settings, run_id, tmp_path / "engine", writer, config=CFG, knobs=SortKnobs(memory_limit="256MB"))
    assert result.passed and result.engine is not None and result.engine.generated and result.pack.newly_sealed
    assert sorted(c.output_id for c in result.checks) == sorted(REG.names("ORACLE_REQUIRED_OUTPUT_IDS"))
    for key in ("SEED_SNAPSHOT_PATH_PATTERN", "STREAM_SORT_SUMMARY_PATH_PATTERN", "CHECKER_PASS_PATH_PATTERN"):
        assert (tmp_path / "bundle" / REG.text(key)).exists()
    again = run_oracle_lane(oracle_settings, run_id, tmp_path / "engine", writer, config=CFG)
    assert again.passed and again.engine is not None and not again.engine.generated and not again.pack.newly_sealed
    assert {o.status for o in again.sort.outcomes} == {"SKIPPED_VALID_RECEIPT"}
    seeded_elsewhere = run_oracle_lane(oracle_settings, run_id, None, writer)
    assert seeded_elsewhere.passed and seeded_elsewhere.sync is None


def test_same_seed_gives_identical_receipt_content_hashes_across_runs(oracle_settings, run_id: str, tmp_path: Path) -> None:
    second = run_id[:-7] + ("000000Z" if not run_id.endswith("000000Z") else "000001Z")
    hashes = []
    for n, rid in enumerate((run_id, second)):
        run_oracle_lane(oracle_settings, rid, tmp_path / f"engine{n}", None, config=CFG)
        per_output = {}
        for output_id in REG.names("ORACLE_REQUIRED_OUTPUT_IDS"):
            receipt = read_json(oracle_settings, REG.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=rid, output_id=output_id))
            per_output[output_id] = (receipt["content_hash"], receipt["output"]["fingerprint"])
        hashes.append(per_output)
    assert hashes[0] == hashes[1]


def test_lane_without_an_engine_run_anywhere_fails_closed(oracle_settings, run_id: str, tmp_path: Path) -> None:
    import pytest

    from runtime.errors import PlatformError

    with pytest.raises(PlatformError) as e:
        run_oracle_lane(oracle_settings, run_id, None, None)
    assert e.value.code == "ENGINE_RUN_MISSING"
    with pytest.raises(PlatformError) as e:
        run_oracle_lane(oracle_settings, run_id, tmp_path / "empty", None)
    assert e.value.code == "ENGINE_RUN_MISSING"
