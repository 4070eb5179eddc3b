"""Lint rule 4: synthesised names and registry names are the same set, both ways."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runtime.components import COMPONENTS
from runtime.contracts.registry import load_registry
from runtime.paths import registry_path
from stacks.names_check import synthesised_name_findings
from stacks.synth import stack_file
from tests.stacks.conftest import Synthesised


def _copy(synthesised: Synthesised, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(synthesised.out_dir, target)
    return target


def test_repository_stacks_name_exactly_the_registry(synthesised: Synthesised) -> None:
    assert synthesised_name_findings(registry_path(), synthesised.out_dir) == []


def test_renamed_bucket_in_the_json_is_a_finding(synthesised: Synthesised, tmp_path: Path) -> None:
    out = _copy(synthesised, tmp_path)
    path = stack_file(out, "core")
    doc = json.loads(path.read_text())
    doc["resource"]["aws_s3_bucket"]["s3_oracle_bucket"]["bucket"] = "someone-elses-bucket"
    path.write_text(json.dumps(doc))
    messages = [f.message for f in synthesised_name_findings(registry_path(), out)]
    assert any("bucket 'someone-elses-bucket'" in m and "not a registry value" in m for m in messages), messages
    assert any("S3_ORACLE_BUCKET" in m and "no stack synthesises it" in m for m in messages), messages


def test_registry_service_missing_from_the_stacks_is_a_finding(synthesised: Synthesised, tmp_path: Path) -> None:
    out = _copy(synthesised, tmp_path)
    path = stack_file(out, "demo")
    doc = json.loads(path.read_text())
    del doc["resource"]["aws_ecs_service"]["svc_svc_ig"]
    path.write_text(json.dumps(doc))
    findings = synthesised_name_findings(registry_path(), out)
    assert [f for f in findings if "service SVC_IG" in f.message and f.line > 1], findings


def test_service_of_a_component_not_built_yet_is_reserved_not_a_finding(synthesised: Synthesised) -> None:
    demo = synthesised.stacks["demo"]["resource"]
    built = {c.ecs_key for c in COMPONENTS.values()}
    reserved = sorted(h.key for h in load_registry("dev_min").handles() if h.key.startswith("SVC_") and h.key not in built)
    if not reserved:
        pytest.skip("every registered service has a component in the map")
    key = reserved[0]
    assert f"svc_{key.lower()}" not in demo["aws_ecs_service"]  # a later plane's service: no map entry yet
    assert not [f for f in synthesised_name_findings(registry_path(), synthesised.out_dir) if key in f.message]


def test_unregistered_ssm_path_in_local_parity_is_a_finding(synthesised: Synthesised, tmp_path: Path) -> None:
    out = _copy(synthesised, tmp_path)
    path = stack_file(out, "local_parity")
    doc = json.loads(path.read_text())
    first = next(iter(doc["resource"]["aws_ssm_parameter"].values()))
    first["name"] = "/somewhere/else"
    path.write_text(json.dumps(doc))
    assert any("SSM path '/somewhere/else'" in f.message for f in synthesised_name_findings(registry_path(), out))


def test_fp_handles_lint_reports_rule_4_findings(monkeypatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import stacks.names_check as names_check
    from controller.cli.main import app
    from stacks.names_check import NameFinding

    planted = NameFinding("cdktn.out/stacks/demo/cdk.tf.json", 1, "stack demo: service 'x' is not a registry value of dev_min")
    monkeypatch.setattr(names_check, "synthesised_name_findings", lambda registry_file: [planted])
    (tmp_path / "runtime").mkdir()
    shutil.copy(registry_path(), tmp_path / "handles.registry.yaml")
    result = CliRunner().invoke(app, ["handles", "lint", "--root", str(tmp_path), "--registry", str(tmp_path / "handles.registry.yaml")])
    assert result.exit_code == 1
    assert "service 'x' is not a registry value" in result.output
