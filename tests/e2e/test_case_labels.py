"""P10 on the spine: P1..P8 on both local buses, the decision lane pack over the run (P9's gate is another
issue's), then the P10 phase itself: it starts the case_labels pack, runs LS's bank view intake and the
gate job, and passes with both summaries. The case and label digests are the same on both buses.
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
from controller.lifecycle import run_writer
from controller.phases.base import RunContext, execute
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from controller.runs import RunFolders
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.decision.df.store import admitted_without_decision
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.rtdl.events import TRAFFIC_CLASSES

runner = CliRunner()
GATE = 20
WAIT_S = 240.0
LANE = "rtdl_decision_lane"


def lane_settled(dsn: str, run_id: str) -> bool:
    """Every admitted traffic event decided, DLA's lineage complete (what P9 gates on)."""
    with connect(dsn) as conn:
        decided = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchone()
        return (not admitted_without_decision(conn, run_id, TRAFFIC_CLASSES) and bool(decided and decided[0])
                and lineage_unresolved_total(conn, run_id) == 0)


def run_to_p10(bus: str, gate: int = GATE) -> dict[str, Any]:
    """P1..P8 through the CLI, the lane pack until it settled, then the P10 phase; its record and evidence."""
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    run = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(gate)])
    assert run.exit_code == 0, run.output
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    folders = RunFolders.from_registry(registry)
    run_id = folders.active_run_id()
    backend = backend_for(registry, runs_root=folders.root, environment=substrate.runtime_environment(registry))
    try:
        assert backend.start_pack(LANE, run_id).running
        deadline = time.monotonic() + WAIT_S
        while not lane_settled(substrate.db_dsn, run_id) and time.monotonic() < deadline:
            time.sleep(2.0)
        settings = settings_for(substrate, registry)
        ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                         {"bus": bus, "gate": gate})
        ctx.backend = backend
        record = execute(CaseLabelsCommitted(), ctx)
        evidence = folders.evidence_dir(run_id)
        docs = {k: json.loads((evidence / registry.text(k)).read_text())
                for k in ("CASE_EVIDENCE_PATH_PATTERN", "LABEL_EVIDENCE_PATH_PATTERN")}
    finally:
        for pack in ("case_labels", LANE):
            backend.stop_pack(pack)
        down = runner.invoke(app, ["dev-min-down"])
        assert down.exit_code == 0, down.output
    return {"record": record, "cases": docs["CASE_EVIDENCE_PATH_PATTERN"], "labels": docs["LABEL_EVIDENCE_PATH_PATTERN"]}


@pytest.mark.slow
def test_p10_passes_on_both_buses_with_the_same_case_and_label_digests(spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        out = run_to_p10(bus)
        record, cases, labels = out["record"], out["cases"], out["labels"]
        assert record["state"] == "PASS", record
        assert [j["component"] for j in record["jobs"]] == ["ls_bank_view_intake", "case_labels_committed"]
        counts = cases["counts"]
        assert counts["triggers_published"] == counts["triggers_processed"] > 0 and cases["cases_missing"] == 0
        assert counts["cases"] == cases["timeline_events_by_kind"]["case_opened"]  # one case per triggered subject
        assert labels["counts"]["assertions_appended"] > 0
        assert cases["health"] == labels["health"] == "GREEN"
        results[bus] = (cases["case_digest"], labels["label_digest"], counts, labels["assertions_by_source"])
    assert results["kinesis"] == results["kafka"], results
