"""The decision lane on the spine: P1..P9 on both local buses (the rtdl_decision_lane pack, DL, DF,
AL, DLA daemons, started at P2 with the other packs), then P12. P9 DECISION_CHAIN_COMMITTED passes
with its three summaries (the bundle validates), and the durable state agrees with them: every
admitted traffic event has exactly one decision, every intent one effect, no lineage break, and the
decision digest is the same on both buses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.decision.al.store import action_counts
from runtime.decision.df.store import admitted_without_decision, decision_counts, run_decision_digest
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.rtdl.events import TRAFFIC_CLASSES

runner = CliRunner()
GATE = 20


def _lane_state(dsn: str, run_id: str) -> dict[str, Any]:
    with connect(dsn) as conn:
        undecided = admitted_without_decision(conn, run_id, TRAFFIC_CLASSES)
        counts = decision_counts(conn, run_id)
        per_event = conn.execute("SELECT count(*), count(DISTINCT (event_class, event_id)) FROM df_decisions"
                                 " WHERE platform_run_id = %s", (run_id,)).fetchone()
        intents = sum(len(r["actions"]) for (r,) in conn.execute(
            "SELECT record FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchall())
        actions = action_counts(conn, run_id)
        breaks = lineage_unresolved_total(conn, run_id)
        digest = run_decision_digest(conn, run_id)
    return {"undecided": undecided, "counts": counts, "per_event": tuple(per_event), "intents": intents,
            "executed": actions.executed, "lineage_unresolved_total": breaks, "digest": digest}


def _run_lane(bus: str) -> dict[str, Any]:
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    run = runner.invoke(app, ["dev-min-run", "--to", "P9", "--gate", str(GATE)])
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    try:
        assert run.exit_code == 0, run.output
        state = _lane_state(substrate.db_dsn, run_id)
        health = root / run_id / registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir="degrade_ladder")
        state["dl_health"] = json.loads(health.read_text()) if health.is_file() else None
    finally:
        down = runner.invoke(app, ["dev-min-down"])
        assert down.exit_code == 0, down.output
    evidence = root / run_id / "evidence"
    validate = runner.invoke(app, ["evidence", "validate", str(evidence)])
    assert validate.exit_code == 0, validate.output
    state["docs"] = {p.name: json.loads(p.read_text()) for p in (evidence / "decision_lane").glob("*.json")}
    state["phases"] = {json.loads(p.read_text())["phase_id"]: json.loads(p.read_text())["state"]
                       for p in (evidence / "phases").glob("*.json")}
    return state


@pytest.mark.slow
def test_p9_passes_on_both_buses_with_every_admitted_traffic_event_decided_once_and_the_same_decision_digest(
        spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        state = _run_lane(bus)
        assert state["phases"] == {p: "PASS" for p in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9",
                                                       "P12")}
        assert state["undecided"] == [], state["undecided"][:5]
        decided, distinct = state["per_event"]
        assert decided == distinct == state["counts"].total == GATE  # one decision per admitted traffic event
        assert state["executed"] == state["intents"] and state["lineage_unresolved_total"] == 0
        summary = state["docs"]["decision_summary.json"]
        actions, audit = state["docs"]["action_summary.json"], state["docs"]["audit_summary.json"]
        assert summary["decision_digest"] == state["digest"] and summary["counts"]["decisions"] == GATE
        assert summary["counts"]["by_outcome"] == {**dict.fromkeys(("APPROVE", "STEP_UP", "REVIEW", "DECLINE"), 0),
                                                   **state["counts"].by_outcome}
        assert actions["counts"]["outcomes"] == state["intents"] and audit["chain"]["verified"]
        assert audit["counts"]["records"] == GATE + 2 * state["intents"] and audit["lineage_unresolved_total"] == 0
        assert state["dl_health"] is not None
        results[bus] = (state["digest"], state["counts"].by_outcome, state["counts"].by_posture,
                        state["counts"].by_degrade_reason)
    assert results["kinesis"] == results["kafka"], results
