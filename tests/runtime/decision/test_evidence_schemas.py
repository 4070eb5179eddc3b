"""The P9 evidence schemas (decision_summary, action_summary, audit_summary) accept a complete document and refuse gaps."""

from __future__ import annotations

import pytest

from runtime.evidence.writer import schema_violations

BASE = {"platform_run_id": "platform_20260105T000000Z", "written_at_utc": "2026-01-05T00:10:00.000000Z", "phase_id": "P9",
        "source_handles": ["DECISION_LANE_EVIDENCE_PATH_PATTERN"]}
DIGEST = "ab" * 32

DECISION = {**BASE, "counts": {"admitted_traffic_events": 200, "decisions": 200, "degraded": 3, "dead_letters": 0,
                               "by_outcome": {"APPROVE": 190, "STEP_UP": 4, "REVIEW": 3, "DECLINE": 3},
                               "by_reason": {"CARD_TESTING_BURST": 3},
                               "by_posture": {"GREEN": 200, "AMBER": 0, "RED": 0},
                               "by_degrade_reason": {"FEATURES_LATE": 0, "GRAPH_LATE": 0, "CONTEXT_MISSING": 3}},
            "policy": {"policy_id": "fraud_policy", "version": 1, "digest": DIGEST},
            "latency_ms": {"admission_to_decision_p50": 12.5, "admission_to_decision_p99": 80.0, "samples": 200},
            "decision_digest": DIGEST, "all_admitted_decided": True,
            "health": {"dl": "GREEN", "df": "GREEN", "al": "GREEN", "dla": "GREEN"}, "posture_at_close": "GREEN",
            "posture_history": [{"seq": 0, "at_utc": "2026-12-01T22:41:04.400317Z", "posture": "AMBER",
                                 "reasons": ["CONSUMER_LAG_UNKNOWN"]},
                                {"seq": 1, "at_utc": "2026-12-01T22:41:11.353365Z", "posture": "GREEN", "reasons": ["RECOVERED"]}]}
ACTION = {**BASE, "counts": {"intents": 203, "outcomes": 203, "duplicates_prevented": 0, "refused": 0,
                             "by_action_type": {"approve": 190, "decline": 3}}, "intake_equals_outcomes": True}
AUDIT = {**BASE, "counts": {"records": 606, "decisions": 200, "intents": 203, "outcomes": 203, "batches": 2, "duplicates": 0},
         "lineage_unresolved_total": 0, "lineage_breaks": {}, "slices": ["decision_log_audit/batches/000000.json"],
         "chain": {"head_sha256": DIGEST, "verified": True, "problems": []}}


@pytest.mark.parametrize(("schema", "document"), [("decision_summary", DECISION), ("action_summary", ACTION), ("audit_summary", AUDIT)])
def test_a_complete_document_is_valid(schema, document):
    assert schema_violations(f"evidence/{schema}.schema.json", document) == []


@pytest.mark.parametrize(("schema", "document", "drop"), [
    ("decision_summary", DECISION, "decision_digest"), ("decision_summary", DECISION, "latency_ms"),
    ("decision_summary", DECISION, "policy"), ("decision_summary", DECISION, "health"),
    ("action_summary", ACTION, "intake_equals_outcomes"),
    ("audit_summary", AUDIT, "lineage_unresolved_total"), ("audit_summary", AUDIT, "chain"),
])
def test_a_document_missing_a_required_field_is_refused(schema, document, drop):
    assert schema_violations(f"evidence/{schema}.schema.json", {k: v for k, v in document.items() if k != drop})


def test_nested_gaps_are_refused():
    counts = {k: v for k, v in DECISION["counts"].items() if k != "by_degrade_reason"}
    assert schema_violations("evidence/decision_summary.schema.json", {**DECISION, "counts": counts})
    bad_chain = {**AUDIT["chain"], "problems": [{"code": "LOOKS_FINE"}]}
    assert schema_violations("evidence/audit_summary.schema.json", {**AUDIT, "chain": bad_chain})
    assert schema_violations("evidence/decision_summary.schema.json", {**DECISION, "decision_digest": "ab" * 32 + "\n"})


@pytest.mark.parametrize("entry", [
    {"seq": 2, "at_utc": "2026-12-01T22:41:12Z", "posture": "BLUE", "reasons": []},
    {"seq": -1, "at_utc": "2026-12-01T22:41:12Z", "posture": "RED", "reasons": ["BUS_UNAVAILABLE"]},
    {"seq": 2, "at_utc": "2026-12-01T22:41:12Z", "posture": "RED"},
    {"seq": 2, "at_utc": "2026-12-01T22:41:12Z", "posture": "RED", "reasons": [""]},
    {"seq": 2, "at_utc": "2026-12-01T22:41:12Z", "posture": "RED", "reasons": [], "health": {}},
])
def test_a_posture_history_entry_with_an_unknown_posture_a_gap_or_an_extra_field_is_refused(entry):
    document = {**DECISION, "posture_history": [*DECISION["posture_history"], entry]}
    assert schema_violations("evidence/decision_summary.schema.json", document)
