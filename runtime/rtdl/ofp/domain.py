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


def features_as_of(facts: list[EventFact], entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                   current: EventFact | None = None) -> EntityFeatures:
    """Features of an entity as of event (ts, event_id), from `facts` sorted by (ts, event_id).

    Only facts strictly before (ts, event_id) count; a window of length w holds those with
    ts > ts_event - w. `current` (or, when omitted, the entity's fact for that event if present)
    gives the amount and attributes the baseline ratio and first-seen flags compare with.
    """
    pos = bisect.bisect_left(facts, (ts_micros, event_id), key=_order_key)
    if current is None and pos < len(facts) and facts[pos].order_key == (ts_micros, event_id):
        current = facts[pos]
    counts = [0] * len(WINDOWS)
    sums = [0] * len(WINDOWS)
    maxes = [0] * len(WINDOWS)
    p2p = [0] * len(WINDOWS)
    rounds = [0] * len(WINDOWS)
    merchants: list[set[str]] = [set() for _ in WINDOWS]
    countries: list[set[str]] = [set() for _ in WINDOWS]
    devices: list[set[str]] = [set() for _ in WINDOWS]
    starts = [ts_micros - length for _, length in WINDOWS]
    smallest = 0
    i = pos - 1
    while i >= 0:
        fact = facts[i]
        while smallest < len(WINDOWS) and fact.ts_micros <= starts[smallest]:
            smallest += 1
        if smallest == len(WINDOWS):
            break
        # The fact is in window `smallest` and every longer one; add it to the smallest only and
        # cumulate below (sets are unioned upward at the end).
        counts[smallest] += 1
        sums[smallest] += fact.amount_minor
        if fact.amount_minor > maxes[smallest]:
            maxes[smallest] = fact.amount_minor
        p2p[smallest] += fact.is_p2p
        rounds[smallest] += fact.is_round
        merchants[smallest].add(fact.merchant_id)
        countries[smallest].add(fact.merchant_country)
        devices[smallest].add(fact.device_id)
        i -= 1
    windows: dict[str, WindowAggregates] = {}
    for w in range(len(WINDOWS)):
        if w:
            counts[w] += counts[w - 1]
            sums[w] += sums[w - 1]
            maxes[w] = max(maxes[w], maxes[w - 1])
            p2p[w] += p2p[w - 1]
            rounds[w] += rounds[w - 1]
            merchants[w] |= merchants[w - 1]
            countries[w] |= countries[w - 1]
            devices[w] |= devices[w - 1]
        windows[WINDOWS[w][0]] = WindowAggregates(counts[w], sums[w] / 100, maxes[w] / 100, len(merchants[w]),
                                                  len(countries[w]), len(devices[w]), p2p[w], rounds[w])
    last = len(WINDOWS) - 1
    previous = facts[pos - 1] if pos > 0 else None
    mean = round(sums[last] / counts[last] / 100, 6) if counts[last] else None
    ratio = None
    if current is not None and counts[last] and sums[last] > 0:
        ratio = round(current.amount_minor * counts[last] / sums[last], 6)
    return EntityFeatures(
        entity_kind=entity_kind, entity_id=entity_id, as_of_ts_utc=micros_to_iso(ts_micros), as_of_event_id=event_id,
        windows=windows,
        seconds_since_previous=None if previous is None else (ts_micros - previous.ts_micros) / SECOND,
        baseline_amount_mean_24h=mean, baseline_count_24h=counts[last], amount_to_baseline_ratio=ratio,
        first_seen_entity=counts[last] == 0,
        first_seen_merchant=None if current is None else current.merchant_id not in merchants[last],
        first_seen_device=None if current is None else current.device_id not in devices[last],
        first_seen_country=None if current is None else current.merchant_country not in countries[last],
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
    facts: dict[str, list[EventFact]] = field(default_factory=dict)
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
        rows = self.facts.setdefault(fact.entity_key, [])
        pos = bisect.bisect_left(rows, fact.order_key, key=_order_key)
        if pos < len(rows) and rows[pos].event_id == fact.event_id:
            return False
        rows.insert(pos, fact)
        if self.newest_ts_micros is None or fact.ts_micros > self.newest_ts_micros:
            self.newest_ts_micros = fact.ts_micros
        return True

    def features_as_of(self, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                       current: EventFact | None = None) -> EntityFeatures:
        """Point-in-time features of one entity (see the module function)."""
        return features_as_of(self.facts.get(f"{entity_kind}:{entity_id}", []), entity_kind, entity_id, ts_micros, event_id, current)

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
            rows = self.facts[key]
            cut = bisect.bisect_left(rows, (cutoff, ""), key=_order_key)
            if cut:
                dropped += cut
                del rows[:cut]
            if not rows:
                del self.facts[key]
        self.counters.facts_evicted += dropped
        return dropped

    def canonical_rows(self) -> Iterator[dict[str, Any]]:
        """The digest rows: every fact inside the retention horizon, whatever was evicted when."""
        yield from digest_rows((f for rows in self.facts.values() for f in rows), self.retention_cutoff())


def digest_rows(facts: Iterable[EventFact], cutoff: int | None) -> Iterator[dict[str, Any]]:
    """Fact rows at or after `cutoff` (all when None): the OFP part of the state digest."""
    for fact in facts:
        if cutoff is None or fact.ts_micros >= cutoff:
            yield fact.to_row()
