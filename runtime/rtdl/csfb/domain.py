"""Context store and flow binding (CSFB): the context a traffic event is joined with.

Flow anchors bind a flow to its session and entities (the FlowBinding index); arrivals give the
session's context (channel, ip country, device at arrival). The join frame of a flow is its
anchor plus the arrival of its session. A traffic event is READY when both are present,
MISSING_CONTEXT otherwise (the reasons name what is missing, for an explicit degrade), and
LATE_JOIN when it missed before and the context has come since. Two anchors for one flow keep
the earlier in (ts, event_id) order, so the state does not depend on arrival order; hits, misses
and late joins are operational counters and stay out of the state digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.rtdl.events import (
    ANCHOR_CLASSES,
    ARRIVAL_EVENTS,
    ENTITY_KINDS,
    TRAFFIC_CLASSES,
    Admitted,
    admitted,
    micros_to_iso,
)

JoinStatus = Literal["READY", "MISSING_CONTEXT", "LATE_JOIN"]
MISSING_ANCHOR = "flow_anchor_missing"
MISSING_ARRIVAL = "arrival_missing"


@dataclass(frozen=True)
class FlowBinding:
    """A flow bound to its session and entities, from its flow anchor."""

    flow_id: str
    session_id: str
    customer_id: str
    account_id: str
    card_id: str
    device_id: str
    merchant_id: str
    channel: str | None
    anchor_ts_micros: int
    anchor_event_id: str

    @property
    def order_key(self) -> tuple[int, str]:
        """The anchor's place in the total order."""
        return (self.anchor_ts_micros, self.anchor_event_id)

    def canonical(self) -> dict[str, Any]:
        """Plain, persistable form."""
        row = dict(self.__dict__)
        row["anchor_ts_utc"] = micros_to_iso(row.pop("anchor_ts_micros"))
        return row


@dataclass(frozen=True)
class Arrival:
    """A session's arrival context."""

    session_id: str
    arrival_id: str
    customer_id: str
    device_id: str | None
    channel: str
    ip_country: str
    ts_micros: int
    event_id: str

    @property
    def order_key(self) -> tuple[int, str]:
        """The arrival's place in the total order."""
        return (self.ts_micros, self.event_id)

    def canonical(self) -> dict[str, Any]:
        """Plain, persistable form."""
        row = dict(self.__dict__)
        row["ts_utc"] = micros_to_iso(row.pop("ts_micros"))
        return row


@dataclass(frozen=True)
class JoinReadiness:
    """Whether a traffic event can be joined with its context, and the frame when it can."""

    status: JoinStatus
    missing: tuple[str, ...]
    binding: FlowBinding | None
    arrival: Arrival | None

    def frame(self) -> dict[str, Any] | None:
        """The join frame (binding + arrival) when ready, else None."""
        if self.binding is None or self.arrival is None:
            return None
        return {"binding": self.binding.canonical(), "arrival": self.arrival.canonical()}


def binding_of(event: Admitted) -> FlowBinding:
    """The FlowBinding a flow-anchor record carries."""
    ids = {kind: event.text(f"{kind}_id") for kind in ENTITY_KINDS}
    return FlowBinding(event.text("flow_id"), event.text("session_id"), ids["customer"], ids["account"], ids["card"],
                       ids["device"], ids["merchant"], event.optional_text("channel"), event.ts_micros, event.event_id)


def arrival_of(event: Admitted) -> Arrival:
    """The Arrival an arrival-events record carries."""
    return Arrival(event.text("session_id"), event.text("arrival_id"), event.text("customer_id"), event.optional_text("device_id"),
                   event.text("channel"), event.text("ip_country"), event.ts_micros, event.event_id)


@dataclass
class CsfbCounters:
    """Join counters (operational: they depend on consumption order)."""

    anchors_applied: int = 0
    arrivals_applied: int = 0
    duplicates: int = 0
    context_conflicts: int = 0
    join_hits: int = 0
    join_misses: int = 0
    late_joins: int = 0


