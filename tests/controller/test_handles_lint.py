"""`fp handles lint`: exit 1 with file:line on a planted literal, 0 on the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from controller.cli.main import app
from runtime.paths import REPO_ROOT, registry_path

runner = CliRunner()


def test_repository_passes_handles_lint() -> None:
    result = runner.invoke(app, ["handles", "lint"])
    assert result.exit_code == 0, result.output


def test_planted_literal_topic_name_fails_with_file_and_line(tmp_path: Path) -> None:
    shutil.copy(registry_path(), tmp_path / "handles.registry.yaml")
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "planted.py").write_text('"""x"""\n\nTOPIC = "fp.bus.traffic.fraud.v1"\n')
    result = runner.invoke(app, ["handles", "lint", "--root", str(tmp_path),
                                 "--registry", str(tmp_path / "handles.registry.yaml")])
    assert result.exit_code == 1
    assert "runtime/planted.py:3: literal 'fp.bus.traffic.fraud.v1' is registry handle FP_BUS_TRAFFIC_FRAUD_V1" in result.output


def test_literal_beside_its_handle_key_is_allowed(tmp_path: Path) -> None:
    shutil.copy(registry_path(), tmp_path / "handles.registry.yaml")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("The fraud topic fp.bus.traffic.fraud.v1 (FP_BUS_TRAFFIC_FRAUD_V1).\n")
    result = runner.invoke(app, ["handles", "lint", "--root", str(tmp_path),
                                 "--registry", str(tmp_path / "handles.registry.yaml")])
    assert result.exit_code == 0, result.output


def test_malformed_registry_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "handles.registry.yaml"
    bad.write_text("version: 1\nshared: [\n")
    result = runner.invoke(app, ["handles", "lint", "--root", str(REPO_ROOT), "--registry", str(bad)])
    assert result.exit_code == 1
    assert "malformed YAML" in result.output
