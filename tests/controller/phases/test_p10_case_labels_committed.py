"""P10 CASE_LABELS_COMMITTED as a phase: it starts the case_labels pack when it is not running for the run,
runs LS's bank view intake before the gate job, and passes only on the evidence the gate job wrote.

The compute backend is a stand-in that records what the phase asked and writes what the jobs would
have written; the jobs themselves are tested in tests/runtime/case/test_committed.py and on the
spine in tests/e2e/test_spine_green.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.compute.port import JobResult, PackState
from controller.phases.base import RunContext, execute
from controller.phases.machine import PACKS_FOR_PHASE, PHASES
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from controller.runs import RunFolders
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore
from tests.runtime.case.test_summaries import CASE_GATE, LABEL_GATE, _case_doc, _label_doc

RUN = "platform_20261123T120000Z"
REG = load_registry("local_parity")


class _Backend:
    """Records the phase's calls; the gate job writes `docs` (none: it wrote nothing)."""

    def __init__(self, writer: EvidenceWriter, docs: dict[str, dict[str, Any]] | None, running: bool):
        self.writer, self.docs, self.running = writer, docs, running
        self.calls: list[tuple[str, ...]] = []

    def pack_state(self, pack: str) -> PackState:
        return PackState(pack, pack, "RUNNING" if self.running else "STOPPED", RUN if self.running else None,
                         1, 1 if self.running else 0)

    def start_pack(self, pack: str, run_id: str, progress: Callable[[str], None] | None = None) -> PackState:
        self.calls.append(("start_pack", pack, run_id))
        self.running = True
        return self.pack_state(pack)

    def run_job(self, component: str, argv: list[str], run_id: str, **_: Any) -> JobResult:
        self.calls.append(("job", component, *argv))
        if component == "case_labels_committed" and self.docs:
            for key, doc in self.docs.items():
                self.writer.write(key, doc)
        return JobResult(component, 0, "local")


def _ctx(tmp_path: Path, docs: dict[str, dict[str, Any]] | None, *, running: bool = True) -> tuple[RunContext, _Backend]:
    folders = RunFolders(tmp_path / "runs")
    writer = EvidenceWriter(REG, RUN, [BundleTarget(FolderStore(folders.evidence_dir(RUN)), "")])
    ctx = RunContext(REG, RUN, folders, writer, None, {"gate": 20})
    backend = _Backend(writer, docs, running)
    ctx.backend = backend  # type: ignore[assignment]
    return ctx, backend


def _docs(**changes: Any) -> dict[str, dict[str, Any]]:
    cases = {**_case_doc(), "platform_run_id": RUN}
    labels = {**_label_doc(), "platform_run_id": RUN}
    for key, value in changes.items():
        target, field = key.split("__")
        (cases if target == "cases" else labels)[field] = value
    return {"CASE_EVIDENCE_PATH_PATTERN": cases, "LABEL_EVIDENCE_PATH_PATTERN": labels}


def test_p10_is_the_case_labels_phase_of_the_machine_on_the_case_labels_pack() -> None:
    assert isinstance(PHASES["P10"](), CaseLabelsCommitted) and PACKS_FOR_PHASE["P10"] == ("case_labels",)


def test_p10_runs_the_intake_then_the_gate_job_and_passes_on_their_evidence(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs())
    record = execute(CaseLabelsCommitted(), ctx)
    assert record["state"] == "PASS"
    assert backend.calls == [("job", "ls_bank_view_intake", "ls", "ingest-bank-view", "--platform-run-id", RUN),
                             ("job", "case_labels_committed", "case", "committed", "--platform-run-id", RUN)]
    assert {e["path"] for e in record["evidence"]} == {"case_labels/case_summary.json", "case_labels/label_summary.json"}
    assert {c["name"] for c in record["gate"]} == {"triggers_present", "every_subject_has_its_case", "labels_present",
                                                    "health_green", "dead_letters_explained", "digests"}


def test_p10_of_a_run_whose_pack_is_not_running_starts_it_first(tmp_path: Path) -> None:
    ctx, backend = _ctx(tmp_path, _docs(), running=False)
    execute(CaseLabelsCommitted(), ctx)
    assert backend.calls[0] == ("start_pack", "case_labels", RUN)


def test_p10_without_the_gate_jobs_evidence_does_not_pass(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path, None)
    with pytest.raises(PlatformError) as e:
        execute(CaseLabelsCommitted(), ctx)
    assert e.value.code == "CASE_LABELS_COMMITTED_GATE_FAILED"
    record = json.loads((ctx.folders.evidence_dir(RUN) / "phases/P10.json").read_text())
    assert record["state"] == "FAIL" and record["next_step"]


@pytest.mark.parametrize(("changes", "check"), [
    ({"cases__health_by_component": {**CASE_GATE["health_by_component"], "cm": "AMBER"}}, "health_green"),
    ({"labels__dead_letters": {**LABEL_GATE["dead_letters"], "total": 1, "by_component": {"ls": 1},
                               "by_code": {"LABEL_CONFLICT": 1}}}, "dead_letters_explained"),
    ({"cases__cases_missing": 2}, "every_subject_has_its_case"),
])
def test_p10_names_the_failing_check(tmp_path: Path, changes: dict[str, Any], check: str) -> None:
    ctx, _ = _ctx(tmp_path, _docs(**changes))
    with pytest.raises(PlatformError) as e:
        execute(CaseLabelsCommitted(), ctx)
    assert e.value.code == "CASE_LABELS_COMMITTED_GATE_FAILED" and e.value.message.startswith(f"{check}:")
