"""The catalogue of evidence files: where each lives, its schema, its phase, base or derived.

Paths come from the registry's `evidence_paths` handles. Base truth is written once; a derived
summary may be rewritten by its owner (a phase re-run). `required` says the file must exist for
its phase to claim PASS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runtime.contracts.registry import Registry

PHASES: tuple[str, ...] = ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12")
SPINE_PHASES: tuple[str, ...] = PHASES[1:13]  # P0..P11
#: The name of each phase (seed 003; P(-1) from seed 004), for a phase that has no record yet.
PHASE_NAMES: dict[str, str] = {
    "P(-1)": "PACKAGING_READY", "P0": "SUBSTRATE_READY", "P1": "RUN_PINNED", "P2": "DAEMONS_READY", "P3": "ORACLE_READY",
    "P4": "INGEST_READY", "P5": "READY_PUBLISHED", "P6": "STREAMING_ACTIVE", "P7": "INGEST_COMMITTED",
    "P8": "RTDL_CAUGHT_UP", "P9": "DECISION_CHAIN_COMMITTED", "P10": "CASE_LABELS_COMMITTED", "P11": "OBS_GOV_CLOSED",
    "P12": "TEARDOWN",
}


@dataclass(frozen=True)
class EvidenceFile:
    """One kind of evidence file."""

    path_key: str
    schema: str
    phase: str
    truth: Literal["base", "derived"]
    required: bool = True

    @property
    def schema_file(self) -> str:
        """Schema path relative to schemas/."""
        return f"evidence/{self.schema}.schema.json"


CATALOG: tuple[EvidenceFile, ...] = (
    EvidenceFile("PHASE_RECORD_PATH_PATTERN", "phase_record", "*", "derived", required=False),
    EvidenceFile("PACKAGING_READY_PATH_PATTERN", "packaging_ready", "P(-1)", "derived"),
    EvidenceFile("SUBSTRATE_SNAPSHOT_PATH_PATTERN", "substrate_snapshot", "P0", "derived"),
    EvidenceFile("EVIDENCE_RUN_JSON_KEY", "run", "P1", "base"),
    EvidenceFile("RUN_STARTED_PATH_PATTERN", "run_started", "P1", "base", required=False),
    EvidenceFile("DAEMONS_READY_PATH_PATTERN", "daemons_ready", "P2", "derived"),
    EvidenceFile("SEED_SNAPSHOT_PATH_PATTERN", "seed_snapshot", "P3", "derived", required=False),
    EvidenceFile("STREAM_SORT_SUMMARY_PATH_PATTERN", "stream_sort_summary", "P3", "derived"),
    EvidenceFile("CHECKER_PASS_PATH_PATTERN", "checker_pass", "P3", "derived"),
    EvidenceFile("IG_READY_PATH_PATTERN", "ig_ready", "P4", "derived"),
    EvidenceFile("SR_PASS_PATH_PATTERN", "sr_pass", "P5", "derived"),
    EvidenceFile("READY_PUBLISH_RECEIPT_PATH_PATTERN", "ready_publish_receipt", "P5", "derived"),
    EvidenceFile("WSP_START_PATH_PATTERN", "wsp_start", "P6", "derived"),
    EvidenceFile("WSP_SUMMARY_PATH_PATTERN", "wsp_summary", "P6", "derived"),
    EvidenceFile("RECEIPT_SUMMARY_PATH_PATTERN", "receipt_summary", "P7", "derived"),
    EvidenceFile("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN", "kafka_offsets_snapshot", "P7", "derived"),
    EvidenceFile("QUARANTINE_INDEX_PATH_PATTERN", "quarantine_summary", "P7", "derived", required=False),
    EvidenceFile("OFFSETS_SNAPSHOT_PATH_PATTERN", "offsets_snapshot", "P8", "derived"),
    EvidenceFile("RTDL_CORE_EVIDENCE_PATH_PATTERN", "caught_up", "P8", "derived"),
    EvidenceFile("DECISION_LANE_EVIDENCE_PATH_PATTERN", "decision_summary", "P9", "derived"),
    EvidenceFile("ACTION_SUMMARY_PATH_PATTERN", "action_summary", "P9", "derived"),
    EvidenceFile("DLA_EVIDENCE_PATH_PATTERN", "audit_summary", "P9", "derived"),
    EvidenceFile("CASE_EVIDENCE_PATH_PATTERN", "case_summary", "P10", "derived"),
    EvidenceFile("LABEL_EVIDENCE_PATH_PATTERN", "label_summary", "P10", "derived"),
    EvidenceFile("CLOSE_INPUTS_PATH_PATTERN", "close_inputs", "P11", "derived"),
    EvidenceFile("ENV_CONFORMANCE_PATH_PATTERN", "environment_conformance", "P11", "derived"),
    EvidenceFile("ANOMALY_SUMMARY_PATH_PATTERN", "anomaly_summary", "P11", "derived"),
    EvidenceFile("REPLAY_ANCHORS_PATH_PATTERN", "replay_anchors", "P11", "derived"),
    EvidenceFile("RECONCILIATION_PATH_PATTERN", "reconciliation", "P11", "derived"),
    EvidenceFile("RUN_REPORT_PATH_PATTERN", "run_report", "P11", "derived"),
    EvidenceFile("RUN_CLOSURE_MARKER_PATH_PATTERN", "run_completed", "P11", "base"),
    EvidenceFile("TEARDOWN_PROOF_PATH_PATTERN", "teardown_proof", "P12", "base"),
)

#: Schemas of evidence that lives outside a run bundle (stable keys or the local run folder).
OTHER_SCHEMAS: dict[str, str] = {
    "DEMO_APPLY_SNAPSHOT_KEY": "demo_apply_snapshot",
    "COMPONENT_HEALTH_PATH_PATTERN": "last_health",
    "LOCAL_PLATFORM_RUN_REPORT_PATH_PATTERN": "platform_run_report",
    "LOCAL_ENV_CONFORMANCE_PATH_PATTERN": "environment_conformance",
}

_BY_KEY = {entry.path_key: entry for entry in CATALOG}


def entry(path_key: str) -> EvidenceFile:
    """The catalogue entry of an evidence path handle."""
    try:
        return _BY_KEY[path_key]
    except KeyError:
        raise KeyError(f"{path_key} is not an evidence file of the catalogue") from None


def relative_paths(registry: Registry) -> dict[str, EvidenceFile]:
    """Relative path in the bundle -> its catalogue entry (phase records excluded)."""
    return {registry.text(e.path_key): e for e in CATALOG if "{" not in registry.text(e.path_key)}


def required_for(phase: str) -> list[EvidenceFile]:
    """The evidence files a PASS of `phase` must have written."""
    return [e for e in CATALOG if e.phase == phase and e.required]
