"""The P10 summary bodies meet their complete schemas; the schemas refuse what the issue requires."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.case.cm.domain import CaseTimeline, close, start_investigation, trigger_events
from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import assertion
from runtime.case.summaries import EXEMPLAR_CASES, case_summary_body, label_summary_body
from runtime.case.trigger.domain import trigger_for
from runtime.contracts.schemas import compiled_validator
from tests.runtime.case.records import RUN, decision_record, hex32

COMMON = {"platform_run_id": RUN, "written_at_utc": "2026-01-05T12:00:00Z", "phase_id": "P10",
          "source_handles": ["CASE_EVIDENCE_PATH_PATTERN"], "scenario_run_id": None}
#: What P10's job (runtime/case/committed.py) adds to each body.
CASE_GATE = {"health": "GREEN", "health_by_component": {"case_trigger": "GREEN", "cm": "GREEN"},
             "trigger_join": {"decisions_needing_case": 3, "audit_refs": 6, "awaiting_audit": 0}, "cases_missing": 0,
             "triggers_unattached": 0, "consumer_groups": {"case_trigger": "fp-case_trigger-r", "cm": "fp-cm-r"},
             "dead_letters": {"total": 0, "explained": 0, "by_component": {"case_trigger": 0, "cm": 0}, "by_code": {}}}
LABEL_GATE = {"health": "GREEN", "consumer_groups": {"ls": "fp-ls-r"},
              "dead_letters": {"total": 0, "explained": 0, "by_component": {"ls": 0}, "by_code": {}}}


def _case_doc(cases: int = 3) -> dict[str, Any]:
    events = []
    for n in range(cases):
        timeline = CaseTimeline()
        trigger = trigger_for(decision_record(n))
        assert trigger is not None
        trigger_events(trigger, timeline)
        if n == 0:
            start_investigation(timeline, actor="ana", at="2026-01-05T11:00:00Z")
            close(timeline, actor="ana", outcome="confirmed_fraud", at="2026-01-05T11:30:00Z")
        events.extend(timeline.events)
    return COMMON | case_summary_body(events, triggers_published=cases) | CASE_GATE


def _label_doc(n: int = 4) -> dict[str, Any]:
    assertions = [assertion(LabelSubjectKey(RUN, hex32(i), "fraud"), source="bank_view", value="fraud",
                            observed_at=f"2026-01-0{6 + i}T00:00:00Z", effective_at="2026-01-05T00:00:00Z")
                  for i in range(n)]
    return COMMON | label_summary_body(assertions) | LABEL_GATE


def test_the_case_summary_counts_cases_and_meets_its_schema() -> None:
    doc = _case_doc()
    assert list(compiled_validator("evidence/case_summary.schema.json").iter_errors(doc)) == []
    assert doc["counts"]["cases"] == 3 and doc["counts"]["triggers_processed"] == 3
    assert doc["cases_by_status"] == {"open": 2, "investigating": 0, "closed": 1}
    assert doc["cases_by_outcome"]["confirmed_fraud"] == 1
    assert doc["counts"]["timeline_events_appended"] == 3 * 2 + 2


def test_the_exemplar_case_ids_are_bounded() -> None:
    doc = _case_doc(EXEMPLAR_CASES + 5)
    assert len(doc["exemplar_case_ids"]) == EXEMPLAR_CASES
    assert compiled_validator("evidence/case_summary.schema.json").is_valid(doc)


def test_the_label_summary_reports_sources_labels_and_the_as_of_range() -> None:
    doc = _label_doc()
    assert list(compiled_validator("evidence/label_summary.schema.json").iter_errors(doc)) == []
    assert doc["assertions_by_source"]["bank_view"] == 4 and doc["assertions_by_label"]["fraud"] == 4
    assert doc["as_of_range"] == {"first_observed_utc": "2026-01-06T00:00:00.000000Z",
                                  "last_observed_utc": "2026-01-09T00:00:00.000000Z"}
    empty = COMMON | label_summary_body([]) | LABEL_GATE
    assert compiled_validator("evidence/label_summary.schema.json").is_valid(empty)


@pytest.mark.parametrize(("schema", "drop"), [
    ("case_summary", "case_digest"), ("case_summary", "cases_by_status"), ("case_summary", "exemplar_case_ids"),
    ("label_summary", "label_digest"), ("label_summary", "assertions_by_source"), ("label_summary", "as_of_range"),
])
def test_the_schemas_refuse_a_summary_without_a_required_part(schema: str, drop: str) -> None:
    doc = _case_doc() if schema == "case_summary" else _label_doc()
    doc.pop(drop)
    assert not compiled_validator(f"evidence/{schema}.schema.json").is_valid(doc)


def test_the_schemas_refuse_a_malformed_digest_or_an_unknown_source() -> None:
    assert not compiled_validator("evidence/case_summary.schema.json").is_valid(_case_doc() | {"case_digest": "abc"})
    label = _label_doc()
    label["assertions_by_source"]["model_score"] = 1
    assert not compiled_validator("evidence/label_summary.schema.json").is_valid(label)
