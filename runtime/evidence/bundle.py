"""`fp evidence validate`: check a whole evidence bundle and list every violation.

Checks: each file parses and matches its schema; the bundle's platform_run_id (and
scenario_run_id) is the one most files name, and a file naming another (or none) is blamed,
not the good ones; the phases follow seed 003's order (P(-1), P0, P1..P11): a phase that has a
record needs a PASS record of every phase before it, so a deleted record or a PASS after a FAIL
is caught (P12, the teardown, needs only P0); every evidence file of the catalogue is vouched for
by its phase's record, and each phase that claims PASS has its required files with the sha256 it
recorded; run.json's config digest matches its config; the arithmetic each file promises holds
(runtime/evidence/promises.py); a run that claims SPINE_GREEN has a PASS record for every phase
P0..P11.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_digest, sha256_hex
from runtime.contracts.registry import Registry
from runtime.evidence import promises
from runtime.evidence.catalog import PHASES, SPINE_PHASES, EvidenceFile, relative_paths, required_for
from runtime.evidence.writer import schema_violations
from runtime.store.port import ObjectStore

_PHASE_RECORD = re.compile(r"^phases/(P\(-1\)|P\d{1,2})\.json$")


@dataclass(frozen=True)
class Violation:
    """One problem of the bundle, at a bundle-relative path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class BundleReport:
    """The result of validating a bundle."""

    location: str
    platform_run_id: str | None = None
    files: list[str] = field(default_factory=list)
    #: Phase id -> state of its record, in seed 003's order (P(-1) first).
    phases: dict[str, str] = field(default_factory=dict)
    unknown_files: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.violations


def validate_bundle(store: ObjectStore, prefix: str, registry: Registry) -> BundleReport:
    """Validate every evidence file under `prefix` of `store`."""
    report = BundleReport(location=store.uri(prefix))
    catalog = relative_paths(registry)
    raw: dict[str, bytes] = {}
    for info in store.list(prefix):
        relative = info.key[len(prefix):]
        if relative.endswith(".json"):
            raw[relative] = store.get(info.key)
    report.files = sorted(raw)
    if not raw:
        report.violations.append(Violation("(bundle)", "no evidence files found"))
        return report
    documents: dict[str, dict[str, Any]] = {}
    for relative, data in sorted(raw.items()):
        try:
            document = json.loads(data)
        except ValueError as e:
            report.violations.append(Violation(relative, f"not valid JSON: {e}"))
            continue
        if not isinstance(document, dict):
            report.violations.append(Violation(relative, "not a JSON object"))
            continue
        documents[relative] = document
        spec: EvidenceFile | None = catalog.get(relative)
        schema_file = "evidence/phase_record.schema.json" if _PHASE_RECORD.match(relative) else spec.schema_file if spec else None
        if schema_file is None:
            report.unknown_files.append(relative)
            continue
        for problem in schema_violations(schema_file, document):
            report.violations.append(Violation(relative, f"schema: {problem}"))
        if spec and document.get("phase_id") != spec.phase:
            report.violations.append(Violation(relative, f"phase_id {document.get('phase_id')!r}, expected {spec.phase}"))
    _check_ids(report, documents, registry)
    _check_phases(report, documents, raw, registry)
    report.phases = dict(sorted(report.phases.items(), key=lambda kv: phase_order(kv[0])))
    _check_order(report)
    _check_vouched(report, documents, catalog)
    _check_promises(report, documents, catalog, registry)
    _check_run_header(report, documents, registry)
    report.violations = _unique(report.violations)
    return report


def phase_order(phase_id: str) -> int:
    """Position of a phase in seed 003's order (P(-1) first); unknown ids sort last."""
    return PHASES.index(phase_id) if phase_id in PHASES else len(PHASES)


def _unique(violations: list[Violation]) -> list[Violation]:
    seen: set[Violation] = set()
    out = []
    for v in violations:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _majority(values: dict[str, Any], preferred: Any = None) -> tuple[Any, bool]:
    """The value most files name, and whether it is a clear winner (a tie is broken by `preferred`,
    the run header's value, when it is among the tied)."""
    ranked = Counter(values.values()).most_common()
    if not ranked:
        return None, True
    top = [value for value, n in ranked if n == ranked[0][1]]
    if len(top) == 1:
        return top[0], True
    if preferred is not None and preferred in top:
        return preferred, True
    return None, False


def _check_ids(report: BundleReport, documents: dict[str, dict[str, Any]], registry: Registry) -> None:
    """The run id most files name is the bundle's; a file naming another, or none, is the odd one."""
    run_header = documents.get(registry.text("EVIDENCE_RUN_JSON_KEY")) or {}
    run_ids = {relative: d.get("platform_run_id") for relative, d in documents.items()}
    winner, clear = _majority(run_ids, run_header.get("platform_run_id"))
    if not clear:
        counts = Counter(map(repr, run_ids.values()))
        for relative, value in sorted(run_ids.items()):
            report.violations.append(Violation(relative, f"platform_run_id {value!r}: the bundle has no majority run id ({dict(counts)})"))
        return
    report.platform_run_id = str(winner) if winner is not None else None
    agreeing = sum(1 for v in run_ids.values() if v == winner)
    for relative, value in sorted(run_ids.items()):
        if value != winner:
            named = f"names platform_run_id {value!r}" if value is not None else "names no platform_run_id"
            report.violations.append(Violation(relative, f"{named}, but {agreeing} of {len(run_ids)} files name {winner}: "
                                                         "this file is not of this run"))
    scenario_ids = {relative: d["scenario_run_id"] for relative, d in documents.items() if d.get("scenario_run_id")}
    scenario, clear = _majority(scenario_ids)
    for relative, value in sorted(scenario_ids.items()):
        if not clear or value != scenario:
            report.violations.append(Violation(relative, f"scenario_run_id {value} differs from the bundle's "
                                                         f"({sorted(set(scenario_ids.values()))})"))


