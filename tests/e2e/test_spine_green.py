"""The whole spine on the embedded substrate, once per local bus: `fp dev-min-up`, `fp dev-min-run`
(P1..P11 at a bounded gate), the live checks while the packs still run, `fp dev-min-down`, then the
evidence bundle. One run per bus carries every end-to-end promise of P1..P11, so CI pays for two
spine runs instead of one pair per plane:

- P1..P7: every phase passes; emitted == admitted less the P4 smoke event; the topics hold them;
  the archive writer archived every admitted record once.
- P8: the live OFP, IEG and CSFB state equals the pure domains fed the run's records read back from
  the bus (row for row), and the state digest is the same on both buses.
- P9: every admitted traffic event has exactly one decision, every intent one effect, no lineage
  break; the summaries agree with the database; the decision digest is the same on both buses.
- P10: triggers published == processed, one case per triggered subject, labels asserted, the case
  and label digests the same on both buses.
- P11: the run closes SPINE_GREEN and the bundle validates (the closure claim included).
- P12: teardown leaves no process behind.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.factory import backend_for
from controller.runs import RunFolders
from controller.substrate.local import settings_for
from controller.substrate.processes import is_running
from controller.substrate.state import SubstrateState, read_state, state_dir
from runtime.contracts.registry import Registry, load_registry
from runtime.db.postgres import connect
from runtime.decision.al.store import action_counts
from runtime.decision.df.store import admitted_without_decision, decision_counts, run_decision_digest
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.obs.report_html import ratio
from runtime.rtdl.events import TRAFFIC_CLASSES
from tests.runtime.obs.test_report_html import load
from tests.support.rtdl_drill import drill_context, live_against_pure

runner = CliRunner()
GATE = 20
P11_FILES = ("RECONCILIATION_PATH_PATTERN", "RUN_CLOSURE_MARKER_PATH_PATTERN", "RUN_REPORT_PATH_PATTERN")


def patient_decisions(wait_ms: int = 30_000, ladder_ms: int = 250) -> None:
    """Give DF a wait for its inputs no loaded CI machine runs out of, and DL a quick judgement. The
    promise here is that the same events decided on complete inputs and the same posture give the
    same records on both buses. With the registry's 2 s wait a stalled CSFB on a busy 2-core machine
    makes DF decide CONTEXT_MISSING on one bus only. With the registry's 1 s ladder, a RED judgement
    under load (worsening is at once) or the first observation before the workers' health exists
    (AMBER) holds for 3-6 s while it recovers one level per 3 ticks: once in CI the whole Kinesis
    stream was decided RED inside such a window (4 posture changes, GREEN again by P10), Kafka's
    GREEN. 250 ms ticks recover in 0.75-1.5 s (faster would load moto's Kinesis: each tick's bus
    probe reads the traffic shards). The degrade path has its own drill
    (tests/e2e/test_decision_degrade_drill.py)."""
    path = Path(os.environ["FP_HANDLES_REGISTRY"])
    text = path.read_text(encoding="utf-8")
    for key, value in (("DF_INPUT_WAIT_MS", wait_ms), ("DL_EVAL_INTERVAL_MS", ladder_ms)):
        assert re.search(rf"{key}: \d+", text), key
        text = re.sub(rf"{key}: \d+", f"{key}: {value}", text)
    path.write_text(text, encoding="utf-8")


def lane_state(dsn: str, run_id: str) -> dict[str, Any]:
    """What the decision lane left in the database for the run."""
    with connect(dsn) as conn:
        per_event = conn.execute("SELECT count(*), count(DISTINCT (event_class, event_id)) FROM df_decisions"
                                 " WHERE platform_run_id = %s", (run_id,)).fetchone()
        intents = sum(len(r["actions"]) for (r,) in conn.execute(
            "SELECT record FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchall())
        return {"undecided": admitted_without_decision(conn, run_id, TRAFFIC_CLASSES), "counts": decision_counts(conn, run_id),
                "per_event": tuple(per_event or ()), "intents": intents, "executed": action_counts(conn, run_id).executed,
                "lineage_unresolved_total": lineage_unresolved_total(conn, run_id), "digest": run_decision_digest(conn, run_id),
                "postures": [tuple(r) for r in conn.execute(  # what a failed comparison of the buses prints
                    "SELECT seq, posture, reasons, at_utc::text FROM dl_posture_history WHERE platform_run_id = %s ORDER BY seq",
                    (run_id,)).fetchall()]}


def two_reporters(registry: Registry, substrate: SubstrateState, folders: RunFolders, run_id: str) -> list[tuple[int, str]]:
    """`reporter close` started twice at once (a second operator, a retried task): each one's exit
    code and the error code it failed with, if any."""
    backend = backend_for(registry, runs_root=folders.root, environment=substrate.runtime_environment(registry))
    out: list[tuple[int, str]] = []

    def one() -> None:
        result = backend.run_job("reporter", ["reporter", "close", "--platform-run-id", run_id], run_id, check=False)
        out.append((result.exit_code, result.failure.code if result.failure else ""))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return out


def run_spine(bus: str) -> dict[str, Any]:
    """Up, the whole run (on kafka: to P10, two reporters at once, then `--from P11`), the live checks
    while the packs run, down, then the bundle read back, validated and tampered with."""
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    folders = RunFolders.from_registry(registry)
    out: dict[str, Any] = {"reporters": []}
    try:
        if bus == "kafka":
            first = runner.invoke(app, ["dev-min-run", "--to", "P10", "--gate", str(GATE)])
            assert first.exit_code == 0, first.output
            out["reporters"] = two_reporters(registry, substrate, folders, folders.active_run_id())
            run = runner.invoke(app, ["dev-min-run", "--from", "P11"])
        else:
            run = runner.invoke(app, ["dev-min-run", "--gate", str(GATE)])
        run_id = folders.active_run_id()
        assert run.exit_code == 0, run.output
        # P8: the live OFP, IEG and CSFB state equals the pure domains fed the run's records read back from the bus.
        _, settings, _ = drill_context()
        out["live"] = live_against_pure(settings, registry, run_id)
        out["lane"] = lane_state(substrate.db_dsn, run_id)
        out["report_cli"] = runner.invoke(app, ["report"])
        governance = settings_for(substrate, registry).bucket("S3_EVIDENCE_BUCKET").get(
            registry.render("GOVERNANCE_EVENTS_KEY_PATTERN", platform_run_id=run_id))
        out["governance"] = [json.loads(line) for line in governance.decode().splitlines()]
    finally:
        down = runner.invoke(app, ["dev-min-down"])
        assert down.exit_code == 0, down.output
    assert all(not is_running(p.pid, p.argv) for p in substrate.processes)
    evidence = folders.evidence_dir(run_id)
    out["run_id"], out["evidence"] = run_id, evidence
    out["validate"] = runner.invoke(app, ["evidence", "validate", str(evidence)])
    out["docs"] = {p.name: json.loads(p.read_text()) for p in evidence.rglob("*.json")}
    out["docs"].update({k: json.loads((evidence / registry.text(k)).read_text()) for k in P11_FILES})
    out["archive_health"] = json.loads((evidence.parent / registry.render("COMPONENT_HEALTH_PATH_PATTERN",
                                                                          component_dir="archive_writer")).read_text())
    out["local_report"] = (folders.run_dir(run_id) / registry.text("LOCAL_PLATFORM_RUN_REPORT_PATH_PATTERN")).is_file()
    out["html"] = evidence / registry.text("RUN_REPORT_HTML_PATH_PATTERN")
    recon = evidence / registry.text("RECONCILIATION_PATH_PATTERN")
    tampered = json.loads(recon.read_text())
    tampered["hops"][0]["terms"]["ADMIT"] -= 1  # a closure file edited after run_completed pinned it
    recon.write_text(json.dumps(tampered))
    out["after_tamper"] = runner.invoke(app, ["evidence", "validate", str(evidence)])
    return out


def check_ingest(out: dict[str, Any], bus: str) -> tuple[Any, ...]:
    """P1..P8: emitted == admitted less the P4 smoke event; the topics hold them; archived once; live == pure."""
    docs = out["docs"]
    wsp, receipts = docs["wsp_summary.json"], docs["receipt_summary.json"]
    emitted = {o["output_id"]: o["emitted"] for o in wsp["per_output"]}
    assert set(emitted.values()) == {GATE}
    by_outcome = receipts["counts"]["by_outcome"]
    assert by_outcome["ADMIT"] == sum(emitted.values()) + 1  # + the P4 publish smoke event
    assert by_outcome["DUPLICATE"] == by_outcome["QUARANTINE"] == by_outcome["ANOMALY"] == by_outcome["PUBLISH_AMBIGUOUS"] == 0
    assert receipts["attempts"] == sum(by_outcome.values())
    ranges = docs["kafka_offsets_snapshot.json"]["offset_ranges"]
    assert len({r["topic"] for r in ranges}) == len(emitted)
    assert {r["offset_kind"] for r in ranges} == {"kafka_offset" if bus == "kafka" else "kinesis_sequence"}
    archive = out["archive_health"]
    assert archive["health_state"] == "GREEN" and archive["lag_total"] == 0
    assert archive["counters"]["archive_records"] == by_outcome["ADMIT"]  # every admitted record, once
    live = out["live"]
    assert live["live_digest"] == live["pure_digest"], json.dumps(live["sections"])[:3000]
    assert all(s["only_live"] == s["only_pure"] == 0 for s in live["sections"].values())
    digest = docs["caught_up.json"]["state_digest"]
    assert len(digest) == 64
    return emitted, receipts["counts"]["by_event_class"], docs["checker_pass.json"]["outputs"], digest


def check_decisions(out: dict[str, Any]) -> tuple[Any, ...]:
    """P9: one decision per admitted traffic event, one effect per intent, no lineage break, summaries == database."""
    lane, docs = out["lane"], out["docs"]
    assert lane["undecided"] == [], lane["undecided"][:5]
    decided, distinct = lane["per_event"]
    assert decided == distinct == lane["counts"].total == GATE
    assert lane["executed"] == lane["intents"] and lane["lineage_unresolved_total"] == 0
    summary, actions, audit = docs["decision_summary.json"], docs["action_summary.json"], docs["audit_summary.json"]
    assert summary["decision_digest"] == lane["digest"] and summary["counts"]["decisions"] == GATE
    assert summary["counts"]["by_outcome"] == {**dict.fromkeys(("APPROVE", "STEP_UP", "REVIEW", "DECLINE"), 0),
                                               **lane["counts"].by_outcome}
    assert actions["counts"]["outcomes"] == lane["intents"] and audit["chain"]["verified"]
    # the posture changes P9 saw, as DL recorded them (DL goes on judging after P9: a prefix)
    history = [(e["seq"], e["posture"], e["reasons"]) for e in summary["posture_history"]]
    assert history and history == [(seq, posture, list(reasons)) for seq, posture, reasons, _ in lane["postures"]][:len(history)]
    assert audit["counts"]["records"] == GATE + 2 * lane["intents"] and audit["lineage_unresolved_total"] == 0
    return lane["digest"], lane["counts"].by_outcome, lane["counts"].by_posture, lane["counts"].by_degrade_reason


def check_cases(out: dict[str, Any]) -> tuple[Any, ...]:
    """P10: triggers published == processed, one case per triggered subject, labels asserted, health GREEN."""
    cases, labels = out["docs"]["case_summary.json"], out["docs"]["label_summary.json"]
    counts = cases["counts"]
    assert counts["triggers_published"] == counts["triggers_processed"] > 0 and cases["cases_missing"] == 0
    assert counts["cases"] == cases["timeline_events_by_kind"]["case_opened"]
    assert labels["counts"]["assertions_appended"] > 0
    assert cases["health"] == labels["health"] == "GREEN"
    return cases["case_digest"], labels["label_digest"], counts, labels["assertions_by_source"]


def check_closure(out: dict[str, Any], bus: str, workdir: Path) -> dict[str, Any]:
    """P11: every hop reconciles, SPINE_GREEN, the bundle and `fp report` say so, a tampered closure file is caught."""
    docs = out["docs"]
    recon, marker, report = (docs[k] for k in P11_FILES)
    assert recon["status"] == "PASS" and recon["failed_hops"] == [], recon
    assert {h["hop_kind"] for h in recon["hops"]} >= {"wsp_to_ig", "topic_to_consumer", "cases_to_labels"}
    assert marker["status"] == "SPINE_GREEN", marker["conditions"]
    assert report["status"] == "SPINE_GREEN" and 0 <= report["decision_quality"]["flow"]["alert_rate"] <= 1
    scored = report["decision_quality"]["decisions"]
    assert scored["scored"] > 0 and scored["undecided"] == 0, scored  # the archived traffic joined the truth
    assert out["validate"].exit_code == 0, out["validate"].output
    assert out["local_report"] and out["html"].is_file()
    assert out["report_cli"].exit_code == 0 and "SPINE_GREEN" in out["report_cli"].output, out["report_cli"].output
    if bus == "kinesis":  # the run's own HTML report in headless Chromium: no console line, the run's numbers
        loaded = load(out["html"], workdir)
        assert loaded.console == [] and "data-js-errors" not in loaded.root
        assert out["run_id"] in loaded.dom and ratio(report["decision_quality"]["flow"]["alert_rate"]) in loaded.dom
    assert out["after_tamper"].exit_code != 0 and "reconciliation.json" in out["after_tamper"].output
    assert [e["kind"] for e in out["governance"]].count("RUN_CLOSED") == 1  # one closure, appended once
    if bus == "kafka":  # two reporters started together: exactly one closed the run, the other was refused
        assert sorted(out["reporters"]) == [(0, ""), (1, "REPORTER_LOCK_HELD")], out["reporters"]
    return {h["hop"].replace(f"-{out['run_id']}", ""): h["observed"] for h in recon["hops"]}


@pytest.mark.slow
def test_the_whole_spine_closes_spine_green_on_both_buses_with_the_same_digests(spine_workdir: Path) -> None:
    patient_decisions()
    results, postures = {}, {}
    for bus in ("kinesis", "kafka"):
        out = run_spine(bus)
        phases = {d["phase_id"]: d["state"] for d in (json.loads(p.read_text()) for p in (out["evidence"] / "phases").glob("*.json"))}
        assert phases == {p: "PASS" for p in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10",
                                              "P11", "P12")}, phases
        results[bus] = (check_ingest(out, bus), check_decisions(out), check_cases(out), check_closure(out, bus, spine_workdir))
        postures[bus] = out["lane"]["postures"]
    assert results["kinesis"] == results["kafka"], (results, postures)
