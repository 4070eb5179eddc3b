"""Reading admitted envelopes into the plain values the RTDL domains work on.

OFP, IEG and CSFB all need the same few things from an envelope: its class, its event id, its
event time as integer microseconds and typed payload fields. A payload that breaks the contract
of its class (schemas/events/payloads/) raises `RtdlPayloadInvalid`, a permanent error: the
worker dead-letters that record with its eb_ref and moves on; retrying it can never succeed.
Also home of the per-partition event-time watermark every RTDL store keeps.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.ids import event_time_micros
from runtime.errors import PermanentError

TRAFFIC_CLASSES = ("traffic_fraud", "traffic_baseline")
ANCHOR_CLASSES = ("context_flow_anchor_fraud", "context_flow_anchor_baseline")
ARRIVAL_EVENTS = "context_arrival_events"
ARRIVAL_ENTITIES = "context_arrival_entities"
EVENT_CLASSES = (*TRAFFIC_CLASSES, ARRIVAL_EVENTS, ARRIVAL_ENTITIES, *ANCHOR_CLASSES)
ENTITY_KINDS = ("customer", "account", "card", "device", "merchant")

_EVENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class RtdlPayloadInvalid(PermanentError):
    """An envelope or payload an RTDL handler cannot apply: permanent, never retried.

    A PermanentError: the stream worker dead-letters the record (with its eb_ref and this message)
    instead of backing off; the same bytes would fail again.
    """

    code = "RTDL_PAYLOAD_INVALID"
    next_step = ("the record is dead-lettered with its eb_ref and reason; fix the producer so the payload meets "
                 "schemas/events/payloads/<event_class>.schema.json")


def parse_ts_micros(value: Any, what: str = "ts_utc") -> int:
    """Integer microseconds since the epoch of an RFC 3339 timestamp with a zone (Z or offset)."""
    if not isinstance(value, str) or not value:
        raise RtdlPayloadInvalid(f"{what} is not a timestamp string: {value!r}")
    micros = event_time_micros(value)
    if micros is None:
        raise RtdlPayloadInvalid(f"{what} is not an RFC 3339 time with a zone: {value!r}")
    return micros


#: Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59: what `datetime` can write.
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799


def micros_to_iso(micros: int) -> str:
    """RFC 3339 UTC (microseconds, trailing Z) of epoch microseconds: the canonical time form.

    Formatted from `time.gmtime` (~30% faster than `datetime`: the state digest writes two per
    IEG row); a time outside the years 1..9999 (what `datetime` can write) is a ValueError."""
    seconds, rest = divmod(micros, 1_000_000)
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        raise ValueError(f"{micros} microseconds since the epoch is outside the years 1..9999")
    t = time.gmtime(seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{rest:06d}Z")


@dataclass(frozen=True)
class Admitted:
    """The parts of an admitted envelope the RTDL domains use."""

    event_class: str
    event_id: str
    event_type: str
    ts_micros: int
    payload: dict[str, Any]

    @property
    def order_key(self) -> tuple[int, str]:
        """The event's place in the total order every point-in-time read uses: (ts, event_id)."""
        return (self.ts_micros, self.event_id)

    def text(self, name: str) -> str:
        """A required non-empty string field of the payload."""
        value = self.payload.get(name)
        if not isinstance(value, str) or not value or len(value) > 128:
            raise RtdlPayloadInvalid(f"{self.event_class} {self.event_id}: payload.{name} must be a non-empty string "
                                     f"of at most 128 characters, got {value!r}")
        return value

    def optional_text(self, name: str) -> str | None:
        """An optional string field (None when absent or null)."""
        value = self.payload.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise RtdlPayloadInvalid(f"{self.event_class} {self.event_id}: payload.{name} must be a string, got {value!r}")
        return value

    def amount_minor(self) -> int:
        """The payload amount in minor units (cents): integers keep sums exact and order-independent."""
        value = self.payload.get("amount")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0 or value > 1e12:
            raise RtdlPayloadInvalid(f"{self.event_class} {self.event_id}: payload.amount must be a number >= 0, got {value!r}")
        return round(value * 100)