def _check_phases(report: BundleReport, documents: dict[str, dict[str, Any]], raw: dict[str, bytes], registry: Registry) -> None:
    for relative, document in sorted(documents.items()):
        match = _PHASE_RECORD.match(relative)
        if not match:
            continue
        phase_id = match.group(1)
        state = str(document.get("state"))
        report.phases[phase_id] = state
        if document.get("phase_id") != phase_id:
            report.violations.append(Violation(relative, f"record of {document.get('phase_id')!r} stored as {phase_id}"))
        if state != "PASS":
            continue
        for spec in required_for(phase_id):
            path = registry.text(spec.path_key)
            if path not in raw:
                report.violations.append(Violation(relative, f"{phase_id} claims PASS but {path} is missing"))
        for item in document.get("evidence", []):
            path, digest = item.get("path"), item.get("sha256")
            if path not in raw:
                report.violations.append(Violation(relative, f"lists {path} which is not in the bundle"))
            elif sha256_hex(raw[path]) != digest:
                report.violations.append(Violation(str(path), f"sha256 differs from the one {phase_id} recorded (changed after PASS)"))


def _check_order(report: BundleReport) -> None:
    """Seed 003's phases are linear: the machine starts a phase only after every earlier one
    PASSed, so each phase that has a record needs a PASS record of every phase before it (a
    deleted record or a PASS after a FAIL breaks this). P12, the teardown, may follow any
    outcome; it needs a P0 record (something was brought up)."""
    recorded = sorted(report.phases, key=phase_order)
    for phase_id in recorded:
        state = report.phases[phase_id]
        if phase_id == "P12":
            if "P0" not in report.phases:
                report.violations.append(Violation("phases/P0.json", f"missing: P12 has a record ({state}) and tears down "
                                                                     "what P0 brought up"))
            continue
        for needed in PHASES[: PHASES.index(phase_id)]:
            before = report.phases.get(needed)
            if before is None:
                report.violations.append(Violation(f"phases/{needed}.json", f"missing: {phase_id} has a record ({state}) "
                                                                             f"and depends on {needed}"))
            elif before != "PASS":
                report.violations.append(Violation(f"phases/{phase_id}.json", f"says {state} but {needed} before it is {before}: "
                                                                               f"a phase starts only after every earlier one PASSed"))


def _check_vouched(report: BundleReport, documents: dict[str, dict[str, Any]], catalog: dict[str, EvidenceFile]) -> None:
    """Every catalogued evidence file is vouched for by its phase's record: listed with its sha256
    by a PASS, or left by a phase that did not pass. A file whose phase has no record is blamed."""
    listed: dict[str, set[str]] = {}
    for relative, document in documents.items():
        match = _PHASE_RECORD.match(relative)
        if match:
            listed[match.group(1)] = {str(e.get("path")) for e in document.get("evidence", []) if isinstance(e, dict)}
    for relative in sorted(documents):
        spec = catalog.get(relative)
        if spec is None or spec.phase == "*":
            continue
        state = report.phases.get(spec.phase)
        if state is None:
            report.violations.append(Violation(relative, f"belongs to {spec.phase} but phases/{spec.phase}.json is missing: "
                                                         "nothing vouches for this file"))
        elif state == "PASS" and relative not in listed.get(spec.phase, set()):
            report.violations.append(Violation(relative, f"{spec.phase} PASSed without recording this file's sha256: "
                                                         "it was added after the phase"))


def _check_promises(report: BundleReport, documents: dict[str, dict[str, Any]], catalog: dict[str, EvidenceFile],
                    registry: Registry) -> None:
    """The arithmetic each file promises, and what each PASS promises of its evidence."""
    for relative, document in sorted(documents.items()):
        spec = catalog.get(relative)
        check = promises.phase_record if _PHASE_RECORD.match(relative) else promises.FILE_PROMISES.get(spec.schema) if spec else None
        if check is not None:
            report.violations.extend(Violation(path, message) for path, message in check(relative, document, documents, registry))
    for phase_id, state in report.phases.items():
        pass_check = promises.PASS_PROMISES.get(phase_id)
        if state == "PASS" and pass_check is not None:
            report.violations.extend(Violation(path, message) for path, message in pass_check(documents, registry))


def _check_run_header(report: BundleReport, documents: dict[str, dict[str, Any]], registry: Registry) -> None:
    run = documents.get(registry.text("EVIDENCE_RUN_JSON_KEY"))
    if run and isinstance(run.get("config"), dict) and run.get("config_digest") != canonical_digest(run["config"]):
        report.violations.append(Violation(registry.text("EVIDENCE_RUN_JSON_KEY"), "config_digest does not match the config payload"))
    completed = documents.get(registry.text("RUN_CLOSURE_MARKER_PATH_PATTERN"))
    if completed and completed.get("status") == "SPINE_GREEN":
        for phase_id in SPINE_PHASES:
            if report.phases.get(phase_id) != "PASS":
                report.violations.append(Violation(registry.text("RUN_CLOSURE_MARKER_PATH_PATTERN"),
                                                   f"claims SPINE_GREEN but {phase_id} has no PASS record"))
