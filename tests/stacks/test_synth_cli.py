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



def test_default_output_dirs_are_the_registry_stack_dirs() -> None:
    from runtime.contracts.registry import load_registry
    from runtime.paths import REPO_ROOT
    from stacks.synth import DEFAULT_OUT, stack_file

    registry = load_registry("dev_min")
    assert stack_file(DEFAULT_OUT, "core").parent == REPO_ROOT / registry.text("TF_STACK_CORE_DIR")
    assert stack_file(DEFAULT_OUT, "demo").parent == REPO_ROOT / registry.text("TF_STACK_DEMO_DIR")
