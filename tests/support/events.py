"""Valid canonical envelopes for tests and benchmarks, one event class at a time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.contracts.ids import event_id, scenario_run_id

SCENARIO = scenario_run_id("test-equivalence-key")
BASE_TS = datetime(2026, 1, 1, tzinfo=UTC)

OUTPUT_OF = {
    "traffic_fraud": "s3_event_stream_with_fraud_6B",
    "traffic_baseline": "s2_event_stream_baseline_6B",
    "context_arrival_events": "arrival_events_5B",
    "context_arrival_entities": "s1_arrival_entities_6B",
    "context_flow_anchor_fraud": "s3_flow_anchor_with_fraud_6B",
    "context_flow_anchor_baseline": "s2_flow_anchor_baseline_6B",
}


def random_run_id() -> str:
    """A platform_run_id nobody else in the session uses (random second over ~30 years)."""
    moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(10**9))
    return "platform_" + moment.strftime("%Y%m%dT%H%M%SZ")


def payload(event_class: str, n: int) -> dict[str, Any]:
    """A payload that satisfies the schema of `event_class`."""
    ts = (BASE_TS + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
    if event_class.startswith("traffic"):
        return {"flow_id": f"f{n}", "event_seq": n % 7, "ts_utc": ts, "session_id": f"s{n}", "customer_id": f"c{n % 97}",
                "account_id": f"a{n % 89}", "card_id": f"k{n % 83}", "merchant_id": f"m{n % 31}", "device_id": f"d{n % 53}",
                "amount": round(10 + n * 0.37, 2), "currency": "GBP", "channel": "ecom", "merchant_country": "GB",
                "event_type": "auth_request"}  # as the oracle's rows carry it; WSP copies it to the envelope
    if event_class == "context_arrival_events":
        return {"arrival_id": f"ar{n}", "ts_utc": ts, "session_id": f"s{n}", "customer_id": f"c{n}", "channel": "web",
                "ip_country": "GB"}
    if event_class == "context_arrival_entities":
        return {"arrival_id": f"ar{n}", "ts_utc": ts, "entity_type": "card", "entity_id": f"k{n}"}
    return {"flow_id": f"f{n}", "ts_utc": ts, "session_id": f"s{n}", "customer_id": f"c{n}", "account_id": f"a{n}",
            "card_id": f"k{n}", "merchant_id": f"m{n}", "device_id": f"d{n}"}


def envelope(run_id: str, n: int, event_class: str = "traffic_fraud", **overrides: Any) -> dict[str, Any]:
    """A valid envelope for row `n` of the output behind `event_class`."""
    body = payload(event_class, n)
    doc = {
        "event_id": event_id(OUTPUT_OF[event_class], {"n": n}),
        "event_class": event_class,
        "event_type": "auth_request" if event_class.startswith("traffic") else event_class,
        "schema_version": "v1",
        "platform_run_id": run_id,
        "scenario_run_id": SCENARIO,
        "ts_utc": body["ts_utc"],
        "producer": "test",
        "payload": body,
    }
    doc.update(overrides)
    return doc
