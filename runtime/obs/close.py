"""`reporter close`: the single writer that closes a run (P11).

Under the run's reporter lock it reads the run's durable state once (runtime/obs/gather.py) and
what P11 observed for it (obs/close_inputs.json: the priced window, the task-definition images),
derives the closure files with the pure modules and writes them through the evidence writer
(schema-validated) in this order: reconciliation.json, replay_anchors.json,
obs/environment_conformance.json, obs/anomaly_summary.json, run_report.json, run_report.html, the
governance events, and run_completed.json LAST, pinning the sha256 of every file before it. A run
that cannot be closed (unknown, stopped before P10, a bundle missing a file) fails with its code
before anything is written; a second reporter fails with REPORTER_LOCK_HELD and writes nothing.
The reporter derives summaries only: it never changes receipts, audit, timelines or labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence, encode, run_bundle
from runtime.obs import gather
from runtime.obs.anchors import replay_anchors
from runtime.obs.anomalies import anomaly_summary
from runtime.obs.closure import conditions, run_completed
from runtime.obs.conformance import environment_conformance
from runtime.obs.governance import GovernanceEvent, GovernanceLog
from runtime.obs.lock import ReporterLock
from runtime.obs.quality import score
from runtime.obs.reconcile import reconciliation
from runtime.obs.report_html import render
from runtime.obs.run_report import phase_rows, timed_stage, window_cost
from runtime.obs.run_report import run_report as run_report_body
from runtime.obs.spine_hops import spine_hops
from runtime.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: Flagged events an investigator team reviews per run (precision at the review capacity).
REVIEW_CAPACITY = 50


@dataclass(frozen=True)
class Closed:
    """What `reporter close` wrote and concluded."""

    status: str
    reconciliation_status: str
    failed_hops: list[str]
    written: list[WrittenEvidence]
    failed_conditions: list[str]


def close_run(settings: Settings, platform_run_id: str, *, progress: Progress = print,
              holder: str | None = None) -> Closed:
    """Take the lock, gather, write every closure file, run_completed.json last."""
    from runtime.worker.run import require_run

    if not settings.db_dsn:
        raise PlatformError("the reporter reads the run's tables from PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
    require_run(settings, platform_run_id)
    registry = settings.registry
    writer = EvidenceWriter(registry, platform_run_id, [run_bundle(settings, platform_run_id)])
    bundle = gather.read_bundle(writer)
    gather.require_closable(registry, bundle, platform_run_id)
    with ReporterLock(settings.db_dsn, registry, platform_run_id, holder=holder) as lock:
        closed = writer.read("RUN_CLOSURE_MARKER_PATH_PATTERN")
        if closed is not None:
            progress(f"P11 {platform_run_id} was closed already ({closed.get('status')}); nothing written")
            recon = writer.read("RECONCILIATION_PATH_PATTERN") or {}
            return Closed(str(closed.get("status")), str(recon.get("status")), list(recon.get("failed_hops") or []), [],
                          [f"{c['name']}: {c['detail']}" for c in closed.get("conditions") or [] if not c.get("ok")])
        progress(f"P11 reporter {lock.holder} holds {lock.key}; gathering {platform_run_id}")
        documents = _derive(settings, writer, bundle, platform_run_id)
        written: list[WrittenEvidence] = []
        for key in ("RECONCILIATION_PATH_PATTERN", "REPLAY_ANCHORS_PATH_PATTERN", "ENV_CONFORMANCE_PATH_PATTERN",
                    "ANOMALY_SUMMARY_PATH_PATTERN", "RUN_REPORT_PATH_PATTERN"):
            lock.ensure_held()
            written.append(writer.write(key, documents[key]))
        lock.ensure_held()
        html_key = run_bundle(settings, platform_run_id).key(registry.text("RUN_REPORT_HTML_PATH_PATTERN"))
        settings.bucket("S3_EVIDENCE_BUCKET").put(html_key, render(documents["RUN_REPORT_PATH_PATTERN"]).encode("utf-8"),
                                                  content_type="text/html; charset=utf-8")
        marker = documents["RUN_CLOSURE_MARKER_PATH_PATTERN"]
        events = _governance_events(platform_run_id, lock.holder, lock.took_over_from, documents)
        lock.ensure_held()
        result = GovernanceLog(settings.bucket("S3_EVIDENCE_BUCKET"), registry, platform_run_id).append(events)
        progress(f"P11 governance: {len(result.appended)} event(s) appended, {len(result.already_present)} already there")
        lock.ensure_held()
        written.append(writer.write("RUN_CLOSURE_MARKER_PATH_PATTERN", marker))
    recon = documents["RECONCILIATION_PATH_PATTERN"]
    failed = [f"{c['name']}: {c['detail']}" for c in marker["conditions"] if not c["ok"]]
    return Closed(marker["status"], recon["status"], list(recon["failed_hops"]), written, failed)


def _derive(settings: Settings, writer: EvidenceWriter, bundle: gather.Bundle, platform_run_id: str) -> dict[str, dict[str, Any]]:
    """Every closure document, by path key (run_completed's pins computed from the others)."""
    from runtime.bus.factory import admin
    from runtime.db.postgres import connect
    from runtime.rtdl.caught_up import input_topics

    registry = settings.registry
    close_inputs = writer.read("CLOSE_INPUTS_PATH_PATTERN")  # P11's priced window and task-definition images
    scenario = str(bundle.get(registry, "WSP_SUMMARY_PATH_PATTERN").get("scenario_run_id")
                   or bundle.get(registry, "IG_READY_PATH_PATTERN").get("scenario_run_id"))
    now = utc_iso()
    offset_kind = "kafka_offset" if settings.bus == "kafka" else "kinesis_sequence"
    workers = [c for c in gather.STREAM_WORKERS if gather.COMPONENTS[c].built]
    topics_of = input_topics(settings, platform_run_id, {c: c for c in workers})  # component -> its input topics
    health = gather.read_healths(settings, platform_run_id)
    bus_admin = admin(settings)
    with connect(str(settings.db_dsn)) as conn:
        counts = gather.spine_counts(conn, registry, bundle, platform_run_id, topics_of)
        stage_times = gather.stage_times(conn, registry, bundle, counts, platform_run_id)
        anchors = gather.anchor_ranges(bus_admin, gather.run_partitions(conn, platform_run_id))
        sources = gather.anomaly_sources(conn, registry, bundle, platform_run_id, health)
        checks = gather.conformance_checks(conn, registry, bundle, platform_run_id, health, close_inputs)
        inputs = gather.quality_inputs(conn, settings, platform_run_id)
        conn.rollback()

    def base(handles: list[str]) -> dict[str, Any]:
        return {**writer.base_fields("P11", handles), "scenario_run_id": scenario}

    recon = {**base(["RECONCILIATION_PATH_PATTERN", "RECEIPT_SUMMARY_PATH_PATTERN", "WSP_SUMMARY_PATH_PATTERN",
                     "CONSUMER_GROUP_ID_PATTERN"]), **reconciliation(spine_hops(counts))}
    anchor_doc = {**base(["REPLAY_ANCHORS_PATH_PATTERN", "KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN", "OFFSETS_SNAPSHOT_PATH_PATTERN"]),
                  **replay_anchors(anchors, gather.snapshots(registry, bundle), offset_kind=offset_kind, captured_at_utc=now)}
    conformance = {**base(["ENV_CONFORMANCE_PATH_PATTERN", "PACKS", "COMPONENT_HEALTH_PATH_PATTERN", "CLOSE_INPUTS_PATH_PATTERN"]),
                   **environment_conformance(registry.environment, checks)}
    anomalies = {**base(["ANOMALY_SUMMARY_PATH_PATTERN", "RECEIPT_SUMMARY_PATH_PATTERN"]), **anomaly_summary(sources)}
    anchors_ok = all(s["consistent"] for s in anchor_doc["consistent_with"])
    with connect(str(settings.db_dsn)) as conn:
        facts = gather.closure_facts(conn, registry, bundle, platform_run_id, health,
                                     conformance_status=conformance["status"], reconciliation_status=recon["status"],
                                     anchors_consistent=anchors_ok)
        conn.rollback()
    conds = conditions(facts)
    status = "SPINE_GREEN" if all(c.ok for c in conds) else "PARTIAL"
    known_by = max((d.ts_utc for d in inputs.decisions), default=None)
    quality = score(inputs.decisions, inputs.events, inputs.flows, inputs.bank, review_capacity=REVIEW_CAPACITY,
                    known_by=known_by)
    run = bundle.get(registry, "EVIDENCE_RUN_JSON_KEY")
    gate = (run.get("config") or {}).get("gate_events_per_output")
    stages = [timed_stage(t) for t in stage_times]
    rows = phase_rows(bundle.phases)
    cost = window_cost(registry.environment, close_inputs,
                       start_utc=min((r["started_at_utc"] for r in rows if r.get("started_at_utc")), default=None), end_utc=now)
    report = {**base(["RUN_REPORT_PATH_PATTERN", "RECONCILIATION_PATH_PATTERN", "ANOMALY_SUMMARY_PATH_PATTERN", "CLOSE_INPUTS_PATH_PATTERN",
                      "RUN_REPORT_HTML_PATH_PATTERN"]),
              **run_report_body(status=status, environment=registry.environment, bus=settings.bus, bounded_gate=gate,
                                phases=rows, stages=stages, reconciliation=recon,
                                decision_quality=quality, anomaly_counts=anomalies["counts"],
                                counts={"events_emitted": counts.wsp_emitted,
                                        "receipts": sum(counts.receipts.values()),
                                        "decisions": sum(counts.decisions_by_outcome.values()),
                                        "intents": sum(counts.intents_by_action.values()),
                                        "outcomes": sum(counts.outcomes_by_action.values()),
                                        "audit_records": sum(counts.audit_by_kind.values()),
                                        "case_triggers": counts.triggers, "labels": counts.case_labels},
                                cost=cost, html_report=registry.text("RUN_REPORT_HTML_PATH_PATTERN"))}
    closure_files = {registry.text("RECONCILIATION_PATH_PATTERN"): recon,
                     registry.text("REPLAY_ANCHORS_PATH_PATTERN"): anchor_doc,
                     registry.text("ENV_CONFORMANCE_PATH_PATTERN"): conformance,
                     registry.text("ANOMALY_SUMMARY_PATH_PATTERN"): anomalies,
                     registry.text("RUN_REPORT_PATH_PATTERN"): report}
    passed = [p for p in gather.PHASES_BEFORE_CLOSURE if (bundle.phases.get(p) or {}).get("state") == "PASS"]
    marker = {**base(["RUN_CLOSURE_MARKER_PATH_PATTERN"]),
              **run_completed(conds, phases_passed=passed, bounded_gate=gate, closure_files=closure_files,
                              completed_at_utc=utc_iso())}
    return {"RECONCILIATION_PATH_PATTERN": recon, "REPLAY_ANCHORS_PATH_PATTERN": anchor_doc,
            "ENV_CONFORMANCE_PATH_PATTERN": conformance, "ANOMALY_SUMMARY_PATH_PATTERN": anomalies,
            "RUN_REPORT_PATH_PATTERN": report, "RUN_CLOSURE_MARKER_PATH_PATTERN": marker}


def _governance_events(platform_run_id: str, holder: str, took_over_from: str | None,
                       documents: dict[str, dict[str, Any]]) -> list[GovernanceEvent]:
    """What the reporter decided about the run: the reconciliation verdict (each failed hop), the
    conformance verdict, a lock taken over, and the closure itself."""
    recon = documents["RECONCILIATION_PATH_PATTERN"]
    conformance = documents["ENV_CONFORMANCE_PATH_PATTERN"]
    marker = documents["RUN_CLOSURE_MARKER_PATH_PATTERN"]
    events = [GovernanceEvent(platform_run_id, "RECONCILIATION_" + recon["status"], "reconciliation.json", holder,
                              {"failed_hops": recon["failed_hops"], "sha256": _sha(recon)})]
    events += [GovernanceEvent(platform_run_id, "HOP_NOT_RECONCILED", hop, holder) for hop in recon["failed_hops"]]
    events.append(GovernanceEvent(platform_run_id, "ENVIRONMENT_CONFORMANCE_" + conformance["status"],
                                  "obs/environment_conformance.json", holder,
                                  {"failed_checks": conformance["failed_checks"]}))
    if took_over_from:
        events.append(GovernanceEvent(platform_run_id, "REPORTER_LOCK_TAKEN_OVER", holder, holder,
                                      {"took_over_from": took_over_from}))
    events.append(GovernanceEvent(platform_run_id, "RUN_CLOSED", "run_completed.json", holder,
                                  {"status": marker["status"],
                                   "failed_conditions": [c["name"] for c in marker["conditions"] if not c["ok"]]}))
    return events


def _sha(document: dict[str, Any]) -> str:
    from runtime.contracts.canonical import sha256_hex

    return sha256_hex(encode(document))
