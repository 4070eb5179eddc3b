"""dev-min-up (P0) and dev-min-down (P12) on the embedded substrate leave a valid evidence bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate import local
from controller.substrate.processes import is_running
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry

runner = CliRunner()


@pytest.fixture
def workdir(spine_workdir: Path) -> Path:
    """A scratch run folder with a free-port registry (tests/conftest.py)."""
    return spine_workdir


def _active(workdir: Path) -> str:
    return (workdir / "runs/fraud-platform/ACTIVE_RUN_ID").read_text().strip()


def test_up_then_down_writes_a_bundle_that_validates(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    run_id = _active(workdir)
    evidence = workdir / "runs/fraud-platform" / run_id / "evidence"
    snapshot = json.loads((evidence / "substrate/substrate_snapshot.json").read_text())
    assert snapshot["all_ok"] is True and snapshot["platform_run_id"] == run_id
    state = read_state(state_dir(load_registry("local_parity")))
    assert state is not None
    down = runner.invoke(app, ["dev-min-down"])
    assert down.exit_code == 0, down.output
    assert all(not is_running(p.pid, p.argv) for p in state.processes)
    proof = json.loads((evidence / "teardown/teardown_proof.json").read_text())
    assert proof["destroy_status"] == "SUCCESS" and all(proof["confirmed_absent"].values())
    validate = runner.invoke(app, ["evidence", "validate", str(evidence)])
    assert validate.exit_code == 0, validate.output
    again = runner.invoke(app, ["dev-min-down"])
    assert again.exit_code == 0 and "already torn down" in again.output


def test_up_twice_reuses_the_unpinned_active_run(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    first = _active(workdir)
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    assert _active(workdir) == first
    record = json.loads((workdir / "runs/fraud-platform" / first / "evidence/phases/P0.json").read_text())
    assert record["state"] == "PASS" and record["attempt"] == 2


def test_p0_gate_fails_closed_when_a_topic_is_missing(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    settings = local.settings_for(state, registry)
    settings.aws_client("kinesis").delete_stream(StreamName=registry.topic("FP_BUS_RTDL_V1").name)
    from controller.lifecycle import run_writer
    from controller.phases.base import RunContext, execute
    from controller.phases.p00_substrate_ready import SubstrateReady
    from controller.runs import RunFolders
    from runtime.errors import PlatformError

    folders = RunFolders.from_registry(registry)
    run_id = folders.active_run_id()
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings, {})
    with pytest.raises(PlatformError) as info:
        execute(SubstrateReady(), ctx)
    assert info.value.code == "SUBSTRATE_READY_GATE_FAILED"
    assert registry.topic("FP_BUS_RTDL_V1").name in info.value.message
    record = json.loads((folders.evidence_dir(run_id) / "phases/P0.json").read_text())
    assert record["state"] == "FAIL" and record["error_code"] == "SUBSTRATE_READY_GATE_FAILED" and record["next_step"]


def test_down_without_an_active_run_is_a_clear_error(workdir: Path) -> None:
    result = runner.invoke(app, ["dev-min-down"])
    assert result.exit_code == 1
    assert "RUN_FOLDER_INVALID: no active run" in result.output


def test_active_run_id_pointing_at_a_missing_run_is_refused(workdir: Path) -> None:
    root = workdir / "runs/fraud-platform"
    root.mkdir(parents=True)
    (root / "ACTIVE_RUN_ID").write_text("platform_20200101T000000Z\n")
    result = runner.invoke(app, ["dev-min-down"])
    assert result.exit_code == 1
    assert "points at platform_20200101T000000Z" in result.output
    assert not (root / "platform_20200101T000000Z").exists()


def test_bundle_validates_from_the_evidence_bucket_while_the_substrate_is_up(workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    run_id = _active(workdir)
    uri = f"s3://{registry.text('S3_EVIDENCE_BUCKET')}/{registry.render('EVIDENCE_RUN_ROOT_PATTERN', platform_run_id=run_id)}"
    result = runner.invoke(app, ["evidence", "validate", uri])
    assert result.exit_code == 0, result.output
    assert "P0" in result.output and "evidence validate: OK" in result.output


def test_validate_of_a_missing_folder_or_bucketless_uri_is_a_clear_error(workdir: Path) -> None:
    missing = runner.invoke(app, ["evidence", "validate", str(workdir / "nope")])
    assert missing.exit_code == 1 and "BUNDLE_NOT_FOUND" in missing.output
    bucketless = runner.invoke(app, ["evidence", "validate", "s3:///prefix"])
    assert bucketless.exit_code == 1 and "BAD_LOCATION" in bucketless.output
