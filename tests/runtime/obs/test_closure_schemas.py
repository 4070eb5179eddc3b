"""The P11 schemas accept what the reporter writes and refuse incomplete or inconsistent closure
files; the file promises catch arithmetic a schema cannot."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from tests.runtime.obs import samples

REGISTRY = load_registry("local_parity")
SCHEMAS = {"reconciliation.json": "reconciliation", "replay_anchors.json": "replay_anchors",
           "obs/environment_conformance.json": "environment_conformance", "obs/anomaly_summary.json": "anomaly_summary",
           "run_report.json": "run_report", "run_completed.json": "run_completed"}


def violations(schema: str, doc: Any) -> list[str]:
    return schema_violations(f"evidence/{schema}.schema.json", doc)


def findings(path: str, docs: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return promises.FILE_PROMISES[SCHEMAS[path]](path, docs[path], docs, REGISTRY)


@pytest.mark.parametrize("path", sorted(SCHEMAS))
def test_every_closure_file_of_a_consistent_run_validates_and_keeps_its_promises(path: str) -> None:
    docs = samples.closure_documents()
    assert violations(SCHEMAS[path], docs[path]) == []
    assert findings(path, docs) == []


def test_the_local_platform_run_report_is_the_run_report() -> None:
    assert violations("platform_run_report", samples.run_report()) == []
    assert violations("platform_run_report", {**samples.run_report(), "decision_quality": {}})


def test_decision_quality_needs_flow_metrics_and_ratios_between_0_and_1() -> None:
    report = samples.run_report()
    assert report["decision_quality"]["flow"]["recall"] == 0.5  # 3 of 6 fraud flows flagged
    broken = copy.deepcopy(report)
    del broken["decision_quality"]["flow"]["precision"]
    assert any("precision" in v for v in violations("run_report", broken))
    broken = copy.deepcopy(report)
    broken["decision_quality"]["by_pattern"]["card_testing"]["recall"] = 1.5
    assert any("by_pattern/card_testing/recall" in v for v in violations("run_report", broken))


def test_reconciliation_must_cover_every_hop_of_the_spine() -> None:
    doc = samples.reconciliation()
    doc["hops"] = [h for h in doc["hops"] if h["hop_kind"] != "cases_to_labels"]
    assert violations("reconciliation", doc)


def test_a_hop_that_does_not_hold_must_name_its_explanation() -> None:
    doc = samples.reconciliation()
    hop = doc["hops"][4]
    hop.update({"observed": 199, "terms": {"intents": 199}, "difference": 1, "holds": False, "ok": False})
    assert any("explanation" in v for v in violations("reconciliation", doc))
    hop["explanation"] = {"reason": "one decision was a replay of an earlier one", "accounts_for": 1}
    hop["ok"] = True
    assert violations("reconciliation", doc) == []
    assert promises.reconciliation("reconciliation.json", doc, {}, REGISTRY) == []


def test_a_hop_that_does_not_reconcile_fails_the_gate_and_is_named() -> None:
    doc = samples.reconciliation()
    hop = doc["hops"][3]
    hop.update({"observed": 199, "terms": {"decisions": 199}, "difference": 1, "holds": False,
                "explanation": {"reason": "unknown", "accounts_for": 0}})
    claimed_ok = promises.reconciliation("reconciliation.json", doc, {}, REGISTRY)
    assert any("ok is True but the hop does not reconcile" in m for _, m in claimed_ok)
    hop["ok"] = False
    doc["status"], doc["failed_hops"] = "FAIL", ["consumer_to_decisions"]
    assert violations("reconciliation", doc) == []
    assert promises.reconciliation("reconciliation.json", doc, {}, REGISTRY) == []
    doc["status"], doc["failed_hops"] = "PASS", []
    assert any("status PASS but failed hops: consumer_to_decisions" in m
               for _, m in promises.reconciliation("reconciliation.json", doc, {}, REGISTRY))


def test_a_hop_whose_terms_do_not_add_up_is_a_finding() -> None:
    doc = samples.reconciliation()
    doc["hops"][2]["terms"]["processed"] = 300
    assert any("terms add up to" in m for _, m in promises.reconciliation("reconciliation.json", doc, {}, REGISTRY))


def test_a_consumer_hop_names_its_group_and_all_three_terms() -> None:
    doc = samples.reconciliation()
    del doc["hops"][2]["terms"]["dead_lettered"]
    assert violations("reconciliation", doc)


def test_replay_anchors_must_match_the_p7_snapshot() -> None:
    docs = samples.closure_documents()
    docs["ingest/kafka_offsets_snapshot.json"] = {"offset_ranges": [
        {"topic": samples.TOPICS[0], "partition": 0, "start_offset": 0, "end_offset": 199}]}
    assert findings("replay_anchors.json", docs) == []
    docs["ingest/kafka_offsets_snapshot.json"]["offset_ranges"][0]["end_offset"] = 180  # an edited snapshot
    assert any("is not the range" in m for _, m in findings("replay_anchors.json", docs))


def test_replay_anchors_need_the_capture_timestamp_and_a_range_per_topic() -> None:
    doc = samples.replay_anchors()
    del doc["offset_ranges"][0]["captured_at_utc"]
    assert violations("replay_anchors", doc)
    doc = samples.replay_anchors()
    doc["topics"].append("fp.bus.other.v1")
    assert any("topics without a range" in m for _, m in promises.replay_anchors("replay_anchors.json", doc, {}, REGISTRY))


def test_conformance_pass_needs_every_expectation_checked_and_ok() -> None:
    doc = samples.environment_conformance()
    doc["checks"] = doc["checks"][1:]
    assert violations("environment_conformance", doc)
    doc = samples.environment_conformance()
    doc["checks"][0]["ok"] = False
    assert any("status PASS but failed checks" in m
               for _, m in promises.environment_conformance("obs/environment_conformance.json", doc, {}, REGISTRY))


def test_anomaly_total_is_the_sum_of_the_kinds() -> None:
    doc = samples.anomaly_summary()
    doc["counts"]["total"] += 1
    assert any("add up to" in m for _, m in promises.anomaly_summary("obs/anomaly_summary.json", doc, {}, REGISTRY))
    del doc["counts"]["DEAD_LETTER"]
    assert violations("anomaly_summary", doc)


def test_run_completed_pins_the_closure_files_and_spine_green_needs_every_condition() -> None:
    docs = samples.closure_documents()
    docs["run_report.json"]["counts"]["decisions"] = 201  # tampered after closure
    assert any(p == "run_report.json" and "changed after" in m for p, m in findings("run_completed.json", docs))
    docs = samples.closure_documents()
    completed = docs["run_completed.json"]
    completed.update({"status": "SPINE_GREEN", "bounded_gate": None})
    completed["conditions"][1]["ok"] = False
    assert any("failed condition(s): df_health_green" in m for _, m in findings("run_completed.json", docs))
    del completed["conditions"][0]
    assert violations("run_completed", completed)


def test_the_run_report_reconciliation_status_is_the_reconciliation_files() -> None:
    docs = samples.closure_documents()
    docs["reconciliation.json"]["status"] = "FAIL"
    assert any("is not FAIL" in m for _, m in findings("run_report.json", docs))
