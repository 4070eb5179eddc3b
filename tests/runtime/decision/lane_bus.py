"""Lane records as bus envelopes for the AL and DLA handler tests (built with the pure decision domain)."""

from __future__ import annotations

from typing import Any

from runtime.decision.lane import lane_envelope
from tests.runtime.decision.support import lane_records

RTDL_TOPIC = "fp.bus.rtdl.v1"
AUDIT_TOPIC = "fp.bus.audit.v1"
_ID = {"decision_response": "decision_id", "action_intent": "intent_id", "action_outcome": "outcome_id"}
_PRODUCER = {"decision_response": "decision_fabric", "action_intent": "decision_fabric", "action_outcome": "action_layer"}


def lane_envelope_of(platform_run_id: str, event_class: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The envelope DF or AL puts a lane record in."""
    ts = str(payload.get("event_ts_utc") or "2026-01-05T00:10:00.000000Z")
    return lane_envelope(event_class, str(payload[_ID[event_class]]), payload, platform_run_id=platform_run_id,
                         scenario_run_id="0" * 32, ts_utc=ts, producer=_PRODUCER[event_class])


def lane_items(platform_run_id: str, n: int, *, classes: tuple[str, ...] = tuple(_ID),
               start: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, envelope) of `n` decisions' lane records of the given classes, in publishing order."""
    return [(RTDL_TOPIC, str(p["decision_id"]), lane_envelope_of(platform_run_id, c, p))
            for c, p in lane_records(platform_run_id, n, start=start) if c in classes]
