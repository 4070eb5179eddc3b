"""Spine Green conditions and the closure marker: green only when all six hold, each failure named."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from runtime.obs.closure import (
    CONDITION_NAMES,
    PHASES_BEFORE_CLOSURE,
    ClosureFacts,
    conditions,
    failed_conditions,
    run_completed,
)

OUTPUTS = {"s3_event_stream_with_fraud_6B": 200, "arrival_events_5B": 200}


def _facts() -> ClosureFacts:
    return ClosureFacts(conformance_status="PASS", df_health="GREEN", al_health="GREEN", al_intake=260,
                        al_outcomes=260, dla_health="GREEN", lineage_unresolved_total=0, wsp_emitted=dict(OUTPUTS),
                        expected_per_output=dict(OUTPUTS), phase_states={p: "PASS" for p in PHASES_BEFORE_CLOSURE},
                        reconciliation_status="PASS", anchors_consistent=True)


def _marker(facts: ClosureFacts) -> dict[str, Any]:
    body = run_completed(conditions(facts), phases_passed=[*PHASES_BEFORE_CLOSURE, "P11"], bounded_gate=200,
                         closure_files={"reconciliation.json": {"status": "PASS"}},
                         completed_at_utc="2026-11-29T00:00:00Z")
    return {"phase_id": "P11", "platform_run_id": "platform_20261129T000000Z", "scenario_run_id": "a" * 32,
            "written_at_utc": "2026-11-29T00:00:00Z", "source_handles": ["RUN_CLOSURE_MARKER_PATH_PATTERN"], **body}


def test_a_run_meeting_every_condition_is_spine_green_at_the_200_event_baseline() -> None:
    doc = _marker(_facts())
    assert doc["status"] == "SPINE_GREEN" and failed_conditions(doc) == []
    assert [c["name"] for c in doc["conditions"]] == list(CONDITION_NAMES)
    assert schema_violations("evidence/run_completed.schema.json", doc) == []
    wsp = {"per_output": [{"output_id": o, "emitted": 200} for o in OUTPUTS]}
    documents: dict[str, dict[str, Any]] = {"run.json": {"config": {"gate_events_per_output": 200}},
                                            "wsp/wsp_summary.json": wsp,
                                            "reconciliation.json": {"status": "PASS"}}
    assert promises.FILE_PROMISES["run_completed"]("run_completed.json", doc, documents, load_registry("local_parity")) == []


@pytest.mark.parametrize(("change", "condition"), [
    ({"conformance_status": "FAIL"}, "environment_conformance_pass"),
    ({"df_health": "AMBER"}, "df_health_green"),
    ({"al_outcomes": 259}, "al_health_green_with_parity"),
    ({"al_intake": None}, "al_health_green_with_parity"),
    ({"lineage_unresolved_total": 1}, "dla_health_green_lineage_resolved"),
    ({"dla_health": None}, "dla_health_green_lineage_resolved"),
    ({"wsp_emitted": {"s3_event_stream_with_fraud_6B": 200, "arrival_events_5B": 199}}, "wsp_emitted_gate_per_output"),
    ({"expected_per_output": {}}, "wsp_emitted_gate_per_output"),
    ({"phase_states": {p: "PASS" for p in PHASES_BEFORE_CLOSURE if p != "P10"}}, "every_phase_passed"),
    ({"reconciliation_status": "FAIL"}, "every_phase_passed"),
    ({"anchors_consistent": False}, "every_phase_passed"),
])
def test_each_failed_condition_makes_the_run_partial_and_is_named(change: dict[str, Any], condition: str) -> None:
    doc = _marker(replace(_facts(), **change))
    assert doc["status"] == "PARTIAL"
    assert [f.split(":")[0] for f in failed_conditions(doc)] == [condition]
    assert schema_violations("evidence/run_completed.schema.json", doc) == []


def test_the_detail_says_what_is_short() -> None:
    doc = _marker(replace(_facts(), wsp_emitted={"s3_event_stream_with_fraud_6B": 200}))
    assert "arrival_events_5B: emitted 0 of 200" in failed_conditions(doc)[0]
    doc = _marker(replace(_facts(), phase_states={"P0": "PASS"}))
    assert "P1 (not run)" in failed_conditions(doc)[0]


def test_a_marker_without_every_condition_or_closure_file_is_refused() -> None:
    with pytest.raises(ValueError):
        run_completed(conditions(_facts())[:-1], phases_passed=[], bounded_gate=None,
                      closure_files={"a": {}}, completed_at_utc="2026-11-29T00:00:00Z")
    with pytest.raises(ValueError):
        run_completed(conditions(_facts()), phases_passed=[], bounded_gate=None, closure_files={},
                      completed_at_utc="2026-11-29T00:00:00Z")
