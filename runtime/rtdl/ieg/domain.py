"""Identity and entity graph (IEG): who used what, and since when, from every admitted topic.

Entities (customer, account, card, device, merchant, plus arrivals) and edges between them each
carry first and last seen as (ts, event_id) pairs. Applying an observation is a min/max merge, so
redelivery and any arrival order give the same graph; a Postgres store does the same merge in
one upsert (`LEAST`/`GREATEST` on the pair). Queries answer as of an event: only edges first seen
strictly before it count. Reconciliation counts records in per class against the entity and
edge writes each class implies, so nothing written is unexplained.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.rtdl.events import (
    ANCHOR_CLASSES,
    ARRIVAL_ENTITIES,
    ARRIVAL_EVENTS,
    ENTITY_KINDS,
    EVENT_CLASSES,
    TRAFFIC_CLASSES,
    Admitted,
    RtdlPayloadInvalid,
    admitted,
    micros_to_iso,
)

ARRIVAL = "arrival"
#: Edges a flow (anchor or traffic event) implies: (from kind, relation, to kind).
FLOW_EDGES: tuple[tuple[str, str, str], ...] = (
    ("customer", "holds", "account"),
    ("customer", "holds", "card"),
    ("account", "funds", "card"),
    ("customer", "uses", "device"),
    ("card", "used_on", "device"),
    ("card", "paid", "merchant"),
)
#: The extra edge of a p2p flow: the sending account to the collector (the payee id of the flow).
P2P_EDGE = ("account", "sent_p2p", "merchant")
ARRIVAL_EDGE = ("customer", "uses", "device")

OrderKey = tuple[int, str]
EntityKey = tuple[str, str]
EdgeKey = tuple[str, str, str, str, str]


@dataclass
class Seen:
    """First and last sighting of an entity or edge, each as (ts_micros, event_id)."""

    first: OrderKey
    last: OrderKey

    def merge(self, at: OrderKey) -> bool:
        """Widen to include `at`; True when anything changed."""
        changed = False
        if at < self.first:
            self.first, changed = at, True
        if at > self.last:
            self.last, changed = at, True
        return changed


@dataclass
class Observation:
    """What one record says: the entities and edges it saw, at its place in the order."""

    event_class: str
    at: OrderKey
    entities: list[EntityKey]
    edges: list[EdgeKey]


def observe(event: Admitted) -> Observation:
    """The entities and edges one admitted record carries (raises RtdlPayloadInvalid when it cannot)."""
    at = event.order_key
    if event.event_class in TRAFFIC_CLASSES or event.event_class in ANCHOR_CLASSES:
        ids = {kind: event.text(f"{kind}_id") for kind in ENTITY_KINDS}
        edges = [(a, ids[a], rel, b, ids[b]) for a, rel, b in FLOW_EDGES]
        if event.optional_text("channel") == "p2p" or event.event_type == "transfer":
            a, rel, b = P2P_EDGE
            edges.append((a, ids[a], rel, b, ids[b]))
        return Observation(event.event_class, at, [(k, ids[k]) for k in ENTITY_KINDS], edges)
    if event.event_class == ARRIVAL_EVENTS:
        customer, device, arrival = event.text("customer_id"), event.optional_text("device_id"), event.text("arrival_id")
        entities = [(ARRIVAL, arrival), ("customer", customer)]
        edges = [("customer", customer, "arrived", ARRIVAL, arrival)]
        if device:
            entities.append(("device", device))
            edges.append(("customer", customer, ARRIVAL_EDGE[1], "device", device))
        return Observation(event.event_class, at, entities, edges)
    if event.event_class == ARRIVAL_ENTITIES:
        kind, entity, arrival = event.text("entity_type"), event.text("entity_id"), event.text("arrival_id")
        if kind not in ENTITY_KINDS:
            raise RtdlPayloadInvalid(f"{event.event_class} {event.event_id}: entity_type {kind!r} is not one of {ENTITY_KINDS}")
        return Observation(event.event_class, at, [(kind, entity), (ARRIVAL, arrival)], [(kind, entity, "seen_at", ARRIVAL, arrival)])
    raise RtdlPayloadInvalid(f"IEG does not read {event.event_class} {event.event_id}")


@dataclass
class ClassCounts:
    """Reconciliation counts of one event class."""

    records_in: int = 0
    entity_writes: int = 0
    edge_writes: int = 0


@dataclass
class IegState:
    """In-memory IEG state: entities, edges, an adjacency index and reconciliation counts."""

    entities: dict[EntityKey, Seen] = field(default_factory=dict)
    edges: dict[EdgeKey, Seen] = field(default_factory=dict)
    adjacency: dict[EntityKey, set[EdgeKey]] = field(default_factory=dict)
    per_class: dict[str, ClassCounts] = field(default_factory=dict)
    rejected: int = 0
    #: False for a batch that is only merged and written (the store's handler): no neighbour queries
    #: are asked of it, so the adjacency index is not built.
    track_adjacency: bool = True

    def apply(self, envelope: dict[str, Any]) -> Observation:
        """Apply one admitted record of any RTDL input class (a min/max merge: idempotent)."""
        try:
            obs = observe(admitted(envelope, expect=EVENT_CLASSES))
        except RtdlPayloadInvalid:
            self.rejected += 1
            raise
        counts = self.per_class.setdefault(obs.event_class, ClassCounts())
        counts.records_in += 1
        counts.entity_writes += len(obs.entities)
        counts.edge_writes += len(obs.edges)
        at, entities, edges = obs.at, self.entities, self.edges
        for key in obs.entities:
            seen = entities.get(key)
            if seen is None:
                entities[key] = Seen(at, at)
            else:
                seen.merge(at)
        for edge in obs.edges:
            seen = edges.get(edge)
            if seen is None:
                edges[edge] = Seen(at, at)
                if self.track_adjacency:
                    self.adjacency.setdefault((edge[0], edge[1]), set()).add(edge)
                    self.adjacency.setdefault((edge[3], edge[4]), set()).add(edge)
            else:
                seen.merge(at)
        return obs

    def neighbours(self, kind: str, entity_id: str, relation: str, other_kind: str,
                   as_of: OrderKey | None = None) -> list[str]:
        """Ids of `other_kind` linked to (kind, entity_id) by `relation`, either direction, sorted.

        With `as_of` (ts_micros, event_id), only edges first seen strictly before it count.
        """
        out = set()
        for edge in self.adjacency.get((kind, entity_id), ()):
            if edge[2] != relation or (as_of is not None and self.edges[edge].first >= as_of):
                continue
            if (edge[0], edge[1]) == (kind, entity_id) and edge[3] == other_kind:
                out.add(edge[4])
            elif (edge[3], edge[4]) == (kind, entity_id) and edge[0] == other_kind:
                out.add(edge[1])
        return sorted(out)

    def devices_of_customer(self, customer_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Devices a customer used."""
        return self.neighbours("customer", customer_id, "uses", "device", as_of)

    def customers_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Customers seen on a device (more than one is a shared or taken-over device)."""
        return self.neighbours("device", device_id, "uses", "customer", as_of)

    def cards_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Cards used on a device (many is card testing)."""
        return self.neighbours("device", device_id, "used_on", "card", as_of)

    def senders_of_collector(self, collector_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Distinct accounts that sent p2p transfers to a collector (many is a mule collector)."""
        return self.neighbours("merchant", collector_id, "sent_p2p", "account", as_of)

    def first_seen(self, kind: str, entity_id: str) -> OrderKey | None:
        """When an entity was first seen (None when never)."""
        seen = self.entities.get((kind, entity_id))
        return None if seen is None else seen.first

    def reconciliation(self) -> dict[str, Any]:
        """Records in per class vs entity and edge writes; `unexplained` lists any mismatch (see `reconcile`)."""
        return reconcile(self.per_class, self.rejected, _count_by(k[0] for k in self.entities),
                         _count_by(e[2] for e in self.edges))

    def canonical_rows(self) -> Iterator[dict[str, Any]]:
        """Every entity and edge as a plain row (the IEG part of the state digest)."""
        for (kind, entity_id), seen in self.entities.items():
            yield {"row": "entity", "kind": kind, "id": entity_id, **_seen_row(seen)}
        for (a_kind, a_id, relation, b_kind, b_id), seen in self.edges.items():
            yield {"row": "edge", "from_kind": a_kind, "from_id": a_id, "relation": relation, "to_kind": b_kind,
                   "to_id": b_id, **_seen_row(seen)}


def reconcile(per_class: dict[str, ClassCounts], rejected: int, entities_by_kind: dict[str, int],
              edges_by_relation: dict[str, int]) -> dict[str, Any]:
    """The reconciliation document: records in per class vs the entity and edge writes they imply.

    Each class implies a fixed number of writes per record (traffic and anchors one more edge
    when p2p); a mismatch would mean a record was half applied or written twice. A store passes
    the same counts read back from its tables.
    """
    classes = {}
    unexplained = []
    for event_class, c in sorted(per_class.items()):
        lo, hi = _writes_per_record(event_class)
        ok = (lo[0] * c.records_in <= c.entity_writes <= hi[0] * c.records_in
              and lo[1] * c.records_in <= c.edge_writes <= hi[1] * c.records_in)
        classes[event_class] = {"records_in": c.records_in, "entity_writes": c.entity_writes, "edge_writes": c.edge_writes}
        if not ok:
            unexplained.append(event_class)
    return {
        "per_class": classes,
        "records_in": sum(c.records_in for c in per_class.values()),
        "records_rejected": rejected,
        "entities": sum(entities_by_kind.values()),
        "edges": sum(edges_by_relation.values()),
        "entities_by_kind": dict(sorted(entities_by_kind.items())),
        "edges_by_relation": dict(sorted(edges_by_relation.items())),
        "unexplained": unexplained,
        "status": "PASS" if not unexplained else "FAIL",
    }


def _seen_row(seen: Seen) -> dict[str, Any]:
    return {"first_ts_utc": micros_to_iso(seen.first[0]), "first_event_id": seen.first[1],
            "last_ts_utc": micros_to_iso(seen.last[0]), "last_event_id": seen.last[1]}


def _writes_per_record(event_class: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(entities, edges) at least and at most, per record of the class."""
    if event_class in TRAFFIC_CLASSES or event_class in ANCHOR_CLASSES:
        return (len(ENTITY_KINDS), len(FLOW_EDGES)), (len(ENTITY_KINDS), len(FLOW_EDGES) + 1)
    if event_class == ARRIVAL_EVENTS:
        return (2, 1), (3, 2)
    return (2, 1), (2, 1)


def _count_by(values: Iterator[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
