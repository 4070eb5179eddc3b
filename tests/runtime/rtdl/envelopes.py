"""Envelopes for RTDL domain tests: hand-made ones, and a whole small run from the synthetic engine.

The engine path goes through the same code WSP uses (views.json_value, wsp.envelope.to_envelope),
so the domains are tested on exactly the records IG admits.
"""

from __future__ import annotations

import functools
from typing import Any

from runtime.contracts.ids import event_id
from runtime.rtdl.events import micros_to_iso

RUN = "platform_20260105T000000Z"
SCENARIO = "0" * 32
T0 = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z
SECOND = 1_000_000

CLASS_OUTPUTS = {
    "traffic_fraud": "s3_event_stream_with_fraud_6B",
    "context_arrival_events": "arrival_events_5B",
    "context_arrival_entities": "s1_arrival_entities_6B",
    "context_flow_anchor_fraud": "s3_flow_anchor_with_fraud_6B",
}


def envelope(event_class: str, payload: dict[str, Any], *, event_type: str | None = None) -> dict[str, Any]:
    """A canonical envelope around `payload`, with the deterministic id WSP would give it."""
    return {
        "event_id": event_id(event_class, payload), "event_class": event_class,
        "event_type": event_type or event_class, "schema_version": "v1", "platform_run_id": RUN,
        "scenario_run_id": SCENARIO, "ts_utc": payload["ts_utc"], "producer": "wsp", "payload": payload,
    }


def traffic(seconds: float, *, card: str = "crd_1", customer: str = "cus_1", account: str = "acc_1", device: str = "dev_1",
            merchant: str = "mer_1", amount: float = 10.0, country: str = "GB", channel: str = "web", flow: str = "flw_1",
            session: str = "ses_1", seq: int = 0) -> dict[str, Any]:
    """A traffic_fraud envelope at T0 + `seconds`."""
    payload = {"flow_id": flow, "event_seq": seq, "ts_utc": micros_to_iso(T0 + int(seconds * SECOND)), "session_id": session,
               "customer_id": customer, "account_id": account, "card_id": card, "device_id": device, "merchant_id": merchant,
               "amount": amount, "currency": "GBP", "channel": channel, "merchant_country": country}
    return envelope("traffic_fraud", payload, event_type="transfer" if channel == "p2p" else "auth_request")


def anchor(seconds: float, *, flow: str = "flw_1", session: str = "ses_1", customer: str = "cus_1", account: str = "acc_1",
           card: str = "crd_1", device: str = "dev_1", merchant: str = "mer_1", channel: str = "web") -> dict[str, Any]:
    """A context_flow_anchor_fraud envelope."""
    payload = {"flow_id": flow, "ts_utc": micros_to_iso(T0 + int(seconds * SECOND)), "session_id": session, "customer_id": customer,
               "account_id": account, "card_id": card, "merchant_id": merchant, "device_id": device, "channel": channel}
    return envelope("context_flow_anchor_fraud", payload)


def arrival(seconds: float, *, arrival_id: str = "arr_1", session: str = "ses_1", customer: str = "cus_1",
            device: str = "dev_1") -> dict[str, Any]:
    """A context_arrival_events envelope."""
    payload = {"arrival_id": arrival_id, "ts_utc": micros_to_iso(T0 + int(seconds * SECOND)), "session_id": session,
               "customer_id": customer, "device_id": device, "channel": "web", "ip_country": "GB"}
    return envelope("context_arrival_events", payload)


def arrival_entity(seconds: float, kind: str, entity: str, *, arrival_id: str = "arr_1") -> dict[str, Any]:
    """A context_arrival_entities envelope."""
    payload = {"arrival_id": arrival_id, "ts_utc": micros_to_iso(T0 + int(seconds * SECOND)), "entity_type": kind,
               "entity_id": entity}
    return envelope("context_arrival_entities", payload)


@functools.cache
def engine_run(scale: int = 800, seed: int = 7) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(event_class, envelope) of every fraud-mode record of a small synthetic-engine run, in stream order."""
    import numpy as np

    from runtime.oracle.engine.config import EngineConfig
    from runtime.oracle.engine.simulate import simulate
    from runtime.oracle.engine.tables import build_tables
    from runtime.wsp.envelope import to_envelope
    from runtime.wsp.views import json_value

    config = EngineConfig(seed=seed, scale=scale, fraud_rate=0.25, days=1)
    tables = build_tables(simulate(config), np.random.default_rng(seed))
    out = []
    for event_class, output_id in CLASS_OUTPUTS.items():
        for row in tables[output_id].sort_by("ts_utc").to_pylist():
            plain = {k: json_value(v) for k, v in row.items()}
            out.append((event_class, to_envelope(plain, output_id=output_id, event_class=event_class, platform_run_id=RUN,
                                                 scenario_run_id=SCENARIO)))
    return tuple(out)
