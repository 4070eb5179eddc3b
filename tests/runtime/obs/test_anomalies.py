"""The anomaly summary adds every source up per kind, keeps zero kinds visible and bounds examples."""

from __future__ import annotations

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from runtime.obs.anomalies import ANOMALY_KINDS, MAX_EXAMPLES, AnomalySource, anomaly_summary


def _doc(body: dict[str, object]) -> dict[str, object]:
    return {"phase_id": "P11", "platform_run_id": "platform_20261129T000000Z", "scenario_run_id": "a" * 32,
            "written_at_utc": "2026-11-29T00:00:00Z", "source_handles": ["ANOMALY_SUMMARY_PATH_PATTERN"], **body}


def test_counts_add_up_per_kind_and_every_kind_is_present() -> None:
    body = anomaly_summary([
        AnomalySource("DEAD_LETTER", "ofp", 2, {"PAYLOAD_INVALID": 2}, [{"event_id": f"e{i}", "reason": "x"} for i in range(30)]),
        AnomalySource("DEAD_LETTER", "csfb", 1),
        AnomalySource("QUARANTINE", "ingest/quarantine_summary.json", 0),
        AnomalySource("LATE_EVENT", "ofp", 5)])
    assert body["counts"] == {"ANOMALY": 0, "QUARANTINE": 0, "PUBLISH_AMBIGUOUS": 0, "DEAD_LETTER": 3,
                              "LATE_EVENT": 5, "DEGRADE": 0, "total": 8}
    assert [(a["kind"], a["source"]) for a in body["anomalies"]] == [("DEAD_LETTER", "csfb"), ("DEAD_LETTER", "ofp"),
                                                                      ("LATE_EVENT", "ofp")]
    assert len(body["anomalies"][1]["examples"]) == MAX_EXAMPLES
    doc = _doc(body)
    assert schema_violations("evidence/anomaly_summary.schema.json", doc) == []
    assert promises.FILE_PROMISES["anomaly_summary"]("obs/anomaly_summary.json", doc, {}, load_registry("local_parity")) == []


def test_a_run_without_anomalies_still_lists_every_kind_at_zero() -> None:
    body = anomaly_summary([])
    assert set(body["counts"]) == {*ANOMALY_KINDS, "total"} and body["counts"]["total"] == 0


def test_unknown_kinds_and_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        AnomalySource("LOST", "x", 1)
    with pytest.raises(ValueError):
        AnomalySource("DEGRADE", "dl", -1)
