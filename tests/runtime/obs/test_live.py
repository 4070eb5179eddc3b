"""The live documents of the obs_gov daemons, pure: a check that only lacks its observation is
pending, a contradicted one fails; the run-in-progress report marks unsettled hops; both documents
pass their schemas."""

from __future__ import annotations

from runtime.evidence.writer import schema_violations
from runtime.obs.conformance import Check, handles_resolved, pinned_versions_in_use, run_scope_enforced
from runtime.obs.live import LIVE_SCHEMAS, live_conformance, live_run_report, pending, status_line

RUN = "platform_20261129T120000Z"
AT = "2026-11-29T12:00:00Z"


def _checks(*, decisions: list[str], health: dict[str, dict[str, str]]) -> list[Check]:
    return [handles_resolved(["A"], {"x.json": {"source_handles": ["A"]}}),
            *run_scope_enforced(RUN, {"rtdl_core": ["ieg"]}, health, {"ieg": "fp-ieg-" + RUN}),
            Check("only the local substrate's own servers", "no_forbidden_infrastructure", True, "ok"),
            pinned_versions_in_use({"policy_digest": "d1"}, {"policy_digest": decisions})]


def _doc(checks: list[Check]) -> dict:
    doc = live_conformance(RUN, "local_parity", checks, written_at_utc=AT, refresh=1, interval_s=5.0, phase_reached="P6")
    assert schema_violations(LIVE_SCHEMAS["LIVE_ENV_CONFORMANCE_PATH_PATTERN"], doc) == []
    return doc


def test_missing_observations_are_pending_not_failed() -> None:
    doc = _doc(_checks(decisions=[], health={}))
    assert doc["status"] == "PENDING" and doc["failed_checks"] == []
    assert sorted(doc["pending_checks"]) == sorted([f"pack rtdl_core consumes run {RUN} only", "what P1 pinned is what ran"])


def test_a_contradicted_pin_or_foreign_run_scope_fails() -> None:
    foreign = {"ieg": {"platform_run_id": "platform_20261129T110000Z"}}
    doc = _doc(_checks(decisions=["d2"], health=foreign))
    assert doc["status"] == "FAIL"
    assert sorted(doc["failed_checks"]) == sorted([f"pack rtdl_core consumes run {RUN} only", "what P1 pinned is what ran"])
    assert not pending(pinned_versions_in_use({"p": "d1"}, {"p": ["d1", "d2"]}))


def test_every_check_holding_is_pass() -> None:
    health = {"ieg": {"platform_run_id": RUN, "consumer_group": "fp-ieg-" + RUN}}
    doc = _doc(_checks(decisions=["d1"], health=health))
    assert doc["status"] == "PASS" and doc["pending_checks"] == [] and doc["failed_checks"] == []


def test_run_in_progress_report_names_unsettled_hops_and_passes_its_schema() -> None:
    hops = [{"hop": "wsp_to_ig", "intended": 10, "observed": 10, "difference": 0, "ok": True},
            {"hop": "consumer_to_decisions", "intended": 10, "observed": 7, "difference": 3, "ok": False}]
    doc = live_run_report(RUN, written_at_utc=AT, refreshed_by="platform_run_reporter@h:1:ab", refresh=3, interval_s=5.0,
                          phases=[{"phase_id": "P1", "state": "PASS"}, {"phase_id": "P2", "state": "PASS"},
                                  {"phase_id": "P3", "state": "RUNNING"}],
                          counts={"decisions": 7}, hops=hops, groups_pending={"df": "POLICY_NOT_PINNED"},
                          anomaly_counts={"ANOMALY": 0, "total": 0})
    assert schema_violations(LIVE_SCHEMAS["LIVE_RUN_REPORT_PATH_PATTERN"], doc) == []
    assert doc["phase_reached"] == "P2" and doc["final"] is False
    assert doc["reconciliation_so_far"]["unsettled_hops"] == ["consumer_to_decisions"]
    assert doc["reconciliation_so_far"]["groups_pending"] == {"df": "POLICY_NOT_PINNED"}


def test_status_line_sums_up_both_live_documents_within_80_columns() -> None:
    from datetime import datetime

    conformance = _doc(_checks(decisions=[], health={}))
    report = {"written_at_utc": "2026-11-29T11:59:50Z", "anomalies": {"total": 2},
              "reconciliation_so_far": {"hops": [{"settled": True}, {"settled": False}, {"settled": True}]}}
    now = datetime.fromisoformat("2026-11-29T12:00:04+00:00").timestamp()
    line = status_line(report, conformance, now_s=now)
    assert line == "obs_gov: env PENDING (2 pending), hops 2/3 settled, 2 anomalies, 14s ago"
    assert len(line) <= 80
    assert status_line(None, None, now_s=now) is None
