"""Real decision-lane records for the case plane's handler tests: decisions decided by the decision
domain (tests/runtime/decision/support.py), DLA's audit records of them, and the triggers they become."""

from __future__ import annotations

from typing import Any

from runtime.case.cm.domain import CaseTimeline, TimelineEvent, trigger_events
from runtime.case.trigger.domain import trigger_for
from runtime.case.trigger.handler import CASE_TRIGGER, audit_id_of_decision, decision_fields
from runtime.decision.dla.domain import audit_record
from runtime.decision.lane import AUDIT_RECORD, lane_envelope
from tests.runtime.decision.lane_bus import AUDIT_TOPIC, RTDL_TOPIC, lane_envelope_of
from tests.runtime.decision.support import lane_records

CASE_TOPIC = "fp.bus.case.v1"
Item = tuple[str, str, dict[str, Any]]


def decisions(run: str, n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """`n` decision_response envelopes (outcomes cycle APPROVE, STEP_UP, REVIEW, DECLINE)."""
    return [lane_envelope_of(run, c, p) for c, p in lane_records(run, n, start=start) if c == "decision_response"]


def audit_envelope(run: str, decision: dict[str, Any]) -> dict[str, Any]:
    """DLA's audit_record envelope of a decision envelope (as DLA publishes it on fp.bus.audit.v1)."""
    audit = audit_record("decision", decision["payload"])
    return lane_envelope(AUDIT_RECORD, audit["audit_id"], audit, platform_run_id=run,
                         scenario_run_id=decision.get("scenario_run_id"), ts_utc=decision["ts_utc"],
                         producer="decision_log_audit")


def decision_items(run: str, n: int, *, start: int = 0) -> list[Item]:
    """Each decision on the rtdl topic followed by its audit record on the audit topic."""
    out: list[Item] = []
    for d in decisions(run, n, start=start):
        out.append((RTDL_TOPIC, d["event_id"], d))
        out.append((AUDIT_TOPIC, d["event_id"], audit_envelope(run, d)))
    return out


def trigger_envelope(run: str, decision: dict[str, Any]) -> dict[str, Any] | None:
    """The case_trigger envelope CaseTrigger publishes for a decision envelope (None: no case needed)."""
    fields = decision_fields(decision["payload"], decision["ts_utc"])
    trigger = trigger_for({**fields, "audit_record_id": audit_id_of_decision(decision["event_id"])})
    if trigger is None:
        return None
    return lane_envelope(CASE_TRIGGER, trigger.trigger_id, trigger.payload(), platform_run_id=run,
                         scenario_run_id=decision.get("scenario_run_id"), ts_utc=decision["ts_utc"], producer="case_trigger")


def trigger_items(run: str, n_decisions: int, *, start: int = 0) -> list[Item]:
    """The case_trigger records of `n_decisions` decisions (half of them need a case)."""
    out: list[Item] = []
    for d in decisions(run, n_decisions, start=start):
        t = trigger_envelope(run, d)
        if t is not None:
            out.append((CASE_TOPIC, t["payload"]["case_id"], t))
    return out


def admit(conn: Any, run: str, event_ids: list[str], event_class: str = "traffic_fraud") -> None:
    """ADMIT receipts for `event_ids` in ig_receipts (what IG writes when it admits an event)."""
    from psycopg.types.json import Jsonb

    from tests.runtime.case.records import hex32

    conn.cursor().executemany(
        "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key, batch_index,"
        " receipt) VALUES (%s, %s, %s, %s, 'ADMIT', 'test', 0, %s) ON CONFLICT DO NOTHING",
        [(hex32(("receipt", run, e)), run, event_class, e, Jsonb({})) for e in event_ids])


__all__ = ["AUDIT_TOPIC", "CASE_TOPIC", "RTDL_TOPIC", "admit", "decision_items", "decisions", "trigger_items"]


def domain_case_events(decision_envelopes: list[dict[str, Any]]) -> tuple[list[TimelineEvent], int]:
    """The timeline the pure domain builds from decision envelopes, once, without any crash (the drills'
    reference), and the number of cases: each decision needing a case triggers once, DLA's audit id attached."""
    timelines: dict[str, CaseTimeline] = {}
    for d in decision_envelopes:
        payload = d["payload"]
        trigger = trigger_for({**decision_fields(payload, d["ts_utc"]), "audit_record_id": audit_id_of_decision(payload["decision_id"])})
        if trigger is not None:
            trigger_events(trigger, timelines.setdefault(trigger.case_id, CaseTimeline()))
    return [e for t in timelines.values() for e in t.events], len(timelines)
