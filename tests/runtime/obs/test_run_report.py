"""The run report assembles phases, stages and the other closure files into a valid document."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.evidence.writer import schema_violations
from runtime.obs.run_report import LOCAL_COST_BASIS, Stage, phase_rows, run_report, unbilled_window, window_cost
from tests.runtime.obs import samples


def _records() -> dict[str, dict[str, Any]]:
    return {"P8": {"state": "PASS", "name": "RTDL_CAUGHT_UP", "started_at_utc": "2026-11-23T12:02:00Z",
                   "ended_at_utc": "2026-11-23T12:02:03Z", "duration_s": 3.0, "error_code": None},
            "P(-1)": {"state": "PASS", "name": "PACKAGING_READY", "started_at_utc": "2026-11-23T12:00:00Z",
                      "ended_at_utc": "2026-11-23T12:00:01Z", "duration_s": 1.0},
            "P9": {"state": "FAIL", "name": "DECISION_CHAIN_COMMITTED", "started_at_utc": "2026-11-23T12:02:04Z",
                   "ended_at_utc": "2026-11-23T12:02:05Z", "duration_s": 1.0, "error_code": "PHASE_NOT_BUILT"}}


def _report(**change: Any) -> dict[str, Any]:
    recon = samples.reconciliation()
    body = run_report(status=change.get("status", "PARTIAL"), environment="local_parity", bus="kafka", bounded_gate=200,
                      phases=phase_rows(_records()),
                      stages=[Stage("wsp", 800, 4.0), Stage("df", 200, 2.0, busiest_minute_events=150, lag_at_end=0),
                              Stage("ig", 801, None)],
                      reconciliation=recon, decision_quality=samples.quality(),
                      anomaly_counts=samples.anomaly_summary()["counts"],
                      counts={"events_emitted": 800, "decisions": 200},
                      cost=change.get("cost", unbilled_window("2026-11-23T12:00:00Z", "2026-11-23T12:02:05Z")),
                      html_report="run_report.html")
    return {**samples.base(handles=["RUN_REPORT_PATH_PATTERN"]), **body}


def test_the_report_validates_and_keeps_phases_in_run_order() -> None:
    doc = _report()
    assert schema_violations("evidence/run_report.schema.json", doc) == []
    assert [p["phase_id"] for p in doc["phases"]] == ["P(-1)", "P8", "P9"]
    assert doc["phases"][2]["error_code"] == "PHASE_NOT_BUILT"
    assert (doc["started_at_utc"], doc["ended_at_utc"]) == ("2026-11-23T12:00:00Z", "2026-11-23T12:02:05Z")


def test_stage_rates_are_measured_or_undefined_never_made_up() -> None:
    stages = {s["stage"]: s for s in _report()["throughput"]}
    assert stages["wsp"]["events_per_s"] == 200.0
    assert stages["ig"]["events_per_s"] is None
    assert (stages["df"]["busiest_minute_events"], stages["df"]["lag_at_end"]) == (150, 0)


def test_an_unknown_status_or_no_phase_is_refused() -> None:
    with pytest.raises(ValueError):
        _report(status="GREEN")
    with pytest.raises(ValueError):
        run_report(status="PARTIAL", environment="local_parity", bus="kafka", bounded_gate=None, phases=[], stages=[],
                   reconciliation=samples.reconciliation(), decision_quality={}, anomaly_counts={}, counts={},
                   cost=unbilled_window(None, None), html_report=None)


def test_a_timed_stage_rates_its_events_over_the_span_from_first_to_last() -> None:
    from datetime import UTC, datetime, timedelta

    from runtime.obs.run_report import StageTimes, timed_stage

    t0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    stage = timed_stage(StageTimes("df decided", 600, t0, t0 + timedelta(seconds=30), 550, 12)).document()
    assert (stage["seconds"], stage["events_per_s"], stage["busiest_minute_events"], stage["lag_at_end"]) == (30.0, 20.0, 550, 12)
    # one instant, or nothing done: no rate is made up
    assert timed_stage(StageTimes("al", 1, t0, t0)).document()["events_per_s"] is None
    assert timed_stage(StageTimes("ofp", 0, t0, None)).document()["seconds"] is None
    with pytest.raises(ValueError):
        timed_stage(StageTimes("df", 1, t0, t0, lag_at_end=-1))


def test_the_lag_at_the_end_of_streaming_is_input_minus_done_never_negative() -> None:
    from runtime.obs.run_report import lag_at

    assert lag_at(1000, 940) == 60
    assert lag_at(100, 300) == 0  # a stage that emits several records per input is not behind


def test_the_report_schema_refuses_a_negative_lag_or_an_unknown_stage_field() -> None:
    doc = _report()
    doc["throughput"][1]["lag_at_end"] = -1
    assert schema_violations("evidence/run_report.schema.json", doc)
    doc = _report()
    doc["throughput"][0]["made_up"] = 1
    assert schema_violations("evidence/run_report.schema.json", doc)


def test_a_local_run_costs_explicitly_nothing_never_null() -> None:
    doc = _report()
    assert doc["cost"] == {"currency": "USD", "total": 0, "basis": LOCAL_COST_BASIS, "window_start_utc": "2026-11-23T12:00:00Z",
                           "window_end_utc": "2026-11-23T12:02:05Z", "window_hours": 0.0347, "by_resource": []}
    assert window_cost("local_parity", None, start_utc="2026-11-23T12:00:00Z", end_utc="2026-11-23T13:00:00Z")["total"] == 0
    assert schema_violations("evidence/run_report.schema.json", {**doc, "cost": None})  # null is no longer a cost


def test_the_report_carries_the_window_p11_priced_and_says_so_when_dev_min_was_not_priced() -> None:
    priced = samples.priced_window()
    assert window_cost("dev_min", {"window_cost": priced}, start_utc=None, end_utc=None) == priced
    doc = _report(cost=priced)
    assert schema_violations("evidence/run_report.schema.json", doc) == []
    assert doc["cost"]["total"] > 0 and doc["cost"]["basis"] == "list prices from stacks/prices.yaml"
    unpriced = window_cost("dev_min", None, start_utc="2026-11-23T12:00:00Z", end_utc="2026-11-23T13:00:00Z")
    assert unpriced["total"] is None and unpriced["basis"].startswith("not priced") and "close_inputs" in unpriced["basis"]
    assert schema_violations("evidence/run_report.schema.json", _report(cost=unpriced)) == []
    assert schema_violations("evidence/run_report.schema.json", _report(cost={**priced, "total": -1}))
    assert schema_violations("evidence/run_report.schema.json", _report(cost={k: v for k, v in priced.items() if k != "basis"}))
