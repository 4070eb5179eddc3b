"""IG domain: request shape, per-event validation, payload hash and the dedupe decision.

Plain Python over plain data. Validators are compiled once per event class when the gate starts
(runtime.contracts.compiled: each schema becomes one generated predicate that answers valid events, and
closures that name the first problem of an invalid one; no meta-schema check, no jsonschema
dispatch per call). The dedupe identity is exactly (platform_run_id, event_class, event_id); the
same identity with another payload hash is an ANOMALY, never an overwrite.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from runtime.contracts.canonical import canonical_json, orjson_writes_as_json, sha256_hex
from runtime.contracts.compiled import Check, fast_check
from runtime.contracts.registry import Registry
from runtime.contracts.schemas import load_schema
from runtime.errors import PlatformError

Identity = tuple[str, str, str]

#: Fields IG owns: a client may never send them (422).
SERVER_OWNED_FIELDS: frozenset[str] = frozenset(
    {"payload_hash", "receipt_id", "eb_ref", "admitted_at_utc", "recorded_at_utc", "outcome"}
)


class Outcome(StrEnum):
    """What IG decided for one event attempt; every attempt gets exactly one receipt."""

    ADMIT = "ADMIT"
    DUPLICATE = "DUPLICATE"
    QUARANTINE = "QUARANTINE"
    ANOMALY = "ANOMALY"
    PUBLISH_AMBIGUOUS = "PUBLISH_AMBIGUOUS"


class RequestRejected(PlatformError):
    """The whole request is refused before any event is looked at (nothing admitted)."""

    def __init__(self, status: int, code: str, message: str, *, next_step: str = "fix the request; no event of it was admitted"):
        super().__init__(message, code=code, next_step=next_step)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Size limits of one push, from the registry."""

    max_batch_events: int
    max_body_bytes: int
    max_event_bytes: int

    @classmethod
    def from_registry(cls, registry: Registry) -> Limits:
        """IG_MAX_BATCH_EVENTS / IG_MAX_BODY_BYTES / IG_MAX_EVENT_BYTES."""
        return cls(
            registry.integer("IG_MAX_BATCH_EVENTS"),
            registry.integer("IG_MAX_BODY_BYTES"),
            registry.integer("IG_MAX_EVENT_BYTES"),
        )


def payload_hash(payload: Any) -> str:
    """sha256 of the canonical JSON of the payload: equal content, equal hash."""
    return sha256_hex(canonical_json(payload))


