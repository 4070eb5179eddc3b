"""The spine from P(-1) to P8 on the embedded substrate, on both local buses, then P12.

Proves: every phase to P7 passes with its evidence, the bundle validates, counts reconcile at every
hop (emitted by WSP == admitted by IG less the IG readiness smoke event; topics hold them), the two
buses give the same results, and teardown leaves no process behind. P8: the rtdl_core pack ran
from P2; with all four workers built P8 passes with the same state digest on both buses (P4's ingest probe is left out of state); a build
without the OFP, IEG and CSFB stores fails P8 closed (RTDL_STATE_MISSING), while the archive
writer it ran alone archived every admitted record. On each bus the live RTDL state equals, row for
row, the pure domains fed every record of the run read back from that bus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.processes import is_running
from controller.substrate.state import read_state, state_dir
from runtime.components import unbuilt_members
from runtime.contracts.registry import load_registry
from tests.support.rtdl_drill import drill_context, live_against_pure

runner = CliRunner()
GATE = 20


def _run_spine(bus: str) -> tuple[Path, dict]:
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    run = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    if unbuilt_members(registry, "rtdl_core"):  # P8 fails closed naming the missing stores
        assert run.exit_code == 1 and "RTDL_STATE_MISSING" in run.output, run.output
    else:
        assert run.exit_code == 0, run.output
    state = read_state(state_dir(registry))
    assert state is not None
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    evidence = root / run_id / "evidence"
    if not unbuilt_members(registry, "rtdl_core"):
        # Live OFP, IEG and CSFB state equals the pure domains fed the run's records read back from the bus.
        _, settings, _ = drill_context()
        report = live_against_pure(settings, registry, run_id)
        assert report["live_digest"] == report["pure_digest"], json.dumps(report["sections"])[:3000]
        assert all(s["only_live"] == s["only_pure"] == 0 for s in report["sections"].values())
    down = runner.invoke(app, ["dev-min-down"])
    assert down.exit_code == 0, down.output
    assert all(not is_running(p.pid, p.argv) for p in state.processes)
    validate = runner.invoke(app, ["evidence", "validate", str(evidence)])
    assert validate.exit_code == 0, validate.output
    docs = {p.name: json.loads(p.read_text()) for p in evidence.rglob("*.json")}
    archive_health = evidence.parent / registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir="archive_writer")
    docs["archive_writer_health"] = json.loads(archive_health.read_text())
    return evidence, docs


@pytest.mark.slow
def test_spine_to_p7_reconciles_on_both_buses_and_they_agree(spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        evidence, docs = _run_spine(bus)
        phases = {json.loads(p.read_text())["phase_id"]: json.loads(p.read_text())["state"] for p in (evidence / "phases").glob("*.json")}
        built = not unbuilt_members(load_registry("local_parity"), "rtdl_core")
        assert phases == {**{p: "PASS" for p in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P12")},
                          "P8": "PASS" if built else "FAIL"}
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
        archive = docs["archive_writer_health"]
        assert archive["health_state"] == "GREEN" and archive["lag_total"] == 0
        assert archive["counters"]["archive_records"] == by_outcome["ADMIT"]  # every admitted record, once
        digest = docs["caught_up.json"]["state_digest"] if built else None
        if not built:
            assert "caught_up.json" not in docs  # nothing PASS-looking without the stores
        assert digest is None or len(digest) == 64
        results[bus] = (emitted, receipts["counts"]["by_event_class"], docs["checker_pass.json"]["outputs"], digest)
    # The same seed gives the same RTDL state on both buses (the P4 probe is counted, never applied).
    assert results["kinesis"] == results["kafka"]
