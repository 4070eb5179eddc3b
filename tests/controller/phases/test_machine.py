"""The phase machine: slices, retry rules, resume rules, fail-closed phases, the run lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.lifecycle import run_lock
from controller.phases.machine import Slice, packs_in_scope, planned_phases
from controller.runs import RunFolders
from runtime.contracts.registry import load_registry
from runtime.decision.bundle import load_policy
from runtime.errors import PlatformError

runner = CliRunner()


def test_slices_cover_the_right_phases() -> None:
    assert planned_phases(Slice()) == ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11"]
    assert planned_phases(Slice(to="P3")) == ["P1", "P2", "P3"]
    assert planned_phases(Slice(from_="P6", to="P7")) == ["P6", "P7"]
    assert planned_phases(Slice(only="P5")) == ["P5"]


def test_packs_in_scope_of_a_p7_run_are_control_ingress_only() -> None:
    assert packs_in_scope(planned_phases(Slice(to="P7"))) == ["control_ingress"]
    # a slice reaching P11 also runs the obs_gov pack (its daemons watch the run in flight), last
    assert packs_in_scope(planned_phases(Slice())) == ["control_ingress", "rtdl_core", "rtdl_decision_lane", "case_labels",
                                                      "obs_gov"]
    assert "obs_gov" not in packs_in_scope(planned_phases(Slice(to="P10")))


@pytest.mark.parametrize("selection, code", [
    (Slice(to="P12"), "UNKNOWN_PHASE"),
    (Slice(only="P0"), "UNKNOWN_PHASE"),
    (Slice(only="P3", to="P5"), "PHASE_PLAN_INVALID"),
    (Slice(from_="P7", to="P3"), "PHASE_PLAN_INVALID"),
])
def test_bad_slices_are_refused(selection: Slice, code: str) -> None:
    with pytest.raises(PlatformError) as info:
        planned_phases(selection)
    assert info.value.code == code


@pytest.fixture
def workdir(spine_workdir: Path) -> Path:
    """A scratch run folder with a free-port registry (tests/conftest.py)."""
    return spine_workdir


def _evidence(workdir: Path) -> Path:
    run_id = (workdir / "runs/fraud-platform/ACTIVE_RUN_ID").read_text().strip()
    return workdir / "runs/fraud-platform" / run_id / "evidence"


def test_run_without_substrate_is_refused_and_writes_nothing(workdir: Path) -> None:
    result = runner.invoke(app, ["dev-min-run", "--to", "P1"])
    assert result.exit_code == 1 and "SUBSTRATE_DOWN" in result.output
    assert not (workdir / "runs/fraud-platform").exists() or not list((workdir / "runs/fraud-platform").glob("platform_*"))


def test_p1_pins_config_and_a_resume_before_pass_is_refused(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    ok = runner.invoke(app, ["dev-min-run", "--to", "P1", "--gate", "20"])
    assert ok.exit_code == 0, ok.output
    run = json.loads((_evidence(workdir) / "run.json").read_text())
    assert run["config"]["gate_events_per_output"] == 20 and len(run["config_digest"]) == 64
    shipped = load_policy()
    assert run["config"]["policy"] == {"policy_id": shipped.policy_id, "version": shipped.version, "digest": shipped.digest}
    for start in ("P8", "P11"):
        resumed = runner.invoke(app, ["dev-min-run", "--from", start])
        assert resumed.exit_code == 1 and "RESUME_BEFORE_PASS" in resumed.output
    assert "PASS" not in {json.loads(p.read_text())["state"] for p in (_evidence(workdir) / "phases").glob("P[2-9]*.json")}
    validate = runner.invoke(app, ["evidence", "validate", str(_evidence(workdir))])
    assert validate.exit_code == 0, validate.output


def test_a_pinned_run_gets_a_fresh_run_with_its_own_p0(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    assert runner.invoke(app, ["dev-min-run", "--to", "P1"]).exit_code == 0
    first = _evidence(workdir)
    assert runner.invoke(app, ["dev-min-run", "--to", "P1"]).exit_code == 0
    second = _evidence(workdir)
    assert second != first
    assert (second / "phases/P0.json").is_file() and (second / "run.json").is_file()


def test_rerun_of_a_phase_outside_the_retry_rules_is_refused(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    result = runner.invoke(app, ["dev-min-run", "--phase", "P4"])
    assert result.exit_code == 1 and "PHASE_RERUN_NOT_ALLOWED" in result.output


def test_second_controller_on_the_same_run_is_refused(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    folders = RunFolders.from_registry(registry)
    with run_lock(folders, folders.active_run_id()):
        result = runner.invoke(app, ["dev-min-run", "--to", "P1"])
    assert result.exit_code == 1 and "RUN_LOCKED" in result.output


def test_bad_gate_and_bus_mismatch_are_refused(workdir: Path) -> None:
    bad_gate = runner.invoke(app, ["dev-min-run", "--gate", "0"])
    assert bad_gate.exit_code == 1 and "BAD_GATE" in bad_gate.output
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    mismatch = runner.invoke(app, ["dev-min-run", "--bus", "kafka", "--to", "P1"])
    assert mismatch.exit_code == 1 and "BUS_MISMATCH" in mismatch.output


def test_resume_after_the_config_drifted_is_refused(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    assert runner.invoke(app, ["dev-min-run", "--to", "P1"]).exit_code == 0
    registry_file = workdir / "handles.registry.yaml"
    registry_file.write_text(registry_file.read_text().replace("WSP_BATCH_SIZE: 500", "WSP_BATCH_SIZE: 250"))
    result = runner.invoke(app, ["dev-min-run", "--from", "P2"])
    assert result.exit_code == 1 and "CONFIG_DRIFT" in result.output and "handles" in result.output


def _record(workdir: Path, phase_id: str) -> dict:
    return json.loads((_evidence(workdir) / "phases" / f"{phase_id}.json").read_text())


def test_a_resumed_run_keeps_what_p1_pinned_and_refuses_a_different_option(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    pinned = runner.invoke(app, ["dev-min-run", "--to", "P1", "--gate", "20000", "--seed", "7", "--scale", "5000",
                                 "--mode", "baseline"])
    assert pinned.exit_code == 0, pinned.output
    config = json.loads((_evidence(workdir) / "run.json").read_text())["config"]
    assert (config["gate_events_per_output"], config["engine_seed"], config["engine_scale"], config["traffic_mode"]) == (
        20000, 7, 5000, "baseline")
    resumed = runner.invoke(app, ["dev-min-run", "--from", "P2", "--to", "P2"])
    assert resumed.exit_code == 0, resumed.output
    assert _record(workdir, "P2")["bounded_gate"] == 20000  # the pinned gate, not the command line's (none)
    for option, given, pinned_value in (("--gate", "20", "20000"), ("--seed", "8", "7"), ("--scale", "6000", "5000"),
                                         ("--mode", "fraud", "baseline")):
        drift = runner.invoke(app, ["dev-min-run", "--from", "P2", "--to", "P2", option, given])
        assert drift.exit_code == 1, drift.output
        assert "CONFIG_DRIFT" in drift.output and option in drift.output, drift.output
        assert f"pinned {pinned_value}" in drift.output and f"given {given}" in drift.output, drift.output
    same = runner.invoke(app, ["dev-min-run", "--from", "P2", "--to", "P2", "--gate", "20000", "--mode", "baseline"])
    assert same.exit_code == 0, same.output
    status = runner.invoke(app, ["status"])
    assert all(s in status.output for s in ("gate=20000", "seed=7", "scale=5000", "mode=baseline")), status.output


@pytest.mark.parametrize("argv, word", [
    (["--scale", "0"], "--scale"), (["--scale", "-5"], "--scale"), (["--seed", "-1"], "--seed"),
    (["--mode", "dual"], "--mode"), (["--mode", "nonsense"], "--mode"),
])
def test_bad_run_options_are_refused_before_anything_runs(workdir: Path, argv: list[str], word: str) -> None:
    result = runner.invoke(app, ["dev-min-run", "--to", "P1", *argv])
    assert result.exit_code == 1 and "BAD_RUN_OPTION" in result.output and word in result.output, result.output
    assert not (workdir / "runs/fraud-platform").exists()
