"""Decision records and triggers for the case/labels tests, built the way the decision lane shapes them."""

from __future__ import annotations

from typing import Any

from runtime.contracts.canonical import canonical_digest

RUN = "platform_20260105T000000Z"


def hex32(seed: object) -> str:
    """A deterministic 32-hex id for test fixtures."""
    return canonical_digest({"seed": seed})[:32]


def decision_record(n: int = 1, *, outcome: str = "REVIEW", reasons: list[Any] | None = None,
                    event: int | None = None, decided_at: str = "2026-01-05T10:00:00Z", **extra: Any) -> dict[str, Any]:
    """A decision_response payload for decision `n` about event `event` (default: the same number)."""
    record: dict[str, Any] = {
        "decision_id": hex32(("decision", n)),
        "platform_run_id": RUN,
        "event_class": "traffic_fraud",
        "event_id": hex32(("event", n if event is None else event)),
        "event_ts_utc": "2026-01-05T09:59:59.5Z",
        "outcome": outcome,
        "score": 0.91,
        "reasons": reasons if reasons is not None else [{"code": "CARD_TESTING_BURST", "value": 12}],
        "decided_at_utc": decided_at,
        "eb_ref": {"offset_kind": "kafka_offset", "topic": "fp.bus.traffic.fraud.v1", "partition": 0, "offset": n},
        "receipt_id": hex32(("receipt", n)),
        "audit_record_id": hex32(("audit", n)),
        "policy_digest": "a" * 64,
    }
    record.update(extra)
    return record
