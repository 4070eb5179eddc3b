"""`validate_bundle` on a real bundle (P(-1)..P7 at gate 3, then P12, captured from the spine by
tests/support/capture_bundle.py): the clean bundle passes, and each way an attacker or an
accident can tamper with it is named, on the file that is wrong and on no good one.

A careful tamperer recomputes the sha256 the phase record holds (`_edit(..., reseal=True)`), so
the digest check alone cannot catch these: the phase order, the vouching records and the
arithmetic each file promises must.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.contracts.canonical import sha256_hex
from runtime.contracts.registry import load_registry
from runtime.evidence.bundle import BundleReport, validate_bundle
from runtime.evidence.writer import encode
from runtime.store.local import FolderStore

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_p7"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "bundle"))


def _validate(path: Path) -> BundleReport:
    return validate_bundle(FolderStore(path), "", load_registry("local_parity"))


def _edit(bundle: Path, relative: str, change: Callable[[dict[str, Any]], None], reseal: bool = True) -> None:
    """Change one file; with `reseal`, also put its new sha256 into the phase record that lists it."""
    path = bundle / relative
    document = json.loads(path.read_text())
    change(document)
    path.write_bytes(encode(document))
    if not reseal:
        return
    for record_path in (bundle / "phases").glob("*.json"):
        record = json.loads(record_path.read_text())
        for item in record.get("evidence", []):
            if item["path"] == relative:
                item["sha256"] = sha256_hex(path.read_bytes())
                record_path.write_bytes(encode(record))


def _blamed(report: BundleReport) -> set[str]:
    return {v.path for v in report.violations}


def test_real_bundle_validates_with_every_phase_in_order(bundle: Path) -> None:
    report = _validate(bundle)
    assert report.ok, report.violations
    assert list(report.phases) == ["P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P12"]


def test_deleted_phase_record_with_an_edited_count_is_caught(bundle: Path) -> None:
    (bundle / "phases/P7.json").unlink()
    _edit(bundle, "ingest/receipt_summary.json", lambda d: d["counts"]["by_outcome"].update(ADMIT=500), reseal=False)
    report = _validate(bundle)
    messages = [str(v) for v in report.violations]
    assert any(m.startswith("ingest/receipt_summary.json: belongs to P7 but phases/P7.json is missing") for m in messages)
    assert any("receipt outcomes add up to 500, not to attempts 13" in m for m in messages)
    assert "phases/P1.json" not in _blamed(report)


def test_deleted_record_of_an_earlier_phase_is_required_by_the_later_ones(bundle: Path) -> None:
    (bundle / "phases/P3.json").unlink()
    messages = [str(v) for v in _validate(bundle).violations]
    assert "phases/P3.json: missing: P4 has a record (PASS) and depends on P3" in messages
    assert any(m.startswith("oracle/stream_sort_summary.json: belongs to P3") for m in messages)


def test_pass_after_a_fail_is_refused(bundle: Path) -> None:
    _edit(bundle, "phases/P4.json", lambda d: d.update(state="FAIL", error_code="IG_NOT_READY", evidence=[]))
    report = _validate(bundle)
    messages = [str(v) for v in report.violations]
    for later in ("P5", "P6", "P7"):
        assert f"phases/{later}.json: says PASS but P4 before it is FAIL: a phase starts only after every earlier one PASSed" in messages
    assert "phases/P3.json" not in _blamed(report) and "phases/P12.json" not in _blamed(report)


def test_zero_admitted_under_a_pass_gate_is_caught_after_the_digest_was_recomputed(bundle: Path) -> None:
    _edit(bundle, "ingest/receipt_summary.json", lambda d: d["counts"]["by_outcome"].update(ADMIT=0))
    messages = [str(v) for v in _validate(bundle).violations]
    assert not any("sha256 differs" in m for m in messages)
    assert "ingest/receipt_summary.json: receipt outcomes add up to 0, not to attempts 13" in messages
    assert any(m.startswith("ingest/receipt_summary.json: gate PASS needs ADMIT > 0") for m in messages)


def test_counts_that_add_up_by_outcome_but_not_by_class_are_caught(bundle: Path) -> None:
    def shift(d: dict[str, Any]) -> None:
        d["counts"]["by_outcome"].update(ADMIT=12, DUPLICATE=1)
        d["counts"]["by_event_class"]["traffic_fraud"] = 9

    _edit(bundle, "ingest/receipt_summary.json", shift)
    messages = [str(v) for v in _validate(bundle).violations]
    assert messages == ["ingest/receipt_summary.json: receipts by event class add up to 19, not to attempts 13"]


def test_offset_range_ending_before_it_starts_is_caught(bundle: Path) -> None:
    _edit(bundle, "ingest/kafka_offsets_snapshot.json", lambda d: d["offset_ranges"][0].update(start_offset="9"))
    messages = [str(v) for v in _validate(bundle).violations]
    assert any(m.startswith("ingest/kafka_offsets_snapshot.json: fp.bus.context.arrival_entities.v1[shardId-000000000000]: "
                            "range starts at 9 after its end 3") for m in messages)


def test_emitted_counts_must_meet_the_pinned_gate(bundle: Path) -> None:
    def more(d: dict[str, Any]) -> None:
        d["per_output"][0]["emitted"] = 7
        d["totals"]["emitted"] = 16

    _edit(bundle, "wsp/wsp_summary.json", more)
    messages = [str(v) for v in _validate(bundle).violations]
    assert any("s3_event_stream_with_fraud_6B emitted 7, but the pinned gate 3 makes it 3" in m for m in messages)


def test_wsp_totals_must_be_the_sum_of_the_outputs(bundle: Path) -> None:
    _edit(bundle, "wsp/wsp_summary.json", lambda d: d["totals"].update(sends=40))
    assert [str(v) for v in _validate(bundle).violations] == ["wsp/wsp_summary.json: totals.sends is 40, the outputs add up to 4"]


def test_phase_record_under_another_gate_than_the_pinned_one_is_caught(bundle: Path) -> None:
    _edit(bundle, "phases/P6.json", lambda d: d.update(bounded_gate=20000))
    assert [str(v) for v in _validate(bundle).violations] == [
        "phases/P6.json: ran under bounded_gate 20000, but the run pinned 3"]


def test_pass_with_a_failed_gate_check_is_caught(bundle: Path) -> None:
    _edit(bundle, "phases/P7.json", lambda d: d["gate"][1].update(ok=False))
    messages = [str(v) for v in _validate(bundle).violations]
    assert any(m.startswith("phases/P7.json: claims PASS with failed gate check(s): ") for m in messages)


def test_file_added_after_its_phase_passed_is_caught(bundle: Path) -> None:
    _edit(bundle, "phases/P1.json", lambda d: d.update(evidence=[]))
    (bundle / "run_started.json").write_bytes(encode({**json.loads((bundle / "run.json").read_text()), "phase_id": "P1"}))
    messages = [str(v) for v in _validate(bundle).violations]
    assert any(m.startswith("run.json: P1 PASSed without recording this file's sha256") for m in messages)


def test_one_stray_empty_object_is_blamed_and_no_good_file(bundle: Path) -> None:
    (bundle / "ingest/stray.json").write_text("{}")
    report = _validate(bundle)
    assert _blamed(report) == {"ingest/stray.json"}
    assert report.platform_run_id == json.loads((bundle / "run.json").read_text())["platform_run_id"]


def test_one_changed_run_id_blames_that_file_only(bundle: Path) -> None:
    _edit(bundle, "wsp/wsp_summary.json", lambda d: d.update(platform_run_id="platform_20200101T000000Z"))
    report = _validate(bundle)
    assert _blamed(report) == {"wsp/wsp_summary.json"}
    assert any("names platform_run_id 'platform_20200101T000000Z', but 25 of 26 files name" in v.message for v in report.violations)


def test_one_changed_scenario_run_id_blames_that_file_only(bundle: Path) -> None:
    _edit(bundle, "sr/sr_pass.json", lambda d: d.update(scenario_run_id="0" * 32))
    assert _blamed(_validate(bundle)) == {"sr/sr_pass.json"}