def admitted(envelope: Any, *, expect: tuple[str, ...] = EVENT_CLASSES) -> Admitted:
    """Check the envelope fields every RTDL domain relies on and return them typed.

    The event time is the envelope's `ts_utc`; the payload's own `ts_utc` must agree when present,
    since a record whose two times disagree would place the event differently per reader.
    """
    if not isinstance(envelope, dict):
        raise RtdlPayloadInvalid(f"envelope is not an object: {type(envelope).__name__}")
    event_class = envelope.get("event_class")
    if event_class not in expect:
        raise RtdlPayloadInvalid(f"event_class {event_class!r} is not one this handler reads ({', '.join(expect)})")
    eid = envelope.get("event_id")
    if not isinstance(eid, str) or not _EVENT_ID_RE.match(eid):
        raise RtdlPayloadInvalid(f"event_id {eid!r} is not 32 lowercase hex characters")
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        raise RtdlPayloadInvalid(f"{event_class} {eid}: payload is not an object")
    raw_ts = envelope.get("ts_utc")
    ts = parse_ts_micros(raw_ts, f"{event_class} {eid}: ts_utc")
    # the payload's copy is almost always the same string: parsed (and compared) only when it differs
    if ("ts_utc" in payload and payload["ts_utc"] != raw_ts
            and parse_ts_micros(payload["ts_utc"], f"{event_class} {eid}: payload.ts_utc") != ts):
        raise RtdlPayloadInvalid(f"{event_class} {eid}: payload.ts_utc {payload['ts_utc']!r} differs from the envelope's "
                                 f"{envelope.get('ts_utc')!r}")
    event_type = envelope.get("event_type")
    return Admitted(str(event_class), eid, event_type if isinstance(event_type, str) else str(event_class), ts, payload)


@dataclass
class Watermarks:
    """Per-partition event-time watermarks: how far in event time each input partition has been read.

    A partition's watermark is the largest event time applied from it minus `allowed_lateness`;
    an event older than its partition's watermark is late: it is still applied (never dropped) and
    counted. The store is complete up to the minimum watermark over the partitions it reads.
    Watermarks and late counts depend on partitioning and consumption order, so they are
    operational state, never part of the state digest.
    """

    allowed_lateness_micros: int = 0
    max_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    late: dict[tuple[str, str], int] = field(default_factory=dict)

    def observe(self, topic: str, partition: int | str, ts_micros: int) -> bool:
        """Record one applied event of a partition; True when it was late for that partition."""
        key = (topic, str(partition))
        previous = self.max_seen.get(key)
        is_late = previous is not None and ts_micros < previous - self.allowed_lateness_micros
        if is_late:
            self.late[key] = self.late.get(key, 0) + 1
        if previous is None or ts_micros > previous:
            self.max_seen[key] = ts_micros
        return is_late

    def watermark(self, topic: str, partition: int | str) -> int | None:
        """The partition's watermark (None before its first event)."""
        seen = self.max_seen.get((topic, str(partition)))
        return None if seen is None else seen - self.allowed_lateness_micros

    def complete_up_to(self, partitions: list[tuple[str, int | str]] | None = None) -> int | None:
        """Event time up to which the store is complete: the minimum watermark over `partitions`
        (default: every partition seen); None while any of them has not delivered an event."""
        keys = [(t, str(p)) for t, p in partitions] if partitions is not None else list(self.max_seen)
        if not keys or any(k not in self.max_seen for k in keys):
            return None
        return min(self.max_seen[k] for k in keys) - self.allowed_lateness_micros

    @property
    def late_total(self) -> int:
        """Late events over every partition."""
        return sum(self.late.values())

    def rows(self) -> list[dict[str, Any]]:
        """Persistable rows: topic, partition, max event time, late count."""
        return [{"topic": t, "partition": p, "max_event_ts_micros": ts, "late_events": self.late.get((t, p), 0)}
                for (t, p), ts in sorted(self.max_seen.items())]
