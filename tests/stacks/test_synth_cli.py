"""`fp stacks synth` / `show`: Terraform JSON written where asked, inside the time budget."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controller.cli.main import app
from tests.stacks.conftest import Synthesised

runner = CliRunner()


def test_all_stacks_synthesise_in_under_a_minute(synthesised: Synthesised) -> None:
    print(f"synth of core + demo + local_parity: {synthesised.seconds:.1f} s")
    assert synthesised.seconds < 60
    assert set(synthesised.stacks) == {"core", "demo", "local_parity"}


def test_synth_one_stack_writes_its_json_and_reports_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["stacks", "synth", "--env", "local_parity", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "stacks" / "local_parity" / "cdk.tf.json").read_text())
    assert "aws_kinesis_stream" in doc["resource"]
    assert not (out / "stacks" / "demo").exists()
    assert "synthesised 1 stack(s) in" in result.output


def test_show_lists_resources_per_stack(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["stacks", "show", "--stack", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "stack demo" in result.output and "aws_ecs_service" in result.output
    assert (out / "stacks" / "demo" / "cdk.tf.json").is_file()