_RISKY_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_storable(body: bytes, document: Any) -> None:
    """422 UNSTORABLE_TEXT for NUL characters or lone UTF-16 surrogates: no receipt, bus or store can keep them.

    JSON can only carry them as \\u escapes, so the body is scanned for those first and the exact
    check runs only when one is present.
    """
    if not _RISKY_ESCAPE.search(body):
        return
    try:
        canonical_json(document)
    except UnicodeEncodeError:
        raise RequestRejected(422, "UNSTORABLE_TEXT", "the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
    if _has_nul(document):
        raise RequestRejected(422, "UNSTORABLE_TEXT", "the body holds a NUL character (\\u0000)")


def split_request(document: Any, limits: Limits) -> list[Any]:
    """One envelope, or a batch `{"events": [...]}`; the count limit and server-owned fields are checked here."""
    if isinstance(document, dict) and "events" in document:
        if set(document) != {"events"}:
            extra = sorted(set(document) - {"events"})
            raise RequestRejected(422, "BATCH_INVALID", f"a batch carries only 'events'; unexpected: {', '.join(extra)}")
        events = document["events"]
        if not isinstance(events, list):
            raise RequestRejected(422, "BATCH_INVALID", "'events' must be a list of envelopes")
        if not events:
            raise RequestRejected(422, "BATCH_EMPTY", "'events' is empty")
    elif isinstance(document, dict):
        events = [document]
    else:
        raise RequestRejected(422, "BODY_NOT_OBJECT", "the body must be an envelope object or {\"events\": [...]}")
    if len(events) > limits.max_batch_events:
        raise RequestRejected(413, "BATCH_TOO_LARGE", f"{len(events)} events exceed IG_MAX_BATCH_EVENTS={limits.max_batch_events}")
    for index, event in enumerate(events):
        if isinstance(event, dict):
            owned = sorted(SERVER_OWNED_FIELDS.intersection(event))
            if owned:
                raise RequestRejected(422, "SERVER_OWNED_FIELD", f"event {index} sets server-owned field(s) {', '.join(owned)}")
    return events


@dataclass(frozen=True)
class CheckedEvent:
    """One event after validation: valid with identity, hash and publish bytes, or an error code."""

    index: int
    raw: Any
    identity: Identity | None
    payload_hash: str | None
    topic: str | None
    value: bytes | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def valid(self) -> bool:
        """True when the event may be admitted."""
        return self.error_code is None

    def field(self, name: str) -> Any:
        """A top-level field of the raw event when it is an object."""
        return self.raw.get(name) if isinstance(self.raw, dict) else None


def event_types_by_class(envelope_schema: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The event types each event class allows, read from the envelope schema's allOf if/then rules."""
    out: dict[str, frozenset[str]] = {}
    for rule in envelope_schema.get("allOf", []):
        event_class = rule.get("if", {}).get("properties", {}).get("event_class", {}).get("const")
        types = rule.get("then", {}).get("properties", {}).get("event_type", {}).get("enum")
        if isinstance(event_class, str) and isinstance(types, list):
            out[event_class] = frozenset(types)
    return out


#: How much of an oversized event the quarantine keeps (with its size and sha256): never the whole thing.
OVERSIZED_EXCERPT_CHARS = 1024


def raw_size(event: Any) -> int:
    """Bytes of `event` as compact JSON (what a producer sent, give or take whitespace)."""
    if orjson_writes_as_json(event):  # the same bytes, ~5x faster (runtime.contracts.canonical)
        try:
            return len(orjson.dumps(event))
        except TypeError:  # lone surrogates (counted below as the standard encoder writes them) and the like
            pass
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def canonical_value(event: dict[str, Any], payload_bytes: bytes, digest: str) -> bytes:
    """`canonical_json({**event, "payload_hash": digest})`, byte for byte, reusing the payload's canonical
    bytes instead of encoding the payload a second time (orjson places them as they are)."""
    head = {**event, "payload_hash": digest}
    if head.pop("payload", None) is not None and orjson_writes_as_json(head):
        try:
            return orjson.dumps({**head, "payload": orjson.Fragment(payload_bytes)}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass
    return canonical_json({**event, "payload_hash": digest})


def oversized_excerpt(event: Any) -> dict[str, Any]:
    """What the quarantine keeps of an event over IG_MAX_EVENT_BYTES: size, sha256 and a bounded excerpt."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    data = text.encode("utf-8", "surrogatepass")
    return {"truncated": True, "bytes": len(data), "sha256": sha256_hex(data),
            "excerpt": text[:OVERSIZED_EXCERPT_CHARS]}


class EventValidator:
    """Validates envelopes for one pinned run; compiled validators and topic names resolved once."""

    def __init__(self, registry: Registry, platform_run_id: str, limits: Limits):
        self.platform_run_id = platform_run_id
        self.limits = limits
        self._envelope = fast_check("events/envelope.schema.json")
        self._event_types = event_types_by_class(load_schema("events/envelope.schema.json"))
        self._payloads: dict[str, Check] = {}
        self._topics: dict[str, str] = {}
        for event_class, spec in registry.mapping("EVENT_CLASS_MAP").items():
            self._payloads[event_class] = fast_check(f"events/payloads/{event_class}.schema.json")
            self._topics[event_class] = registry.topic(spec["topic"]).name

    def topic_of(self, event_class: str) -> str:
        """The topic name an event class is published to."""
        return self._topics[event_class]

    def check(self, index: int, event: Any, *, measure: bool = False) -> CheckedEvent:
        """Validate one event; the error code says exactly what is wrong. With `measure` (the body is larger
        than one event may be) an event over IG_MAX_EVENT_BYTES is EVENT_TOO_LARGE, valid or not.

        A valid event's size is read off its publish value (the same members plus payload_hash, so
        exactly _HASH_MEMBER_BYTES more), so only events that fail validation are encoded to be sized."""
        if not measure:
            return self._check(index, event)[0]
        try:
            checked, value_bytes = self._check(index, event)
        except Exception:  # sized first, as the gate always did, then the same error
            size = raw_size(event)
            if size > self.limits.max_event_bytes:
                return self._too_large(index, event, size)
            raise
        known = value_bytes is not None and "payload_hash" not in event
        size = value_bytes - _HASH_MEMBER_BYTES if known and value_bytes is not None else raw_size(event)
        return self._too_large(index, event, size) if size > self.limits.max_event_bytes else checked

    def _too_large(self, index: int, event: Any, size: int) -> CheckedEvent:
        return CheckedEvent(index, event, None, None, None, None, "EVENT_TOO_LARGE",
                            f"event {index} is {size} bytes, over IG_MAX_EVENT_BYTES={self.limits.max_event_bytes};"
                            " only its size, sha256 and an excerpt are kept")

    def _check(self, index: int, event: Any) -> tuple[CheckedEvent, int | None]:
        """The checks of one event, and the length of its publish value when it got that far."""

        def bad(code: str, message: str) -> tuple[CheckedEvent, int | None]:
            return CheckedEvent(index, event, None, None, None, None, code, message), None

        if not isinstance(event, dict):
            return bad("ENVELOPE_NOT_OBJECT", f"event {index} is a {type(event).__name__}, not an object")
        if "event_id" not in event:
            return bad("EVENT_ID_MISSING", "the envelope has no event_id")
        event_class = event.get("event_class")
        if not isinstance(event_class, str) or event_class not in self._payloads:
            return bad("UNKNOWN_EVENT_CLASS", f"event_class {event_class!r} is not one of {sorted(self._payloads)}")
        allowed = self._event_types.get(event_class)
        if allowed is not None and isinstance(event.get("event_type"), str) and event["event_type"] not in allowed:
            return bad("EVENT_TYPE_NOT_OF_CLASS", f"event_type {event.get('event_type')!r:.80} is not one of"
                       f" {event_class}: {sorted(allowed)}")
        problem = self._envelope(event, "(root)")
        if problem:
            return bad("ENVELOPE_INVALID", problem)
        if event["platform_run_id"] != self.platform_run_id:
            return bad("RUN_PIN_MISMATCH", f"platform_run_id {event['platform_run_id']} is not the pinned run {self.platform_run_id}")
        payload = event["payload"]
        problem = self._payloads[event_class](payload, "payload")
        if problem:
            return bad("PAYLOAD_INVALID", problem)
        payload_bytes = canonical_json(payload)
        digest = sha256_hex(payload_bytes)
        value = canonical_value(event, payload_bytes, digest)
        if len(value) > self.limits.max_event_bytes:
            return (CheckedEvent(index, event, None, None, None, None, "EVENT_TOO_LARGE",
                                 f"{len(value)} bytes exceed IG_MAX_EVENT_BYTES={self.limits.max_event_bytes};"
                                 " only its size, sha256 and an excerpt are kept"), len(value))
        identity = (event["platform_run_id"], event_class, event["event_id"])
        return CheckedEvent(index, event, identity, digest, self._topics[event_class], value), len(value)


#: What `"payload_hash": <sha256 hex>` adds to an event's compact JSON: a comma, the key, the 64 hex digits.
_HASH_MEMBER_BYTES = len(canonical_json({"payload_hash": "0" * 64})) - 2 + 1


class Action(StrEnum):
    """What the gate does with a valid event after looking at its identity."""

    PUBLISH = "PUBLISH"  # new identity, claimed now
    REPUBLISH = "REPUBLISH"  # claimed earlier, publish outcome unknown: publish again, flag ambiguity
    FINISH = "FINISH"  # published earlier (eb_ref known), receipt missing: write it, no publish
    DUPLICATE = "DUPLICATE"
    ANOMALY = "ANOMALY"
    IN_FLIGHT = "IN_FLIGHT"  # another live request (this process or another) holds the identity now: 503


@dataclass(frozen=True)
class Admission:
    """The stored state of one identity."""

    payload_hash: str
    state: str  # PENDING | PUBLISHED | ADMITTED
    receipt_id: str | None
    eb_ref: dict[str, Any] | None


def decide(payload_hash_now: str, claimed_now: bool, existing: Admission | None, *, held: bool) -> Action:
    """The dedupe decision for a valid event, from the stored admission of its identity.

    `held`: this request owns the identity's claim (inserted or taken over). Only a holder publishes
    or finishes; anyone else waits for the holder (IN_FLIGHT -> 503) until the identity is ADMITTED.
    """
    if claimed_now:
        return Action.PUBLISH
    if existing is None:  # the holder let go between our insert and our read: retry
        return Action.IN_FLIGHT
    if existing.payload_hash != payload_hash_now:
        return Action.ANOMALY
    if existing.state == "ADMITTED":
        return Action.DUPLICATE
    if not held:
        return Action.IN_FLIGHT
    if existing.state == "PUBLISHED":
        return Action.FINISH
    return Action.REPUBLISH
