"""Reconciliation equations: holds, explained, unexplained, missing kinds, and the schema."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from runtime.obs.reconcile import HOP_KINDS, UNEXPLAINED, Explanation, Hop, failure_summary, reconciliation
from runtime.obs.spine_hops import GroupCounts, SpineCounts, spine_hops


def _counts() -> SpineCounts:
    groups = [GroupCounts(f"fp-{c}-run", ["fp.bus.traffic.fraud.v1"], 200, 199, 1, 0) for c in ("ofp", "df")]
    return SpineCounts(
        wsp_emitted=800, wsp_retries=0, receipts={"ADMIT": 801}, probes_admitted=1,
        topic_records={"fp.bus.traffic.fraud.v1": 201, "fp.bus.context.arrival_events.v1": 600},
        groups=groups, traffic_admitted=200, decisions_by_outcome={"APPROVE": 150, "REVIEW": 40, "DECLINE": 10},
        intents_expected=210, intents_by_action={"approve": 150, "queue_for_review": 40, "decline": 10,
                                                 "block_card": 10},
        outcomes_by_action={"approve": 150, "queue_for_review": 40, "decline": 10, "block_card": 10},
        audit_by_kind={"decision": 200, "intent": 210, "outcome": 210}, triggers_expected=50, triggers=50,
        trigger_events_by_kind={"case_opened": 45, "trigger_joined": 5}, cases_closed=3, case_labels=3)


def _document(doc: dict[str, Any]) -> dict[str, Any]:
    return {"phase_id": "P11", "platform_run_id": "platform_20261129T000000Z", "scenario_run_id": "a" * 32,
            "written_at_utc": "2026-11-29T00:00:00Z", "source_handles": ["RECONCILIATION_PATH_PATTERN"], **doc}


def test_a_consistent_spine_passes_with_the_probe_explained() -> None:
    doc = reconciliation(spine_hops(_counts()))
    assert doc["status"] == "PASS", failure_summary(doc)
    wsp = next(h for h in doc["hops"] if h["hop"] == "wsp_to_ig")
    assert (wsp["holds"], wsp["ok"], wsp["difference"]) == (False, True, -1)
    assert wsp["explanation"]["accounts_for"] == -1
    assert {h["hop_kind"] for h in doc["hops"]} == set(HOP_KINDS)


@pytest.mark.parametrize("counts", [_counts(), replace(_counts(), triggers=49)], ids=["pass", "fail"])
def test_the_document_satisfies_the_schema_and_its_promises(counts: SpineCounts) -> None:
    doc = _document(reconciliation(spine_hops(counts)))
    assert schema_violations("evidence/reconciliation.schema.json", doc) == []
    assert promises.FILE_PROMISES["reconciliation"]("reconciliation.json", doc, {}, load_registry("local_parity")) == []


@pytest.mark.parametrize(("change", "hop"), [
    ({"receipts": {"ADMIT": 799}}, "wsp_to_ig"),
    ({"topic_records": {"fp.bus.traffic.fraud.v1": 200, "fp.bus.context.arrival_events.v1": 600}}, "ig_to_topics"),
    ({"decisions_by_outcome": {"APPROVE": 150, "REVIEW": 40, "DECLINE": 9}}, "consumer_to_decisions"),
    ({"outcomes_by_action": {"approve": 150, "queue_for_review": 40, "decline": 10}}, "intents_to_outcomes"),
    ({"audit_by_kind": {"decision": 200, "intent": 210, "outcome": 209}}, "outcomes_to_audit"),
    ({"triggers_expected": 51}, "audit_to_case_triggers"),
    ({"trigger_events_by_kind": {"case_opened": 45}}, "case_triggers_to_cases"),
    ({"case_labels": 2}, "cases_to_labels"),
])
def test_a_break_at_a_hop_fails_and_names_that_hop(change: dict[str, Any], hop: str) -> None:
    doc = reconciliation(spine_hops(replace(_counts(), **change)))
    assert doc["status"] == "FAIL"
    assert hop in doc["failed_hops"]
    assert hop in failure_summary(doc)


def test_a_consumer_group_that_lost_records_fails_naming_the_group() -> None:
    groups = [GroupCounts("fp-ofp-run", ["t"], 200, 198, 1, 0)]
    doc = reconciliation(spine_hops(replace(_counts(), groups=groups)))
    assert doc["failed_hops"] == ["topic_to_consumer:fp-ofp-run"]


def test_an_explanation_must_account_for_exactly_the_difference() -> None:
    hop = Hop("h", "wsp_to_ig", "wsp_emitted", "ig_receipts", "a = b", 10, {"ADMIT": 8},
              explanations=(Explanation("partly", 1),))
    assert not hop.ok
    assert Hop("h", "wsp_to_ig", "wsp_emitted", "ig_receipts", "a = b", 10, {"ADMIT": 8},
               explanations=(Explanation("one", 1), Explanation("two", 1))).ok


def test_a_probe_explanation_does_not_excuse_a_hop_that_holds_otherwise() -> None:
    doc = reconciliation(spine_hops(replace(_counts(), probes_admitted=0, receipts={"ADMIT": 800})))
    wsp = next(h for h in doc["hops"] if h["hop"] == "wsp_to_ig")
    assert wsp["holds"] and wsp["explanation"] is None


def test_duplicates_are_explained_only_up_to_the_retries_wsp_made() -> None:
    counts = replace(_counts(), receipts={"ADMIT": 801, "DUPLICATE": 3}, wsp_retries=2)
    doc = reconciliation(spine_hops(counts))
    assert "wsp_to_ig" in doc["failed_hops"]
    assert reconciliation(spine_hops(replace(counts, wsp_retries=3)))["status"] == "PASS"


def test_hops_without_a_kind_cannot_be_reconciled() -> None:
    hops = [h for h in spine_hops(_counts()) if h.hop_kind != "cases_to_labels"]
    with pytest.raises(ValueError, match="cases_to_labels"):
        reconciliation(hops)


def test_an_unexplained_difference_is_written_as_unexplained() -> None:
    doc = reconciliation(spine_hops(replace(_counts(), case_labels=2)))
    hop = next(h for h in doc["hops"] if h["hop"] == "cases_to_labels")
    assert hop["explanation"] == {"reason": UNEXPLAINED, "accounts_for": 0} and not hop["ok"]


def test_negative_counts_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError):
        Hop("h", "wsp_to_ig", "a", "b", "a = b", -1, {})
    with pytest.raises(ValueError):
        Hop("h", "nope", "a", "b", "a = b", 1, {})
    with pytest.raises(ValueError):
        reconciliation(spine_hops(_counts()) * 2)
