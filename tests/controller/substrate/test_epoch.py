"""A restarted in-memory moto server is lost state: `up` refuses loudly, a resumed run fails
SUBSTRATE_STATE_LOST, the IG API key is never silently re-created, and `dev-min-down/up` is the way out."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.bootstrap import read_secret
from controller.substrate.local import settings_for
from controller.substrate.processes import stop_pid
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry

runner = CliRunner()


def test_a_restarted_moto_server_is_reported_as_lost_state_and_never_gets_a_new_ig_key(spine_workdir: Path) -> None:
    assert runner.invoke(app, ["dev-min-up"]).exit_code == 0
    pinned = runner.invoke(app, ["dev-min-run", "--to", "P1"])
    assert pinned.exit_code == 0, pinned.output
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None and state.epoch
    run_id = (spine_workdir / "runs/fraud-platform/ACTIVE_RUN_ID").read_text().strip()
    evidence = spine_workdir / "runs/fraud-platform" / run_id / "evidence"
    assert json.loads((evidence / "substrate/substrate_snapshot.json").read_text())["substrate_epoch"] == state.epoch
    moto = next(p for p in state.processes if p.name == "moto")
    assert stop_pid(moto.pid, moto.argv)  # the moto server dies (we started it)

    up = runner.invoke(app, ["substrate", "up"])
    assert up.exit_code == 1 and "SUBSTRATE_STATE_LOST" in up.output and "in memory" in up.output.lower(), up.output
    after = read_state(state_dir(registry))
    assert after is not None and after.epoch == state.epoch
    assert read_secret(settings_for(after, registry), "SSM_IG_API_KEY_PATH") is None  # no new key behind the running IG
    assert runner.invoke(app, ["substrate", "up"]).exit_code == 1  # and it keeps refusing

    resumed = runner.invoke(app, ["dev-min-run", "--from", "P2", "--to", "P2"])
    assert resumed.exit_code == 1 and "SUBSTRATE_STATE_LOST" in resumed.output, resumed.output
    record = json.loads((evidence / "phases/P2.json").read_text())
    assert record["state"] == "FAIL" and record["error_code"] == "SUBSTRATE_STATE_LOST" and "dev-min-up" in record["next_step"]

    status = runner.invoke(app, ["substrate", "status"])
    assert "IN MEMORY" in status.output and state.epoch in status.output, status.output

    assert runner.invoke(app, ["dev-min-down"]).exit_code == 0
    fresh = runner.invoke(app, ["dev-min-up"])
    assert fresh.exit_code == 0, fresh.output
    renewed = read_state(state_dir(registry))
    assert renewed is not None and renewed.epoch and renewed.epoch != state.epoch
