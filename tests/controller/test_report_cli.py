"""`fp report`: the summary of a run's report and its HTML path; a clear error when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from runtime.evidence.writer import encode
from runtime.obs import report_html
from tests.runtime.obs import samples

runner = CliRunner()
NARROW = {"COLUMNS": "80"}


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd with runs/fraud-platform/<run>/evidence, the run active, no report yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FP_HANDLES_REGISTRY", raising=False)
    root = tmp_path / "runs/fraud-platform"
    evidence = root / samples.RUN / "evidence"
    evidence.mkdir(parents=True)
    (root / "ACTIVE_RUN_ID").write_text(samples.RUN + "\n")
    return evidence


def test_report_prints_the_summary_and_the_html_path(run_folder: Path) -> None:
    report = samples.run_report()
    (run_folder / "run_report.json").write_bytes(encode(report))
    report_html.write(report, run_folder / "run_report.html")
    result = runner.invoke(app, ["report"], env=NARROW)
    assert result.exit_code == 0, result.output
    q = report["decision_quality"]
    for shown in (samples.RUN, "PARTIAL", "12 of 12", report_html.ratio(q["flow"]["precision"]),
                  report_html.ratio(q["flow"]["recall"]), "card_testing recall", "anomalies"):
        assert shown in result.output, shown
    assert str(run_folder / "run_report.html") in result.output.replace("\n", "")
    assert max(len(line) for line in result.output.splitlines() if not line.startswith(("report:", "html:"))) <= 80


def test_report_of_a_named_run_says_when_the_html_is_missing(run_folder: Path) -> None:
    (run_folder / "run_report.json").write_bytes(encode(samples.run_report()))
    result = runner.invoke(app, ["report", samples.RUN], env=NARROW)
    assert result.exit_code == 0, result.output
    assert "html: not written yet" in result.output


def test_a_run_without_a_report_is_a_clear_error(run_folder: Path) -> None:
    result = runner.invoke(app, ["report"], env=NARROW)
    assert result.exit_code == 1
    assert "RUN_REPORT_MISSING" in result.output and "P11" in result.output


def test_an_unknown_run_is_a_clear_error(run_folder: Path) -> None:
    result = runner.invoke(app, ["report", "platform_20200101T000000Z"], env=NARROW)
    assert result.exit_code == 1 and "RUN_FOLDER_INVALID" in result.output


def test_a_report_that_breaks_its_schema_is_refused(run_folder: Path) -> None:
    (run_folder / "run_report.json").write_text('{"platform_run_id": "x"}')
    result = runner.invoke(app, ["report"], env=NARROW)
    assert result.exit_code == 1 and "EVIDENCE_SCHEMA_INVALID" in result.output
