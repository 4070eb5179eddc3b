"""P11 OBS_GOV_CLOSED as a phase: it runs the reporter job through the component map, collects the
closure files, copies the report and conformance to the local run folder, and passes only when the
closure holds; a hop that does not reconcile, an edited offset snapshot or a missing marker fails it
naming what broke.

The compute backend is a stand-in that writes what the reporter would have written (the documents
of tests/runtime/obs/samples.py); the reporter itself runs on seeded tables in
tests/runtime/obs/test_close.py and on the spine in tests/e2e/test_spine_green.py."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.compute.port import JobResult, PackState
from controller.phases.base import RunContext, execute
from controller.phases.machine import PACKS_FOR_PHASE, PHASES
from controller.phases.p11_obs_gov_closed import ObsGovClosed
from controller.runs import RunFolders
from runtime.components import component
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore
from tests.runtime.obs import samples

RUN = samples.RUN
REG = load_registry("local_parity")
KEYS = {"reconciliation.json": "RECONCILIATION_PATH_PATTERN", "replay_anchors.json": "REPLAY_ANCHORS_PATH_PATTERN",
        "obs/environment_conformance.json": "ENV_CONFORMANCE_PATH_PATTERN",
        "obs/anomaly_summary.json": "ANOMALY_SUMMARY_PATH_PATTERN", "run_report.json": "RUN_REPORT_PATH_PATTERN",
        "run_completed.json": "RUN_CLOSURE_MARKER_PATH_PATTERN"}


class _Backend:
    """Records the jobs and pack stops asked for; the reporter job writes `docs` (None: it wrote
    nothing); the obs_gov pack runs for `obs_gov_scope` (None: stopped)."""

    def __init__(self, writer: EvidenceWriter, docs: dict[str, dict[str, Any]] | None):
        self.writer, self.docs = writer, docs
        self.calls: list[tuple[str, ...]] = []
        self.obs_gov_scope: str | None = None

    def run_job(self, name: str, argv: list[str], run_id: str, **_: Any) -> JobResult:
        self.calls.append((name, *argv))
        for path, doc in (self.docs or {}).items():
            self.writer.write(KEYS[path], doc)
        return JobResult(name, 0, "local")

    def pack_state(self, pack: str) -> PackState:
        running = pack == "obs_gov" and self.obs_gov_scope is not None
        return PackState(pack=pack, pack_id=f"local_parity_{pack}_v0", state="RUNNING" if running else "STOPPED",
                         run_scope=self.obs_gov_scope if running else None, desired_count=2 if running else 0,
                         running_count=2 if running else 0)

    def stop_pack(self, pack: str, **_: Any) -> bool:
        self.calls.append(("stop_pack", pack))
        was, self.obs_gov_scope = self.obs_gov_scope, None
        return was is not None


def _ctx(tmp_path: Path, docs: dict[str, dict[str, Any]] | None) -> tuple[RunContext, _Backend]:
    folders = RunFolders(tmp_path / "runs")
    writer = EvidenceWriter(REG, RUN, [BundleTarget(FolderStore(folders.evidence_dir(RUN)), "")])
    ctx = RunContext(REG, RUN, folders, writer, None, {"gate": 200})
    backend = _Backend(writer, docs)
    ctx.backend = backend  # type: ignore[assignment]
    return ctx, backend


def _docs(change: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> dict[str, dict[str, Any]]:
    """The closure of a sound run, `change` applied before run_completed pins the others."""
    docs = samples.closure_documents()
    if change is not None:
        docs = {p: copy.deepcopy(d) for p, d in docs.items() if p != "run_completed.json"}
        change(docs)
        docs["run_completed.json"] = samples.run_completed(docs)
    return docs


def _break_hop(docs: dict[str, dict[str, Any]]) -> None:
    recon = docs["reconciliation.json"]
    hop = next(h for h in recon["hops"] if h["hop"] == "consumer_to_decisions")
    hop.update(observed=199, terms={"decisions": 199}, difference=1, holds=False, ok=False,
               explanation={"reason": "UNEXPLAINED: no known cause accounts for the difference", "accounts_for": 0})
    recon.update(status="FAIL", failed_hops=["consumer_to_decisions"])
    report = docs["run_report.json"]["reconciliation"]
    report.update(status="FAIL", failed_hops=["consumer_to_decisions"])


def _edit_snapshot(docs: dict[str, dict[str, Any]]) -> None:
    docs["replay_anchors.json"]["consistent_with"] = [{
        "path": "ingest/kafka_offsets_snapshot.json", "sha256": "1" * 64, "consistent": False,
        "detail": "fp.bus.traffic.fraud.v1[0]: snapshot ('0', '150'), anchor ('0', '199')"}]


def test_p11_is_the_reporter_phase_of_the_machine_and_owns_the_obs_gov_pack() -> None:
    assert isinstance(PHASES["P11"](), ObsGovClosed) and PACKS_FOR_PHASE["P11"] == ("obs_gov",)
    reporter = component("reporter")
    assert reporter.argv == ("reporter", "close") and reporter.app == "runtime.obs.cli:app"
    assert (reporter.ecs_key, reporter.role_key) == ("TD_REPORTER", "ROLE_REPORTER_SINGLE_WRITER")
    assert reporter.runs(["ig", "ready-check", "--platform-run-id", RUN])  # P4/P7's in-network checks stay on its task


def test_p11_runs_the_reporter_and_passes_on_a_sound_closure_with_the_local_copies(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    record = execute(ObsGovClosed(), ctx)
    assert record["state"] == "PASS"
    assert backend.calls == [("reporter", "reporter", "close", "--platform-run-id", RUN)]
    assert {e["path"] for e in record["evidence"]} == set(KEYS) | {REG.text("CLOSE_INPUTS_PATH_PATTERN")}
    assert {c["name"] for c in record["gate"]} == {"closure_marker_written", "every_hop_reconciles",
                                                    "replay_anchors_consistent", "environment_conformance_pass"}
    run_dir = ctx.folders.run_dir(RUN)
    local = json.loads((run_dir / REG.text("LOCAL_PLATFORM_RUN_REPORT_PATH_PATTERN")).read_text())
    assert local == samples.closure_documents()["run_report.json"]


@pytest.mark.parametrize(("change", "check", "named"), [
    (_break_hop, "every_hop_reconciles", "consumer_to_decisions"),
    (_edit_snapshot, "replay_anchors_consistent", "ingest/kafka_offsets_snapshot.json"),
])
def test_p11_fails_naming_the_hop_or_snapshot_that_does_not_hold(tmp_path: Path, change: Callable[..., None], check: str,
                                                                  named: str) -> None:
    ctx, _ = _ctx(tmp_path, _docs(change))
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)
    assert e.value.code == "OBS_GOV_CLOSED_GATE_FAILED"
    assert e.value.message.startswith(f"{check}:") and named in e.value.message
    record = json.loads((ctx.folders.evidence_dir(RUN) / "phases/P11.json").read_text())
    assert record["state"] == "FAIL" and named in record["message"]


def test_p11_without_the_reporters_files_does_not_pass(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path, None)
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)
    assert e.value.code == "OBS_GOV_CLOSED_GATE_FAILED" and "run_completed missing" in e.value.message


def test_p11_stops_this_runs_obs_gov_pack_before_the_reporter_closes(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    ctx.options["packs"] = ["control_ingress", "obs_gov"]
    backend.obs_gov_scope = RUN
    record = execute(ObsGovClosed(), ctx)
    assert record["state"] == "PASS"
    assert backend.calls == [("stop_pack", "obs_gov"), ("reporter", "reporter", "close", "--platform-run-id", RUN)]
    stopped = next(c for c in record["gate"] if c["name"] == "obs_gov_stopped_before_close")
    assert stopped["ok"] and "RUNNING -> STOPPED" in stopped["detail"]


def test_p11_rerun_beside_the_reporter_daemon_is_refused_with_lock_held(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    ctx.options.update(packs=["obs_gov"], rerun_only="P11")
    backend.obs_gov_scope = RUN
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)
    assert e.value.code == "REPORTER_LOCK_HELD" and "stop the obs_gov pack" in e.value.next_step
    assert backend.calls == []  # neither stopped nor closed: the operator decides
    record = json.loads((ctx.folders.evidence_dir(RUN) / "phases/P11.json").read_text())
    assert record["state"] == "FAIL" and record["error_code"] == "REPORTER_LOCK_HELD"


def test_p11_leaves_an_obs_gov_pack_of_another_run_alone(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    ctx.options.update(packs=["obs_gov"], rerun_only="P11")
    backend.obs_gov_scope = "platform_20261123T130000Z"
    assert execute(ObsGovClosed(), ctx)["state"] == "PASS"
    assert backend.calls == [("reporter", "reporter", "close", "--platform-run-id", RUN)]


def test_p11_writes_the_close_inputs_before_the_reporter_a_local_window_costing_explicitly_nothing(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    for phase, started in (("P(-1)", "2026-11-23T11:58:00Z"), ("P1", "2026-11-23T12:00:00Z")):
        ctx.writer.write("PHASE_RECORD_PATH_PATTERN", {**ctx.writer.base_fields(phase, ["PHASE_RECORD_PATH_PATTERN"]),
                                                       "name": phase, "state": "PASS", "attempt": 1, "started_at_utc": started,
                                                       "ended_at_utc": started, "evidence": [], "bounded_gate": 200},
                         phase_id=phase)
    seen: list[dict[str, Any] | None] = []
    run_job = backend.run_job
    backend.run_job = lambda *a, **k: (seen.append(ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN")), run_job(*a, **k))[1]  # type: ignore[method-assign]
    assert execute(ObsGovClosed(), ctx)["state"] == "PASS"
    inputs = seen[0]
    assert inputs is not None and inputs["task_definitions"] is None  # local processes: no task definitions
    cost = inputs["window_cost"]
    assert (cost["total"], cost["basis"], cost["by_resource"]) == (0, "local substrate: no billed resources", [])
    assert cost["window_start_utc"] == "2026-11-23T11:58:00Z"  # the run's first phase record opens the window


def test_p11_rerun_of_a_closed_run_keeps_the_close_inputs_its_closure_used(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path, _docs())
    assert execute(ObsGovClosed(), ctx)["state"] == "PASS"
    first = ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN")
    record = execute(ObsGovClosed(), ctx)
    assert record["state"] == "PASS" and ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN") == first
    assert REG.text("CLOSE_INPUTS_PATH_PATTERN") in {e["path"] for e in record["evidence"]}


def test_p11_after_a_reporter_closed_the_run_outside_it_records_its_close_inputs_and_passes(tmp_path: Path) -> None:
    # `reporter close` run by hand (or the second of two reporters) closes the run without P11's inputs
    ctx, _ = _ctx(tmp_path, _docs())
    for path, doc in _docs().items():
        ctx.writer.write(KEYS[path], doc)
    assert ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN") is None
    record = execute(ObsGovClosed(), ctx)
    assert record["state"] == "PASS", record
    assert ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN")["window_cost"]["total"] == 0
