"""Failure drills of the phase machine on the embedded substrate (issue 6 acceptance)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.local_backend import pack_paths, read_pack_state
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.bus.factory import admin
from runtime.contracts.registry import load_registry

runner = CliRunner()


def _ctx() -> tuple:  # type: ignore[type-arg]
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    return registry, settings_for(state, registry), root


def _records(evidence: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["phase_id"]: json.loads(p.read_text()) for p in (evidence / "phases").glob("*.json")}


def _evidence(root: Path) -> Path:
    return root / (root / "ACTIVE_RUN_ID").read_text().strip() / "evidence"


@pytest.mark.slow
def test_a_broken_seal_stops_the_run_at_p3_and_no_ready_is_published(spine_workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    registry, settings, root = _ctx()
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    seal_key = registry.render("ORACLE_PACK_PREFIX_PATTERN", platform_run_id=run_id) + "_SEALED.json"
    settings.bucket("S3_ORACLE_BUCKET").put(seal_key, b'{"manifest_sha256": "not-the-real-manifest"}')
    result = runner.invoke(app, ["dev-min-run", "--to", "P7", "--gate", "20"])
    assert result.exit_code == 1
    records = _records(_evidence(root))
    assert records["P3"]["state"] == "FAIL" and records["P3"]["error_code"] == "MANIFEST_MISMATCH" and records["P3"]["next_step"]
    assert "P4" not in records and "P5" not in records
    assert [(j["component"], j["error_code"]) for j in records["P3"]["jobs"]] == [("oracle_seed", "MANIFEST_MISMATCH")]
    control = registry.topic("FP_BUS_CONTROL_V1").name
    assert all(r.end_offset is None for r in admin(settings).ranges(control))  # no READY


@pytest.mark.slow
def test_killed_ig_during_p6_is_restarted_by_its_pack_and_p7_reconciles(spine_workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    first = runner.invoke(app, ["dev-min-run", "--to", "P5", "--gate", "200"])
    assert first.exit_code == 0, first.output
    registry, _, root = _ctx()
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    paths = pack_paths(root, registry, "control_ingress", run_id)
    state = read_pack_state(paths)
    assert state is not None
    ig_pid = state["processes"][0]["pid"]
    killer = threading.Timer(0.3, lambda: os.kill(ig_pid, signal.SIGKILL))
    killer.start()
    resumed = runner.invoke(app, ["dev-min-run", "--from", "P6", "--to", "P7"])
    killer.join()
    assert resumed.exit_code == 0, resumed.output
    after = read_pack_state(paths)
    assert after is not None and after["processes"][0]["restarts"] >= 1 and after["processes"][0]["pid"] != ig_pid
    evidence = _evidence(root)
    records = _records(evidence)
    assert all(records[p]["attempt"] == 1 for p in ("P1", "P2", "P3", "P4", "P5"))  # --from did not repeat them
    receipts = json.loads((evidence / "ingest/receipt_summary.json").read_text())
    wsp = json.loads((evidence / "wsp/wsp_summary.json").read_text())
    unique = sum(o["emitted"] for o in wsp["per_output"])
    admitted = receipts["counts"]["by_outcome"]["ADMIT"]
    assert admitted == unique + 1  # every event admitted once, plus the P4 smoke event
    assert receipts["publish_ambiguous_unresolved"] == 0


@pytest.mark.slow
def test_from_resumes_a_failed_p6_without_repeating_earlier_phases(spine_workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up"])
    assert up.exit_code == 0, up.output
    registry, settings, root = _ctx()
    assert runner.invoke(app, ["dev-min-run", "--to", "P5", "--gate", "20"]).exit_code == 0
    ssm = settings.aws_client("ssm")
    key_path = registry.text("SSM_IG_API_KEY_PATH")
    api_key = ssm.get_parameter(Name=key_path, WithDecryption=True)["Parameter"]["Value"]
    ssm.delete_parameter(Name=key_path)
    failed = runner.invoke(app, ["dev-min-run", "--from", "P6", "--to", "P7"])
    assert failed.exit_code == 1
    assert _records(_evidence(root))["P6"]["state"] == "FAIL"
    ssm.put_parameter(Name=key_path, Value=api_key, Type="SecureString")
    time.sleep(0.1)
    resumed = runner.invoke(app, ["dev-min-run", "--from", "P6", "--to", "P7"])
    assert resumed.exit_code == 0, resumed.output
    records = _records(_evidence(root))
    assert records["P6"]["state"] == "PASS" and records["P6"]["attempt"] == 2
    assert all(records[p]["attempt"] == 1 for p in ("P1", "P2", "P3", "P4", "P5"))