@dataclass
class CsfbState:
    """In-memory CSFB state: FlowBinding index, arrivals by session, pending misses, counters."""

    bindings: dict[str, FlowBinding] = field(default_factory=dict)
    arrivals: dict[str, Arrival] = field(default_factory=dict)
    pending: dict[str, set[str]] = field(default_factory=dict)
    pending_by_session: dict[str, set[str]] = field(default_factory=dict)
    pending_session: dict[str, str] = field(default_factory=dict)
    late_joined: set[str] = field(default_factory=set)
    counters: CsfbCounters = field(default_factory=CsfbCounters)

    def apply(self, envelope: dict[str, Any]) -> JoinReadiness | None:
        """Apply a context record (anchor or arrival) or judge a traffic record's join.

        Context: stored (earliest wins, redelivery is a no-op) and pending misses it completes
        count as late joins. Traffic: returns its readiness and counts a hit or a miss.
        """
        return self.apply_event(admitted(envelope, expect=(*ANCHOR_CLASSES, ARRIVAL_EVENTS, *TRAFFIC_CLASSES)))

    def apply_event(self, event: Admitted) -> JoinReadiness | None:
        """`apply` for a record already read with `admitted` (a store that checked the whole batch
        first hands the parsed events on instead of reading every envelope twice)."""
        if event.event_class in TRAFFIC_CLASSES:
            return self.observe_traffic(event)
        if event.event_class == ARRIVAL_EVENTS:
            arrival = arrival_of(event)
            if self._keep(self.arrivals, arrival.session_id, arrival):
                self.counters.arrivals_applied += 1
            for flow in sorted(self.pending_by_session.get(arrival.session_id, ())):
                self._resolve_pending(flow)
            return None
        binding = binding_of(event)
        if self._keep(self.bindings, binding.flow_id, binding):
            self.counters.anchors_applied += 1
        self._resolve_pending(binding.flow_id)
        return None

    def _keep(self, table: dict[str, Any], key: str, item: FlowBinding | Arrival) -> bool:
        held = table.get(key)
        if held is not None and held.order_key == item.order_key:
            self.counters.duplicates += 1
            return False
        if held is not None:
            self.counters.context_conflicts += 1
            if held.order_key < item.order_key:
                return False
        table[key] = item
        return True

    def resolve_flow_binding(self, flow_id: str) -> FlowBinding | None:
        """The flow's binding (session and entities), None when its anchor has not arrived."""
        return self.bindings.get(flow_id)

    def join_readiness(self, flow_id: str, session_id: str | None = None, event_id: str | None = None) -> JoinReadiness:
        """READY / MISSING_CONTEXT (with reasons) / LATE_JOIN for a traffic event of `flow_id`."""
        binding = self.bindings.get(flow_id)
        session = binding.session_id if binding is not None else session_id
        arrival = self.arrivals.get(session) if session else None
        missing = tuple(r for r, ok in ((MISSING_ANCHOR, binding is not None), (MISSING_ARRIVAL, arrival is not None)) if not ok)
        if missing:
            return JoinReadiness("MISSING_CONTEXT", missing, binding, arrival)
        status: JoinStatus = "LATE_JOIN" if event_id is not None and event_id in self.late_joined else "READY"
        return JoinReadiness(status, (), binding, arrival)

    def observe_traffic(self, event: Admitted) -> JoinReadiness:
        """Judge one traffic event's join and count it; a miss waits in `pending` for its context."""
        flow_id = event.text("flow_id")
        readiness = self.join_readiness(flow_id, event.text("session_id"), event.event_id)
        if readiness.status == "MISSING_CONTEXT":
            self.counters.join_misses += 1
            self.pending.setdefault(flow_id, set()).add(event.event_id)
            self.pending_by_session.setdefault(event.text("session_id"), set()).add(flow_id)
            self.pending_session[flow_id] = event.text("session_id")
        else:
            self.counters.join_hits += 1
        return readiness

    def _resolve_pending(self, flow_id: str) -> None:
        waiting = self.pending.get(flow_id)
        if waiting and self.join_readiness(flow_id).status != "MISSING_CONTEXT":
            self.counters.late_joins += len(waiting)
            self.late_joined |= waiting
            del self.pending[flow_id]
            session = self.pending_session.pop(flow_id, None)
            flows = self.pending_by_session.get(session or "")
            if flows is not None:
                flows.discard(flow_id)
                if not flows:
                    del self.pending_by_session[session or ""]

    def canonical_rows(self) -> Iterator[dict[str, Any]]:
        """Bindings and arrivals as plain rows (the CSFB part of the state digest)."""
        for binding in self.bindings.values():
            yield {"row": "flow_binding", **binding.canonical()}
        for arrival in self.arrivals.values():
            yield {"row": "arrival", **arrival.canonical()}
