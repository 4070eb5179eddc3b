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

from controller.phases.base import execute
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from runtime.db.postgres import connect
from runtime.decision.df.store import admitted_without_decision
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.rtdl.events import TRAFFIC_CLASSES
from tests.support.spine import Spine, spine_at_p8, spine_down

GATE = 20
WAIT_S = 240.0
LANE = "rtdl_decision_lane"


def lane_settled(dsn: str, run_id: str) -> bool:
    """Every admitted traffic event decided, DLA's lineage complete (what P9 gates on)."""
    with connect(dsn) as conn:
        decided = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchone()
        return (not admitted_without_decision(conn, run_id, TRAFFIC_CLASSES) and bool(decided and decided[0])
                and lineage_unresolved_total(conn, run_id) == 0)


def wait_for_lane(spine: Spine, wait_s: float = WAIT_S) -> None:
    """Start the decision lane pack over the run and wait (bounded) until it settled."""
    assert spine.backend.start_pack(LANE, spine.run_id).running
    deadline = time.monotonic() + wait_s
    while not lane_settled(spine.dsn, spine.run_id) and time.monotonic() < deadline:
        time.sleep(2.0)


def run_to_p10(bus: str, gate: int = GATE) -> dict[str, Any]:
    """P1..P8 through the CLI, the lane pack until it settled, then the P10 phase; its record and evidence."""
    spine = spine_at_p8(bus, gate)
    try:
        wait_for_lane(spine)
        record = execute(CaseLabelsCommitted(), spine.context(bus=bus, gate=gate))
        evidence = spine.folders.evidence_dir(spine.run_id)
        docs = {k: json.loads((evidence / spine.registry.text(k)).read_text())
                for k in ("CASE_EVIDENCE_PATH_PATTERN", "LABEL_EVIDENCE_PATH_PATTERN")}
    finally:
        spine_down(spine, ("case_labels", LANE))
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
