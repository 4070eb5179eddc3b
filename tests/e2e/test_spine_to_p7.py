"""The spine from P(-1) to P7 on the embedded substrate, on both local buses, then P12.

Proves: every phase passes with its evidence, the bundle validates, counts reconcile at every
hop (emitted by WSP == admitted by IG less the IG readiness smoke event; topics hold them), the two
buses give the same results, and teardown leaves no process behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.processes import is_running
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry

runner = CliRunner()
GATE = 20


def _run_spine(bus: str) -> tuple[Path, dict]:
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    run = runner.invoke(app, ["dev-min-run", "--to", "P7", "--gate", str(GATE)])
    assert run.exit_code == 0, run.output
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    evidence = root / (root / "ACTIVE_RUN_ID").read_text().strip() / "evidence"
    down = runner.invoke(app, ["dev-min-down"])
    assert down.exit_code == 0, down.output
    assert all(not is_running(p.pid, p.argv) for p in state.processes)
    validate = runner.invoke(app, ["evidence", "validate", str(evidence)])
    assert validate.exit_code == 0, validate.output
    return evidence, {p.name: json.loads(p.read_text()) for p in evidence.rglob("*.json")}


@pytest.mark.slow
def test_spine_to_p7_reconciles_on_both_buses_and_they_agree(spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        evidence, docs = _run_spine(bus)
        phases = {json.loads(p.read_text())["phase_id"]: json.loads(p.read_text())["state"] for p in (evidence / "phases").glob("*.json")}
        assert phases == {p: "PASS" for p in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P12")}
        wsp, receipts = docs["wsp_summary.json"], docs["receipt_summary.json"]
        emitted = {o["output_id"]: o["emitted"] for o in wsp["per_output"]}
        assert set(emitted.values()) == {GATE}
        by_outcome = receipts["counts"]["by_outcome"]
        assert by_outcome["ADMIT"] == sum(emitted.values()) + 1  # + the P4 publish smoke event
        assert by_outcome["DUPLICATE"] == by_outcome["QUARANTINE"] == by_outcome["ANOMALY"] == by_outcome["PUBLISH_AMBIGUOUS"] == 0
        assert receipts["attempts"] == sum(by_outcome.values())
        topics = {r["topic"] for r in docs["kafka_offsets_snapshot.json"]["offset_ranges"]}
        assert len(topics) == len(emitted)
        offset_kinds = {r["offset_kind"] for r in docs["kafka_offsets_snapshot.json"]["offset_ranges"]}
        assert offset_kinds == {"kafka_offset" if bus == "kafka" else "kinesis_sequence"}
        results[bus] = (emitted, receipts["counts"]["by_event_class"], docs["checker_pass.json"]["outputs"])
    assert results["kinesis"] == results["kafka"]
