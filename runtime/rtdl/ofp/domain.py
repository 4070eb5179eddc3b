"""Online features (OFP): per-entity event facts and point-in-time window features over them.

What is persisted is one `EventFact` per (entity, traffic event): the event time, the event id,
the amount in minor units and the attributes features count (merchant, country, device, p2p,
round amount). A fact is idempotent by (entity_key, event_id), so redelivery changes nothing.
Features are never stored: `features_as_of` is a pure function of the facts that come strictly
before the asked event in the total order (ts_utc, event_id), so the answer is the same whatever
order, batch size or bus the facts arrived by. Facts older than the horizon (24 h + grace) before
the newest event are evicted; the digest applies the same cut, so eviction timing never shows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.rtdl.events import ENTITY_KINDS, TRAFFIC_CLASSES, Admitted, RtdlPayloadInvalid, Watermarks, admitted, micros_to_iso

SECOND = 1_000_000
#: The feature windows: name and length. Nested, ascending; the last one is the horizon.
WINDOWS: tuple[tuple[str, int], ...] = (("1m", 60 * SECOND), ("10m", 600 * SECOND), ("1h", 3600 * SECOND), ("24h", 86_400 * SECOND))
HORIZON_MICROS = WINDOWS[-1][1]
#: How far behind the newest event a point-in-time read stays exact (facts are kept 24 h + grace).
DEFAULT_GRACE_MICROS = 3600 * SECOND
#: A round amount: at least 100 units and a whole multiple of 50 (mule transfers move such sums).
ROUND_MIN_MINOR = 100_00
ROUND_STEP_MINOR = 50_00
P2P_CHANNEL = "p2p"
P2P_EVENT_TYPE = "transfer"


@dataclass(frozen=True, slots=True)
class EventFact:
    """One traffic event as seen by one entity: the persisted unit of OFP state."""

    entity_kind: str
    entity_id: str
    ts_micros: int
    event_id: str
    amount_minor: int
    merchant_id: str
    merchant_country: str
    device_id: str
    is_p2p: bool
    is_round: bool

    @property
    def entity_key(self) -> str:
        """`<kind>:<id>`: the key facts are grouped and stored by."""
        return f"{self.entity_kind}:{self.entity_id}"

    @property
    def order_key(self) -> tuple[int, str]:
        """Place in the total order (ts, event_id)."""
        return (self.ts_micros, self.event_id)

    def to_row(self) -> dict[str, Any]:
        """The persistable (and canonical) row; `from_row` reads it back."""
        return {
            "entity_key": self.entity_key, "entity_kind": self.entity_kind, "entity_id": self.entity_id,
            "ts_micros": self.ts_micros, "event_id": self.event_id, "amount_minor": self.amount_minor,
            "merchant_id": self.merchant_id, "merchant_country": self.merchant_country, "device_id": self.device_id,
            "is_p2p": self.is_p2p, "is_round": self.is_round,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EventFact:
        """A fact from its stored row (extra columns such as entity_key are ignored)."""
        return cls(row["entity_kind"], row["entity_id"], int(row["ts_micros"]), row["event_id"], int(row["amount_minor"]),
                   row["merchant_id"], row["merchant_country"], row["device_id"], bool(row["is_p2p"]), bool(row["is_round"]))


def facts_of(event: Admitted) -> list[EventFact]:
    """The facts of one traffic event: one per entity it carries (card, customer, account, device, merchant)."""
    if event.event_class not in TRAFFIC_CLASSES:
        raise RtdlPayloadInvalid(f"OFP reads traffic only, got {event.event_class} {event.event_id}")
    ids = {kind: event.text(f"{kind}_id") for kind in ENTITY_KINDS}
    amount = event.amount_minor()
    country = event.text("merchant_country")
    channel = event.text("channel")
    is_p2p = channel == P2P_CHANNEL or event.event_type == P2P_EVENT_TYPE
    is_round = amount >= ROUND_MIN_MINOR and amount % ROUND_STEP_MINOR == 0
    return [EventFact(kind, ids[kind], event.ts_micros, event.event_id, amount, ids["merchant"], country, ids["device"], is_p2p, is_round)
            for kind in ENTITY_KINDS]


@dataclass(frozen=True)
class WindowAggregates:
    """Aggregates of one window over the facts strictly before the event."""

    count: int
    amount_sum: float
    amount_max: float
    distinct_merchants: int
    distinct_countries: int
    distinct_devices: int
    p2p_count: int
    round_amount_count: int


@dataclass(frozen=True)
class EntityFeatures:
    """Point-in-time features of one entity as of one event (stable names; `canonical` is the wire form)."""

    entity_kind: str
    entity_id: str
    as_of_ts_utc: str
    as_of_event_id: str
    windows: dict[str, WindowAggregates]
    seconds_since_previous: float | None
    baseline_amount_mean_24h: float | None
    baseline_count_24h: int
    amount_to_baseline_ratio: float | None
    first_seen_entity: bool
    first_seen_merchant: bool | None
    first_seen_device: bool | None
    first_seen_country: bool | None

    def canonical(self) -> dict[str, Any]:
        """Plain JSON form with sorted, stable keys (what DF reads and what is hashed)."""
        return {
            "entity_kind": self.entity_kind, "entity_id": self.entity_id,
            "as_of_ts_utc": self.as_of_ts_utc, "as_of_event_id": self.as_of_event_id,
            "windows": {name: dict(agg.__dict__) for name, agg in self.windows.items()},
            "seconds_since_previous": self.seconds_since_previous,
            "baseline_amount_mean_24h": self.baseline_amount_mean_24h, "baseline_count_24h": self.baseline_count_24h,
            "amount_to_baseline_ratio": self.amount_to_baseline_ratio,
            "first_seen_entity": self.first_seen_entity, "first_seen_merchant": self.first_seen_merchant,
            "first_seen_device": self.first_seen_device, "first_seen_country": self.first_seen_country,
        }


class EntityFacts:
    """One entity's facts as parallel columns in (ts, event_id) order.

    Columns let `features_as_of` aggregate a window with C-speed built-ins over slices (sum, max,
    set) instead of a Python loop per fact: a merchant with 20k facts in its 24 h window stays
    within milliseconds. A store loads an entity's recent rows with `from_facts`.
    """

    __slots__ = ("amounts", "countries", "devices", "event_ids", "keys", "merchants", "p2p", "rounds", "ts")

    def __init__(self) -> None:
        self.keys: list[tuple[int, str]] = []
        self.ts: list[int] = []
        self.event_ids: list[str] = []
        self.amounts: list[int] = []
        self.merchants: list[str] = []
        self.countries: list[str] = []
        self.devices: list[str] = []
        self.p2p: list[int] = []
        self.rounds: list[int] = []

    @classmethod
    def from_facts(cls, facts: Iterable[EventFact]) -> EntityFacts:
        """Columns of `facts` (any order; duplicates by event id are kept once)."""
        columns = cls()
        for fact in sorted(facts, key=_order_key):
            columns.add(fact)
        return columns

    @classmethod
    def from_sorted_rows(cls, rows: list[tuple[Any, ...]]) -> EntityFacts:
        """Columns of rows (ts, event_id, amount_minor, merchant, country, device, p2p, round) that
        are already in (ts, event_id) order without duplicates: a store's index range read, turned
        into columns without a Python step per fact."""
        columns = cls()
        if rows:
            ts, ids, amounts, merchants, countries, devices, p2p, rounds = (list(c) for c in zip(*rows, strict=True))
            columns.ts, columns.event_ids, columns.amounts = ts, ids, amounts
            columns.merchants, columns.countries, columns.devices = merchants, countries, devices
            columns.p2p, columns.rounds = [int(v) for v in p2p], [int(v) for v in rounds]
            columns.keys = list(zip(ts, ids, strict=True))
        return columns

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, fact: EventFact) -> bool:
        """Insert one fact in order; False when its event is already present."""
        key = fact.order_key
        pos = bisect.bisect_left(self.keys, key)
        if pos < len(self.keys) and self.keys[pos] == key:
            return False
        self.keys.insert(pos, key)
        self.ts.insert(pos, fact.ts_micros)
        self.event_ids.insert(pos, fact.event_id)
        self.amounts.insert(pos, fact.amount_minor)
        self.merchants.insert(pos, fact.merchant_id)
        self.countries.insert(pos, fact.merchant_country)
        self.devices.insert(pos, fact.device_id)
        self.p2p.insert(pos, int(fact.is_p2p))
        self.rounds.insert(pos, int(fact.is_round))
        return True

    def drop_before(self, cutoff: int) -> int:
        """Remove facts with ts < cutoff; returns how many."""
        cut = bisect.bisect_left(self.ts, cutoff)
        if cut:
            columns: tuple[list[Any], ...] = (self.keys, self.ts, self.event_ids, self.amounts, self.merchants, self.countries,
                                              self.devices, self.p2p, self.rounds)
            for column in columns:
                del column[:cut]
        return cut

    def fact(self, i: int, entity_kind: str, entity_id: str) -> EventFact:
        """The i-th fact as an EventFact."""
        return EventFact(entity_kind, entity_id, self.ts[i], self.event_ids[i], self.amounts[i], self.merchants[i],
                         self.countries[i], self.devices[i], bool(self.p2p[i]), bool(self.rounds[i]))


def features_as_of(facts: EntityFacts, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                   current: EventFact | None = None) -> EntityFeatures:
    """Features of an entity as of event (ts, event_id), from the entity's facts.

    Only facts strictly before (ts, event_id) count; a window of length w holds those with
    ts > ts_event - w. `current` (or, when omitted, the entity's fact for that event if present)
    gives the amount and attributes the baseline ratio and first-seen flags compare with.
    """
    pos = bisect.bisect_left(facts.keys, (ts_micros, event_id))
    if current is None and pos < len(facts) and facts.keys[pos] == (ts_micros, event_id):
        current = facts.fact(pos, entity_kind, entity_id)
    windows: list[WindowSums] = []
    merchants: set[str] = set()
    countries: set[str] = set()
    devices: set[str] = set()
    for _, length in WINDOWS:
        lo = bisect.bisect_right(facts.ts, ts_micros - length, 0, pos)
        merchants, countries, devices = set(facts.merchants[lo:pos]), set(facts.countries[lo:pos]), set(facts.devices[lo:pos])
        windows.append(WindowSums(pos - lo, sum(facts.amounts[lo:pos]), max(facts.amounts[lo:pos], default=0), len(merchants),
                                  len(countries), len(devices), sum(facts.p2p[lo:pos]), sum(facts.rounds[lo:pos])))
    seen = None if current is None else (current.merchant_id in merchants, current.device_id in devices,
                                         current.merchant_country in countries)
    previous = None if pos == 0 else facts.ts[pos - 1]
    return assemble_features(entity_kind, entity_id, ts_micros, event_id, windows, previous, current, seen)


@dataclass(frozen=True, slots=True)
class WindowSums:
    """One window's integer aggregates (amounts in minor units) before they become `WindowAggregates`:
    what any store computes, in memory or in SQL, so every path assembles features the same way."""

    count: int
    amount_sum_minor: int
    amount_max_minor: int
    distinct_merchants: int
    distinct_countries: int
    distinct_devices: int
    p2p_count: int
    round_amount_count: int


def assemble_features(entity_kind: str, entity_id: str, ts_micros: int, event_id: str, windows: list[WindowSums],
                      previous_ts_micros: int | None, current: EventFact | None,
                      seen_24h: tuple[bool, bool, bool] | None) -> EntityFeatures:
    """`EntityFeatures` from the integer aggregates of every window (in `WINDOWS` order), the time
    of the previous fact inside the horizon, the event's own fact, and whether its merchant, device
    and country occur in the 24 h window (None without `current`)."""
    day = windows[-1]
    count, total = day.count, day.amount_sum_minor
    mean = round(total / count / 100, 6) if count else None
    ratio = None
    if current is not None and count and total > 0:
        ratio = round(current.amount_minor * count / total, 6)
    aggregates = {name: WindowAggregates(w.count, w.amount_sum_minor / 100, w.amount_max_minor / 100, w.distinct_merchants,
                                         w.distinct_countries, w.distinct_devices, w.p2p_count, w.round_amount_count)
                  for (name, _), w in zip(WINDOWS, windows, strict=True)}
    return EntityFeatures(
        entity_kind=entity_kind, entity_id=entity_id, as_of_ts_utc=micros_to_iso(ts_micros), as_of_event_id=event_id,
        windows=aggregates,
        seconds_since_previous=None if previous_ts_micros is None else (ts_micros - previous_ts_micros) / SECOND,
        baseline_amount_mean_24h=mean, baseline_count_24h=count, amount_to_baseline_ratio=ratio,
        first_seen_entity=count == 0,
        first_seen_merchant=None if seen_24h is None else not seen_24h[0],
        first_seen_device=None if seen_24h is None else not seen_24h[1],
        first_seen_country=None if seen_24h is None else not seen_24h[2],
    )


def _order_key(fact: EventFact) -> tuple[int, str]:
    return fact.order_key


@dataclass
class OfpCounters:
    """What OFP applied: events, facts, duplicates (redeliveries), late events."""

    events_applied: int = 0
    facts_written: int = 0
    duplicates: int = 0
    late_events: int = 0
    facts_evicted: int = 0


@dataclass
class OfpState:
    """In-memory OFP state: facts per entity in (ts, event_id) order, watermarks and counters.

    The Postgres store keeps the same rows (`EventFact.to_row`, unique on entity_key+event_id) and
    loads one entity's facts of the last 24 h to answer `features_as_of` with the same function.
    """

    grace_micros: int = DEFAULT_GRACE_MICROS
    facts: dict[str, EntityFacts] = field(default_factory=dict)
    watermarks: Watermarks = field(default_factory=Watermarks)
    counters: OfpCounters = field(default_factory=OfpCounters)
    newest_ts_micros: int | None = None

    def apply(self, envelope: dict[str, Any], topic: str = "", partition: int | str = 0) -> list[EventFact]:
        """Apply one traffic envelope read from (topic, partition); returns the facts that were new.

        A redelivered event writes nothing (duplicate); a late one is applied and counted.
        """
        event = admitted(envelope, expect=TRAFFIC_CLASSES)
        new = [fact for fact in facts_of(event) if self.add(fact)]
        if not new:
            self.counters.duplicates += 1
            return new
        self.counters.events_applied += 1
        self.counters.facts_written += len(new)
        if self.watermarks.observe(topic, partition, event.ts_micros):
            self.counters.late_events += 1
        return new

    def add(self, fact: EventFact) -> bool:
        """Insert one fact in order; False when (entity_key, event_id) is already present."""
        columns = self.facts.get(fact.entity_key)
        if columns is None:
            columns = self.facts[fact.entity_key] = EntityFacts()
        if not columns.add(fact):
            return False
        if self.newest_ts_micros is None or fact.ts_micros > self.newest_ts_micros:
            self.newest_ts_micros = fact.ts_micros
        return True

    def features_as_of(self, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                       current: EventFact | None = None) -> EntityFeatures:
        """Point-in-time features of one entity (see the module function)."""
        return features_as_of(self.facts.get(f"{entity_kind}:{entity_id}", _EMPTY), entity_kind, entity_id, ts_micros, event_id,
                              current)

    def event_features(self, envelope: dict[str, Any]) -> dict[str, EntityFeatures]:
        """Features of every entity of one traffic event, as of that event (what DF asks for)."""
        event = admitted(envelope, expect=TRAFFIC_CLASSES)
        return {fact.entity_kind: self.features_as_of(fact.entity_kind, fact.entity_id, fact.ts_micros, fact.event_id, fact)
                for fact in facts_of(event)}

    def retention_cutoff(self) -> int | None:
        """Facts strictly older than this are outside the horizon (24 h + grace before the newest event)."""
        return None if self.newest_ts_micros is None else self.newest_ts_micros - HORIZON_MICROS - self.grace_micros

    def evict(self) -> int:
        """Drop facts older than the retention cutoff; returns how many went."""
        cutoff = self.retention_cutoff()
        if cutoff is None:
            return 0
        dropped = 0
        for key in list(self.facts):
            columns = self.facts[key]
            dropped += columns.drop_before(cutoff)
            if not columns:
                del self.facts[key]
        self.counters.facts_evicted += dropped
        return dropped

    def canonical_rows(self) -> Iterator[dict[str, Any]]:
        """The digest rows: every fact inside the retention horizon, whatever was evicted when."""
        yield from digest_rows(self.all_facts(), self.retention_cutoff())

    def all_facts(self) -> Iterator[EventFact]:
        """Every fact held, entity by entity."""
        for key, columns in self.facts.items():
            kind, entity_id = key.split(":", 1)
            for i in range(len(columns)):
                yield columns.fact(i, kind, entity_id)


def digest_rows(facts: Iterable[EventFact], cutoff: int | None) -> Iterator[dict[str, Any]]:
    """Fact rows at or after `cutoff` (all when None): the OFP part of the state digest."""
    for fact in facts:
        if cutoff is None or fact.ts_micros >= cutoff:
            yield fact.to_row()


_EMPTY = EntityFacts()
