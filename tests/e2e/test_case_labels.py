"""P9..P11 on the spine: P1..P8 on both local buses, the decision lane pack over the run, then the P9,
P10 and P11 phases themselves: P10 starts the case_labels pack, runs LS's bank view intake and the
gate job, and passes with both summaries; P11 runs the single-writer reporter, which closes the run
on Spine Green (every hop reconciles, anchors agree with P7/P8, conformance PASS). The decision,
case and label digests are the same on both buses. (One spine run per bus: CI time is at its limit.)
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controller.phases.base import execute
from controller.phases.p09_decision_chain_committed import DecisionChainCommitted
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from controller.phases.p11_obs_gov_closed import ObsGovClosed
from runtime.db.postgres import connect
from runtime.decision.df.store import admitted_without_decision
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.obs.report_html import ratio
from runtime.rtdl.events import TRAFFIC_CLASSES
from tests.runtime.obs.test_report_html import load
from tests.support.spine import Spine, runner, spine_at_p8, spine_down

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


def two_reporters(spine: Spine) -> list[tuple[int, str]]:
    """`reporter close` started twice at once (what a second operator, or a retried task, does):
    each one's exit code and the error code it failed with, if any."""
    out: list[tuple[int, str]] = []

    def one() -> None:
        result = spine.backend.run_job("reporter", ["reporter", "close", "--platform-run-id", spine.run_id],
                                       spine.run_id, check=False)
        out.append((result.exit_code, result.failure.code if result.failure else ""))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return out


def run_to_p11(bus: str, gate: int = GATE, *, two: bool = False) -> dict[str, Any]:
    """P1..P8 through the CLI, the lane pack until it settled, then the P9, P10 and P11 phases (with
    `two`, two reporters started together before P11); their records, the evidence and
    `fp evidence validate` of the bundle."""
    from controller.cli.main import app

    spine = spine_at_p8(bus, gate)
    try:
        wait_for_lane(spine)
        records = {}
        for phase in (DecisionChainCommitted(), CaseLabelsCommitted()):
            records[phase.phase_id] = execute(phase, spine.context(bus=bus, gate=gate))
        reporters = two_reporters(spine) if two else []
        records["P11"] = execute(ObsGovClosed(), spine.context(bus=bus, gate=gate))
        evidence = spine.folders.evidence_dir(spine.run_id)
        docs = {k: json.loads((evidence / spine.registry.text(k)).read_text())
                for k in ("CASE_EVIDENCE_PATH_PATTERN", "LABEL_EVIDENCE_PATH_PATTERN", "DECISION_LANE_EVIDENCE_PATH_PATTERN",
                          "RECONCILIATION_PATH_PATTERN", "RUN_CLOSURE_MARKER_PATH_PATTERN", "RUN_REPORT_PATH_PATTERN")}
        validate = runner.invoke(app, ["evidence", "validate", str(evidence)])
        recon_path = evidence / spine.registry.text("RECONCILIATION_PATH_PATTERN")
        tampered = json.loads(recon_path.read_text())
        tampered["hops"][0]["terms"]["ADMIT"] -= 1  # a closure file edited after run_completed pinned it
        recon_path.write_text(json.dumps(tampered))
        after_tamper = runner.invoke(app, ["evidence", "validate", str(evidence)])
        local_report = spine.folders.run_dir(spine.run_id) / spine.registry.text("LOCAL_PLATFORM_RUN_REPORT_PATH_PATTERN")
        html = evidence / spine.registry.text("RUN_REPORT_HTML_PATH_PATTERN")
        report_cli = runner.invoke(app, ["report"])
        governance = spine.settings.bucket("S3_EVIDENCE_BUCKET").get(
            spine.registry.render("GOVERNANCE_EVENTS_KEY_PATTERN", platform_run_id=spine.run_id)).decode().splitlines()
    finally:
        spine_down(spine, ("case_labels", LANE))
    return {"records": records, "docs": docs, "validate": validate, "local_report": local_report.is_file(), "html": html,
            "report_cli": report_cli,
            "reporters": reporters, "after_tamper": after_tamper, "governance": [json.loads(line) for line in governance]}


@pytest.mark.slow
def test_p9_to_p11_pass_on_both_buses_with_spine_green_and_the_same_digests(spine_workdir: Path) -> None:
    results = {}
    for bus in ("kinesis", "kafka"):
        out = run_to_p11(bus, two=bus == "kafka")
        records, docs = out["records"], out["docs"]
        for phase_id, record in records.items():
            assert record["state"] == "PASS", (phase_id, record)
        assert [j["component"] for j in records["P10"]["jobs"]] == ["ls_bank_view_intake", "case_labels_committed"]
        assert [j["component"] for j in records["P11"]["jobs"]] == ["reporter"]
        cases, labels = docs["CASE_EVIDENCE_PATH_PATTERN"], docs["LABEL_EVIDENCE_PATH_PATTERN"]
        counts = cases["counts"]
        assert counts["triggers_published"] == counts["triggers_processed"] > 0 and cases["cases_missing"] == 0
        assert counts["cases"] == cases["timeline_events_by_kind"]["case_opened"]  # one case per triggered subject
        assert labels["counts"]["assertions_appended"] > 0
        assert cases["health"] == labels["health"] == "GREEN"
        recon, marker, report = (docs["RECONCILIATION_PATH_PATTERN"], docs["RUN_CLOSURE_MARKER_PATH_PATTERN"],
                                 docs["RUN_REPORT_PATH_PATTERN"])
        assert recon["status"] == "PASS" and recon["failed_hops"] == [], recon
        assert {h["hop_kind"] for h in recon["hops"]} >= {"wsp_to_ig", "topic_to_consumer", "cases_to_labels"}
        assert marker["status"] == "SPINE_GREEN", marker["conditions"]
        assert report["status"] == "SPINE_GREEN" and 0 <= report["decision_quality"]["flow"]["alert_rate"] <= 1
        assert out["validate"].exit_code == 0, out["validate"].output
        assert out["local_report"] and out["html"].is_file()
        assert out["report_cli"].exit_code == 0 and "SPINE_GREEN" in out["report_cli"].output, out["report_cli"].output
        if bus == "kinesis":  # the run's own HTML report, in headless Chromium: no console line, the run's numbers
            loaded = load(out["html"], spine_workdir)
            assert loaded.console == [] and "data-js-errors" not in loaded.root
            assert records["P11"]["platform_run_id"] in loaded.dom and ratio(report["decision_quality"]["flow"]["alert_rate"]) in loaded.dom
        assert out["after_tamper"].exit_code != 0 and "reconciliation.json" in out["after_tamper"].output
        assert [e["kind"] for e in out["governance"]].count("RUN_CLOSED") == 1  # one closure, appended once
        if bus == "kafka":  # two reporters started together: exactly one closed the run, the other was refused
            assert sorted(out["reporters"]) == [(0, ""), (1, "REPORTER_LOCK_HELD")], out["reporters"]
        results[bus] = (docs["DECISION_LANE_EVIDENCE_PATH_PATTERN"].get("decision_digest"), cases["case_digest"],
                        labels["label_digest"], counts, labels["assertions_by_source"],
                        {h["hop"].replace(f"-{records['P11']['platform_run_id']}", ""): h["observed"] for h in recon["hops"]})
    assert results["kinesis"] == results["kafka"], results
