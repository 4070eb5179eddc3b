"""What an operator sees: an error printed once, phase tables readable at 80 columns and in a
pipe (no word broken), every phase row named, phases in seed 003's order, flags without `<bool>`
in --help, and no `XDG_RUNTIME_DIR is not set` warning from the PostgreSQL binaries' package."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli import lifecycle
from controller.cli.main import app
from runtime.errors import PlatformError
from runtime.evidence.catalog import PHASE_NAMES
from runtime.evidence.writer import encode
from runtime.obs import report_html
from runtime.paths import REPO_ROOT
from tests.runtime.obs import samples

runner = CliRunner()
FIXTURE = REPO_ROOT / "tests/runtime/evidence/fixtures/bundle_p7"
RUN = json.loads((FIXTURE / "run.json").read_text())["platform_run_id"]
NARROW = {"COLUMNS": "80"}


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd with runs/fraud-platform/<run>/evidence = the real bundle, P4 turned into a FAIL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FP_HANDLES_REGISTRY", raising=False)
    root = tmp_path / "runs/fraud-platform"
    evidence = Path(shutil.copytree(FIXTURE, root / RUN / "evidence"))
    (root / "ACTIVE_RUN_ID").write_text(RUN + "\n")
    record = json.loads((evidence / "phases/P4.json").read_text())
    record.update(state="FAIL", evidence=[], error_code="IG_NOT_READY", message="GET /v1/ops/health answered 503",
                  next_step="fix IG (service, key, topics, bucket permissions) and rerun P4")
    (evidence / "phases/P4.json").write_text(json.dumps(record))
    return evidence


def _words_whole(output: str, words: list[str]) -> None:
    lines = output.splitlines()
    for word in words:
        assert any(word in line for line in lines), f"{word!r} is broken or missing in:\n{output}"


def test_status_at_80_columns_in_a_pipe_names_every_phase_and_breaks_no_word(run_folder: Path) -> None:
    result = runner.invoke(app, ["status"], env=NARROW)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    _words_whole(result.output, [f"{p} " for p in PHASE_NAMES] + list(PHASE_NAMES.values()))
    files = [p.name for p in run_folder.rglob("*.json") if p.parent.name != "phases" and p.name != "ig_ready.json"]  # P4 failed: no files
    _words_whole(result.output, files)
    for phase_id, name in (("P8", "RTDL_CAUGHT_UP"), ("P9", "DECISION_CHAIN_COMMITTED"), ("P10", "CASE_LABELS_COMMITTED"),
                           ("P11", "OBS_GOV_CLOSED"), ("P12", "TEARDOWN")):
        assert re.search(rf"^ ?{re.escape(phase_id)}\s+{name}\s", result.output, re.MULTILINE), result.output
    assert result.output.count("GET /v1/ops/health answered 503") == 1


def test_status_shows_each_stream_workers_health_lag_and_dead_letters_at_80_columns(run_folder: Path) -> None:
    health = {"health_state": "AMBER", "lag_total": 12, "counters": {"dead_letters_total": 3},
              "written_at_utc": "2026-11-23T12:00:05Z"}
    for directory in ("archive_writer", "online_feature_plane"):
        path = run_folder.parent / directory / "health/last_health.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**health, "health_state": "GREEN" if directory == "archive_writer" else "RED"}))
    result = runner.invoke(app, ["status"], env=NARROW)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    assert re.search(r"^ ?archive_writer\s+GREEN\s+12\s+3\s+12:00:05", result.output, re.MULTILINE), result.output
    assert re.search(r"^ ?ofp\s+RED\s+12\s+3", result.output, re.MULTILINE), result.output
    assert "ieg" not in result.output.split("component", 1)[1].split("pinned", 1)[0]  # no health document: no row


def _closed(evidence: Path, *, failed: dict[str, str] | None = None, bounded_gate: int | None = None) -> None:
    """A run P11 closed: P8..P11 PASS (long durations), its report and html, and its closure marker."""
    for phase_id, name in (("P4", "INGEST_READY"), ("P8", "RTDL_CAUGHT_UP"), ("P9", "DECISION_CHAIN_COMMITTED"),
                           ("P10", "CASE_LABELS_COMMITTED"), ("P11", "OBS_GOV_CLOSED")):
        record = json.loads((FIXTURE / "phases/P7.json").read_text())
        record.update(phase_id=phase_id, name=name, duration_s=12345.678, evidence=[])
        (evidence / f"phases/{phase_id}.json").write_text(json.dumps(record))
    report = samples.run_report()
    (evidence / "run_report.json").write_bytes(encode(report))
    report_html.write(report, evidence / "run_report.html")
    marker = samples.run_completed(samples.closure_documents())
    failed = failed or {}
    marker.update(platform_run_id=RUN, bounded_gate=bounded_gate, status="PARTIAL" if failed else "SPINE_GREEN",
                  conditions=[{**c, "ok": c["name"] not in failed, "detail": failed.get(c["name"])} for c in marker["conditions"]])
    (evidence / "run_completed.json").write_bytes(encode(marker))


def _at_80(output: str) -> None:
    assert max(len(line) for line in output.splitlines()) <= 80, output
    for phase_id, name in PHASE_NAMES.items():
        assert re.search(rf"^ ?{re.escape(phase_id)}\s+{name}\s", output, re.MULTILINE), output


def test_status_of_a_spine_green_run_says_so_with_the_report_paths_at_80_columns(run_folder: Path) -> None:
    _closed(run_folder)
    result = runner.invoke(app, ["status"], env=NARROW)
    assert result.exit_code == 0, result.output
    _at_80(result.output)
    assert re.search(r"^SPINE_GREEN \(full cap\) run closed at 13:00:00$", result.output, re.MULTILINE), result.output
    relative = run_folder.relative_to(run_folder.parents[3])
    assert f"report: {relative / 'run_report.json'}" in result.output.splitlines()
    assert f"html: {relative / 'run_report.html'}" in result.output.splitlines()
    assert "not met" not in result.output


def test_status_of_a_partial_run_names_each_condition_it_did_not_meet(run_folder: Path) -> None:
    _closed(run_folder, bounded_gate=200, failed={"df_health_green": "DF health AMBER",
                                                  "wsp_emitted_gate_per_output": "arrival_events_5B: emitted 150 of 200"})
    result = runner.invoke(app, ["status"], env=NARROW)
    assert result.exit_code == 0, result.output
    _at_80(result.output)
    assert "PARTIAL (Gate-200) run closed at 13:00:00" in result.output
    assert "not met df_health_green: DF health AMBER" in result.output
    assert "not met wsp_emitted_gate_per_output: arrival_events_5B: emitted 150 of 200" in result.output
    assert "SPINE_GREEN" not in result.output


def test_status_of_a_tampered_closure_marker_refuses_it_and_names_the_next_step(run_folder: Path) -> None:
    _closed(run_folder)
    marker = json.loads((run_folder / "run_completed.json").read_text())
    marker["status"] = "GREEN_ENOUGH"
    (run_folder / "run_completed.json").write_text(json.dumps(marker))
    result = runner.invoke(app, ["status"], env=NARROW)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "closure INVALID: run_completed.json breaks its schema: status:" in flat, result.output
    assert "next step: fp evidence validate" in flat
    assert "SPINE_GREEN run closed" not in flat


def test_a_failed_run_prints_its_error_once(run_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_run(registry, selection, *, gate, bus, progress, options):  # type: ignore[no-untyped-def]
        progress("P4", "INGEST_READY")
        raise PlatformError("GET /v1/ops/health answered 503", code="IG_NOT_READY",
                            next_step="fix IG (service, key, topics, bucket permissions) and rerun P4")

    monkeypatch.setattr(lifecycle, "dev_min_run_local", failing_run)
    result = runner.invoke(app, ["dev-min-run", "--to", "P7"], env=NARROW)
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert flat.count("IG_NOT_READY") == 1, result.output
    assert flat.count("rerun P4") == 1, result.output
    assert "INGEST_READY" in result.output and "FAIL" in result.output  # the table still shows the state


def test_validate_lists_phases_in_seed_order_with_names(run_folder: Path) -> None:
    result = runner.invoke(app, ["evidence", "validate", str(run_folder)], env=NARROW)
    phases = re.findall(r"^ ?(P\(-1\)|P\d+)\s", result.output, re.MULTILINE)
    assert phases == ["P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P12"], result.output
    assert "P12     TEARDOWN" in result.output or re.search(r"P12\s+TEARDOWN", result.output)


@pytest.mark.parametrize("argv", [["dev-min-run", "--help"], ["status", "--help"], ["evidence", "validate", "--help"]])
def test_help_shows_no_bool_for_flags(argv: list[str]) -> None:
    result = runner.invoke(app, argv, env=NARROW)
    assert result.exit_code == 0 and "--help" in result.output
    assert "<bool>" not in result.output


def test_runtime_help_shows_no_bool_for_flags() -> None:
    proc = subprocess.run([sys.executable, "-m", "runtime", "wsp", "run", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"}, cwd=REPO_ROOT, timeout=60, check=False)
    assert proc.returncode == 0 and "--restream" in proc.stdout
    assert "<bool>" not in proc.stdout


def test_postgres_binaries_are_found_without_a_runtime_dir_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = ("import controller.substrate.servers as s, os; s._pg_user(); print(s._pg_bin()); "
            "assert 'XDG_RUNTIME_DIR' not in os.environ")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "XDG_RUNTIME_DIR" not in proc.stderr
