"""`fp evidence validate`: check a whole evidence bundle and list every violation.

Checks: each file parses and matches its schema; every file names the same platform_run_id and
at most one scenario_run_id; each phase that claims PASS has its required files and the sha256
it recorded for each still matches; run.json's config digest matches its config; a run that
claims SPINE_GREEN has a PASS record for every phase P0..P11.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_digest, sha256_hex
from runtime.contracts.registry import Registry
from runtime.evidence.catalog import SPINE_PHASES, EvidenceFile, relative_paths, required_for
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
    _check_ids(report, documents)
    _check_phases(report, documents, raw, registry)
    _check_run_header(report, documents, registry)
    return report


def _check_ids(report: BundleReport, documents: dict[str, dict[str, Any]]) -> None:
    run_ids = {d.get("platform_run_id") for d in documents.values()}
    if len(run_ids) == 1:
        only = next(iter(run_ids))
        report.platform_run_id = str(only) if only is not None else None
    else:
        for relative, d in sorted(documents.items()):
            report.violations.append(Violation(relative, f"platform_run_id {d.get('platform_run_id')!r} differs across the bundle"))
    scenario_ids = {d["scenario_run_id"] for d in documents.values() if d.get("scenario_run_id")}
    if len(scenario_ids) > 1:
        report.violations.append(Violation("(bundle)", f"several scenario_run_id values: {sorted(scenario_ids)}"))


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
