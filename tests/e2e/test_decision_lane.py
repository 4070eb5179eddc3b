"""The decision lane on the spine: P1..P8 on both local buses, then the rtdl_decision_lane pack
(DL, DF, AL, DLA daemons) over the run. The P9 gate is not built yet; this test checks from
durable state what it will gate on: every admitted traffic event has exactly one decision, every
intent one effect, no lineage break, and the decision digest is the same on both buses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.factory import backend_for
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.decision.al.store import action_counts
from runtime.decision.df.store import admitted_without_decision, decision_counts, run_decision_digest
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.rtdl.events import TRAFFIC_CLASSES

runner = CliRunner()
GATE = 20
WAIT_S = 240.0
PACK = "rtdl_decision_lane"


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
    run = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    assert run.exit_code == 0, run.output
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    backend = backend_for(registry, runs_root=root, environment=substrate.runtime_environment(registry))
    try:
        assert backend.start_pack(PACK, run_id).running
        deadline = time.monotonic() + WAIT_S
        while True:
            state = _lane_state(substrate.db_dsn, run_id)
            settled = (not state["undecided"] and state["counts"].total > 0 and state["executed"] == state["intents"]
                       and state["lineage_unresolved_total"] == 0)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        health = {c: root / run_id / registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=d)
                  for c, d in (("dl", "degrade_ladder"), ("df", "decision_fabric"))}
        state["health"] = {c: json.loads(p.read_text()) if p.is_file() else None for c, p in health.items()}
    finally:
        backend.stop_pack(PACK)
        down = runner.invoke(app, ["dev-min-down"])
        assert down.exit_code == 0, down.output
    return state


@pytest.mark.slow
def test_every_admitted_traffic_event_is_decided_once_and_the_decision_digest_is_equal_on_both_buses(
        spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        state = _run_lane(bus)
        assert state["undecided"] == [], state["undecided"][:5]
        decided, distinct = state["per_event"]
        assert decided == distinct == state["counts"].total == GATE  # one decision per admitted traffic event
        assert state["executed"] == state["intents"] and state["lineage_unresolved_total"] == 0
        # the pack starts after P8: every store complete, nothing late, DL GREEN from its first observation
        assert state["health"]["dl"] is not None and state["health"]["dl"]["posture"] == "GREEN"
        assert state["counts"].by_posture == {"GREEN": GATE} and state["counts"].degraded == 0
        results[bus] = (state["digest"], state["counts"].by_outcome, state["counts"].by_posture,
                        state["counts"].by_degrade_reason)
    assert results["kinesis"] == results["kafka"], results
