"""Complete, consistent P11 documents of one small run (what the reporter will write), for the
schema, promise, HTML and CLI tests. Decision quality comes from the real scorer on hand-made truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.contracts.canonical import sha256_hex
from runtime.evidence.writer import encode
from runtime.obs.quality import BankView, Decision, EventTruth, score
from runtime.obs.run_report import unbilled_window

RUN = "platform_20261123T120000Z"
SCENARIO = "0123456789abcdef0123456789abcdef"
WRITTEN = "2026-11-23T13:00:00Z"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOPICS = ["fp.bus.traffic.fraud.v1", "fp.bus.context.arrival_events.v1", "fp.bus.rtdl.v1", "fp.bus.audit.v1", "fp.bus.case.v1"]


def base(phase: str = "P11", run: str = RUN, handles: list[str] | None = None) -> dict[str, Any]:
    return {"platform_run_id": run, "scenario_run_id": SCENARIO, "written_at_utc": WRITTEN, "phase_id": phase,
            "source_handles": handles or []}


def quality() -> dict[str, Any]:
    """Scores of 40 events on 20 flows: flows 0-5 fraud (card_testing 0-2, account_takeover 3-5),
    flagged: flows 0, 1, 3 (fraud) and 10 (legit)."""
    events, decisions, bank = [], [], []
    for f in range(20):
        pattern = "card_testing" if f < 3 else "account_takeover" if f < 6 else "none"
        for seq in range(2):
            e = EventTruth(f"e{f}-{seq}", f"f{f}", f"c{f % 7}", 25.0 + f, T0 + timedelta(minutes=f * 3 + seq),
                           pattern != "none", pattern)
            events.append(e)
            flagged = f in (0, 1, 3, 10) and seq == 1
            decisions.append(Decision(e.event_id, e.flow_id, e.card_id, "DECLINE" if flagged else "APPROVE",
                                      "DEGRADED" if f % 5 == 0 else "NORMAL", e.amount,
                                      e.ts_utc + timedelta(seconds=2), 0.9 if flagged else 0.1))
        if pattern != "none" and f != 5:
            bank.append(BankView(f"f{f}", True, T0 + timedelta(hours=30 + f)))
    return score(decisions, events, bank=bank, review_capacity=3, known_by=T0 + timedelta(hours=2))


HOPS = [
    ("wsp_to_ig", "wsp_emitted", "ig_receipts", "emitted = ADMIT + DUPLICATE + QUARANTINE + ANOMALY + PUBLISH_AMBIGUOUS",
     400, {"ADMIT": 398, "DUPLICATE": 0, "QUARANTINE": 2, "ANOMALY": 0, "PUBLISH_AMBIGUOUS": 0}),
    ("ig_to_topics", "ig_receipts", "topic_records", "ADMIT receipts = records on the topics", 398,
     {"fp.bus.traffic.fraud.v1": 200, "fp.bus.context.arrival_events.v1": 198}),
    ("topic_to_consumer", "topic_records", "consumer_group", "records = processed + skipped + dead_lettered", 398,
     {"processed": 397, "skipped": 0, "dead_lettered": 1}),
    ("consumer_to_decisions", "consumer_group", "decisions", "traffic processed by DF = decisions", 200, {"decisions": 200}),
    ("decisions_to_intents", "decisions", "intents", "decisions = action intents", 200, {"intents": 200}),
    ("intents_to_outcomes", "intents", "outcomes", "intents = outcomes", 200, {"outcomes": 200}),
    ("outcomes_to_audit", "outcomes", "audit_records", "decisions = audit records", 200, {"audit_records": 200}),
    ("audit_to_case_triggers", "audit_records", "case_triggers", "flagged decisions = case triggers", 12, {"case_triggers": 12}),
    ("case_triggers_to_cases", "case_triggers", "cases", "case triggers = cases opened", 12, {"cases": 12}),
    ("cases_to_labels", "cases", "labels", "cases = label assertions", 12, {"labels": 12}),
]


def reconciliation() -> dict[str, Any]:
    hops = []
    for kind, src, dst, equation, intended, terms in HOPS:
        observed = sum(terms.values())
        hop = {"hop": kind if kind != "topic_to_consumer" else f"{kind}:fp-df-{RUN}", "hop_kind": kind, "from_stage": src,
               "to_stage": dst, "equation": equation, "intended": intended, "observed": observed, "terms": dict(terms),
               "difference": intended - observed, "holds": intended == observed, "ok": True, "explanation": None}
        if kind == "topic_to_consumer":
            hop["consumer_group"] = f"fp-df-{RUN}"
        hops.append(hop)
    return {**base(handles=["RECEIPT_SUMMARY_PATH_PATTERN"]), "status": "PASS", "hops": hops, "failed_hops": []}


def replay_anchors() -> dict[str, Any]:
    ranges = [{"topic": t, "partition": 0, "start_offset": 0, "end_offset": 199 if i == 0 else 99, "offset_kind": "kafka_offset",
               "captured_at_utc": WRITTEN, "records": 200 if i == 0 else 100} for i, t in enumerate(TOPICS)]
    return {**base(handles=["KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"]), "captured_at_utc": WRITTEN, "offset_kind": "kafka_offset",
            "offset_ranges": ranges, "topics": TOPICS,
            "consistent_with": [{"path": "ingest/kafka_offsets_snapshot.json", "sha256": "0" * 64, "consistent": True}]}


def environment_conformance() -> dict[str, Any]:
    checks = [{"name": name, "ok": True, "category": cat, "detail": detail} for name, cat, detail in [
        ("every handle resolves", "handles_resolved", "212 handles"),
        ("every pack consumes its run only", "run_scope_enforced", "5 packs"),
        ("no managed Kafka, NAT or load balancer", "no_forbidden_infrastructure", "none found"),
        ("images and config digests pinned at P1", "pinned_versions_in_use", "3 digests")]]
    return {**base(), "status": "PASS", "environment": "local_parity", "checks": checks, "failed_checks": []}


def anomaly_summary() -> dict[str, Any]:
    counts = {"ANOMALY": 0, "QUARANTINE": 2, "PUBLISH_AMBIGUOUS": 0, "DEAD_LETTER": 1, "LATE_EVENT": 3, "DEGRADE": 4}
    return {**base(), "counts": {**counts, "total": sum(counts.values())},
            "anomalies": [{"kind": "QUARANTINE", "count": 2, "source": "ingest/quarantine_summary.json",
                           "by_reason": {"SCHEMA_INVALID": 2}},
                          {"kind": "DEAD_LETTER", "count": 1, "source": "df", "examples": [{"event_id": "e9", "reason": "poison"}]},
                          {"kind": "LATE_EVENT", "count": 3, "source": "ofp"}, {"kind": "DEGRADE", "count": 4, "source": "dl"}]}


def run_report() -> dict[str, Any]:
    recon = reconciliation()
    phases = []
    for i, phase in enumerate(["P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11"]):
        start = T0 + timedelta(seconds=20 * i)
        phases.append({"phase_id": phase, "name": phase, "state": "PASS", "started_at_utc": start.isoformat().replace("+00:00", "Z"),
                       "ended_at_utc": (start + timedelta(seconds=15 + i)).isoformat().replace("+00:00", "Z"),
                       "duration_s": float(15 + i)})
    anomalies = anomaly_summary()["counts"]
    return {**base(handles=["RECONCILIATION_PATH_PATTERN", "ANOMALY_SUMMARY_PATH_PATTERN"]), "status": "PARTIAL",
            "environment": "local_parity", "bus": "kafka", "bounded_gate": 200,
            "started_at_utc": "2026-11-23T12:00:00Z", "ended_at_utc": "2026-11-23T12:04:00Z",
            "counts": {"events_emitted": 400, "decisions": 200, "cases": 12, "labels": 12},
            "phases": phases,
            "throughput": [{"stage": "wsp", "events": 400, "seconds": 8.0, "events_per_s": 50.0},
                           {"stage": "ig", "events": 400, "seconds": 9.5, "events_per_s": 42.1},
                           {"stage": "df", "events": 200, "seconds": 4.0, "events_per_s": 50.0,
                            "busiest_minute_events": 200, "lag_at_end": 37}],
            "reconciliation": {"status": recon["status"], "failed_hops": recon["failed_hops"],
                               "hops": [{k: h[k] for k in ("hop", "intended", "observed", "ok")} for h in recon["hops"]]},
            "decision_quality": quality(), "anomalies": anomalies,
            "cost": unbilled_window("2026-11-23T12:00:00Z", "2026-11-23T12:04:00Z"), "html_report": "run_report.html"}


def priced_window() -> dict[str, Any]:
    """A dev_min window of 2.5 hours priced from the repository's price table (what P11 writes)."""
    from stacks.cost import estimate, window_cost

    return window_cost(estimate(), T0 - timedelta(hours=2), T0 + timedelta(minutes=30)).document()


def run_completed(closure: dict[str, dict[str, Any]]) -> dict[str, Any]:
    names = ["environment_conformance_pass", "df_health_green", "al_health_green_with_parity",
             "dla_health_green_lineage_resolved", "wsp_emitted_gate_per_output", "every_phase_passed"]
    return {**base(), "status": "PARTIAL", "completed_at_utc": WRITTEN, "phases_passed": ["P0", "P1"], "bounded_gate": 200,
            "conditions": [{"name": n, "ok": True, "detail": None} for n in names],
            "closure_files": [{"path": p, "sha256": sha256_hex(encode(d))} for p, d in sorted(closure.items())]}


def closure_documents() -> dict[str, dict[str, Any]]:
    """Every P11 file by bundle-relative path (run_completed last, pinning the others)."""
    docs = {"reconciliation.json": reconciliation(), "replay_anchors.json": replay_anchors(),
            "obs/environment_conformance.json": environment_conformance(), "obs/anomaly_summary.json": anomaly_summary(),
            "run_report.json": run_report()}
    return {**docs, "run_completed.json": run_completed(docs)}
