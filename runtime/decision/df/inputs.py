"""Point-in-time decision inputs read from the RTDL domain states (OFP, IEG, CSFB) as of one event.

The live DF reads the same answers from the stores (after waiting for their watermarks); the
offline benchmark and the tests read them from the in-memory states. Either way the answers are
as of the event: OFP facts and IEG edges strictly before it in (ts, event_id), the CSFB join
frame of its flow. Nothing here can see the oracle's truth.
"""

from __future__ import annotations

from typing import Any, Protocol

from runtime.decision.df.domain import DecisionInputs, GraphSignals, Provenance, join_input
from runtime.rtdl.csfb.domain import CsfbState, JoinReadiness
from runtime.rtdl.events import TRAFFIC_CLASSES, Admitted, admitted
from runtime.rtdl.ieg.domain import IegState, OrderKey
from runtime.rtdl.ofp.domain import OfpState

SECOND = 1_000_000


class GraphReader(Protocol):
    """The IEG queries DF asks (the in-memory `IegState` and the store-backed reader both answer them)."""

    def first_seen(self, kind: str, entity_id: str) -> OrderKey | None: ...
    def devices_of_customer(self, customer_id: str, as_of: OrderKey | None = None) -> list[str]: ...
    def customers_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]: ...
    def cards_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]: ...
    def senders_of_collector(self, collector_id: str, as_of: OrderKey | None = None) -> list[str]: ...


def graph_signals(ieg: GraphReader, event: Admitted) -> GraphSignals:
    """IEG's answers about the event's customer, device and payee, counting only what came strictly before it."""
    at = event.order_key
    customer, device = event.text("customer_id"), event.text("device_id")
    first = ieg.first_seen("device", device)
    age = 0.0 if first is None or first >= at else (event.ts_micros - first[0]) / SECOND
    return GraphSignals(
        device_age_seconds=age,
        customer_other_devices=len([d for d in ieg.devices_of_customer(customer, at) if d != device]),
        device_other_customers=len([c for c in ieg.customers_of_device(device, at) if c != customer]),
        device_other_cards=len([c for c in ieg.cards_of_device(device, at) if c != event.text("card_id")]),
        collector_senders=len([a for a in ieg.senders_of_collector(event.text("merchant_id"), at)
                               if a != event.text("account_id")]),
    )


def readiness_input(readiness: JoinReadiness) -> dict[str, Any]:
    """The join input of a CSFB readiness answer."""
    return join_input(readiness.status, readiness.missing, readiness.frame())


def inputs_from_states(envelope: dict[str, Any], ofp: OfpState | None, ieg: IegState | None, csfb: CsfbState | None,
                       provenance: Provenance | None = None) -> DecisionInputs:
    """The decision inputs of one traffic envelope from in-memory states; a state passed as None is a late input."""
    event = admitted(envelope, expect=TRAFFIC_CLASSES)
    features = None
    if ofp is not None:
        features = {kind: f.canonical() for kind, f in ofp.event_features(envelope).items()}
    graph = graph_signals(ieg, event) if ieg is not None else None
    join = None
    if csfb is not None:
        join = readiness_input(csfb.join_readiness(event.text("flow_id"), event.text("session_id"), event.event_id))
    return DecisionInputs(features, graph, join, provenance or Provenance())
