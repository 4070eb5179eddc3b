"""`validate_bundle` finds every kind of violation and passes a clean bundle (the real bundle of
fixtures/bundle_p7; tampering with it in detail: test_bundle_tampering.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence.bundle import validate_bundle
from runtime.evidence.writer import BundleTarget, EvidenceWriter, encode
from runtime.store.local import FolderStore

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_p7"
RUN = json.loads((FIXTURE / "run.json").read_text())["platform_run_id"]


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[EvidenceWriter, Path]:
    path = Path(shutil.copytree(FIXTURE, tmp_path / "bundle"))
    return EvidenceWriter(load_registry("local_parity"), RUN, [BundleTarget(FolderStore(path), "")]), path


def _validate(path: Path):  # type: ignore[no-untyped-def]
    return validate_bundle(FolderStore(path), "", load_registry("local_parity"))


def test_clean_bundle_has_no_violation(bundle) -> None:  # type: ignore[no-untyped-def]
    report = _validate(bundle[1])
    assert report.ok, report.violations
    assert report.platform_run_id == RUN
    assert report.phases == {p: "PASS" for p in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P12")}


def test_file_changed_after_pass_is_a_digest_violation(bundle) -> None:  # type: ignore[no-untyped-def]
    path = bundle[1] / "run.json"
    document = json.loads(path.read_text())
    document["git_sha"] = "1234567"
    path.write_bytes(encode(document))
    assert any("sha256 differs" in v.message for v in _validate(bundle[1]).violations)


def test_config_digest_mismatch_is_a_violation(bundle) -> None:  # type: ignore[no-untyped-def]
    path = bundle[1] / "run.json"
    document = json.loads(path.read_text())
    document["config"]["bus"] = "kafka"
    path.write_bytes(encode(document))
    assert any("config_digest does not match" in v.message for v in _validate(bundle[1]).violations)


def test_pass_without_required_file_is_a_violation(bundle) -> None:  # type: ignore[no-untyped-def]
    (bundle[1] / "run.json").unlink()
    messages = [v.message for v in _validate(bundle[1]).violations]
    assert any("P1 claims PASS but run.json is missing" in m for m in messages)


def test_file_of_another_run_is_a_violation(bundle) -> None:  # type: ignore[no-untyped-def]
    other = {**bundle[0].base_fields("P1", []), "platform_run_id": "platform_20200101T000000Z", "started_at_utc": "2026-11-23T12:00:00Z"}
    (bundle[1] / "run_started.json").write_bytes(encode(other))
    violations = _validate(bundle[1]).violations
    assert {v.path for v in violations} == {"run_started.json"}
    assert any("this file is not of this run" in v.message for v in violations)


def test_malformed_json_and_schema_breaks_are_violations(bundle) -> None:  # type: ignore[no-untyped-def]
    (bundle[1] / "phases").mkdir(exist_ok=True)
    (bundle[1] / "phases/P2.json").write_text("{not json")
    (bundle[1] / "run_started.json").write_bytes(encode({"platform_run_id": RUN}))
    messages = [str(v) for v in _validate(bundle[1]).violations]
    assert any("phases/P2.json: not valid JSON" in m for m in messages)
    assert any(m.startswith("run_started.json: schema:") for m in messages)


def test_spine_green_claim_needs_every_phase(bundle) -> None:  # type: ignore[no-untyped-def]
    writer, path = bundle
    conditions = [{"name": n, "ok": n != "df_health_green", "detail": None} for n in (
        "environment_conformance_pass", "df_health_green", "al_health_green_with_parity",
        "dla_health_green_lineage_resolved", "wsp_emitted_gate_per_output", "every_phase_passed")]
    scenario_run_id = json.loads((path / "sr/sr_pass.json").read_text())["scenario_run_id"]
    writer.write("RUN_CLOSURE_MARKER_PATH_PATTERN", {**writer.base_fields("P11", []), "status": "SPINE_GREEN",
                                                     "scenario_run_id": scenario_run_id,
                                                     "completed_at_utc": "2026-11-23T13:00:00Z", "phases_passed": ["P1"],
                                                     "conditions": conditions,
                                                     "closure_files": [{"path": "run_report.json", "sha256": "0" * 64}]})
    messages = [v.message for v in _validate(path).violations]
    assert any("claims SPINE_GREEN with failed condition(s): df_health_green" in m for m in messages)
    assert any("claims SPINE_GREEN but P8 has no PASS record" in m for m in messages)
    # A bounded run may be Spine Green (seed 001 11.1 is a 200-event closeout) when WSP emitted the
    # gate for every output; one output short of it breaks the claim.
    assert not any("bounded at 3" in m for m in messages)
    wsp_path = path / "wsp/wsp_summary.json"
    wsp = json.loads(wsp_path.read_text())
    wsp["per_output"][0]["emitted"] = 2
    wsp_path.write_text(json.dumps(wsp))
    messages = [v.message for v in _validate(path).violations]
    assert any("bounded at 3 per output, but WSP s3_event_stream_with_fraud_6B emitted 2" in m for m in messages)


def test_empty_folder_is_a_violation(tmp_path: Path) -> None:
    assert [v.message for v in _validate(tmp_path).violations] == ["no evidence files found"]
