"""The decision lane's records on the bus: event classes, the envelope they travel in, their outbox form.

DF publishes `decision_response` and `action_intent`, AL `action_outcome` (all on FP_BUS_RTDL_V1),
DLA `audit_record` (FP_BUS_AUDIT_V1). Each envelope's event_id is the record's own deterministic
id and its ts_utc is taken from the record it derives from (never the clock), so the same input
gives the same bytes on a redelivery, after a crash, on the other bus and on a replay; the
outbox's record id is that event id, so a re-produced record is recognised as the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.contracts.canonical import canonical_json
from runtime.worker.records import OutputRecord

DECISION_RESPONSE = "decision_response"
ACTION_INTENT = "action_intent"
ACTION_OUTCOME = "action_outcome"
AUDIT_RECORD = "audit_record"
#: Event class of a lane record -> its kind in the audit log.
KIND_OF_CLASS = {DECISION_RESPONSE: "decision", ACTION_INTENT: "intent", ACTION_OUTCOME: "outcome"}


def lane_envelope(event_class: str, event_id: str, payload: Mapping[str, Any], *, platform_run_id: str,
                  scenario_run_id: str | None, ts_utc: str, producer: str) -> dict[str, Any]:
    """The envelope of one lane record (same fields as an admitted event's envelope)."""
    return {"event_id": event_id, "event_class": event_class, "event_type": event_class, "schema_version": "v1",
            "platform_run_id": platform_run_id, "scenario_run_id": scenario_run_id, "ts_utc": ts_utc,
            "producer": producer, "payload": dict(payload)}


def lane_output(topic: str, key: str, envelope: Mapping[str, Any]) -> OutputRecord:
    """The outbox record of an envelope: record id = event id, canonical JSON bytes."""
    return OutputRecord(str(envelope["event_id"]), topic, key, canonical_json(dict(envelope)))
