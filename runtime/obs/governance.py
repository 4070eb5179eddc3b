"""Governance events: the run's append-only log of what the platform decided about itself (the
reporter closed the run, a gate failed and why, a lock was taken over), one JSON object per line in
GOVERNANCE_EVENTS_KEY_PATTERN (`platform/<platform_run_id>/obs/governance/events.jsonl`).

S3 has no append, so an append is a read-modify-write guarded by a conditional write: the log is
read with its etag, the new lines are added, and the object is put with `If-Match: <etag>` (or
`If-None-Match: *` when it does not exist yet). A concurrent writer that got there first makes the
put fail: that is S3_APPEND_CONFLICT, logged and counted; the writer re-reads and tries again with
bounded, jittered back-off. Event ids are stable (a hash of run, kind and subject unless given), and
an event whose id is in the log already is not written again, so a retry after a conflict, or
after a put whose response was lost, neither loses nor duplicates an event.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_digest, canonical_json
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.errors import PermanentError, WriteConflict
from runtime.obs.errors import AppendConflict
from runtime.store.port import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 0.05


class GovernanceLogCorrupt(PermanentError):
    """A line of the governance log is not a JSON object with an event_id."""

    code = "GOVERNANCE_LOG_CORRUPT"
    next_step = "the log is append-only truth: inspect the object; never edit it, start a fresh run if it was damaged"


@dataclass(frozen=True)
class GovernanceEvent:
    """One line of the log: what happened (`kind`), to what (`subject`), by whom, and details."""

    platform_run_id: str
    kind: str
    subject: str
    actor: str
    details: Mapping[str, Any] = field(default_factory=dict)
    at_utc: str = field(default_factory=utc_iso)
    event_id: str = ""

    def stable_id(self) -> str:
        """The given id, else H(run, kind, subject): the same fact appended twice is one event."""
        return self.event_id or canonical_digest(
            {"platform_run_id": self.platform_run_id, "kind": self.kind, "subject": self.subject})[:32]

    def document(self) -> dict[str, Any]:
        """The JSON object of its line."""
        return {"event_id": self.stable_id(), "platform_run_id": self.platform_run_id, "kind": self.kind,
                "subject": self.subject, "actor": self.actor, "at_utc": self.at_utc, "details": dict(self.details)}


@dataclass(frozen=True)
class AppendResult:
    """What one append did: ids written now, ids already present, conflicts met on the way."""

    appended: tuple[str, ...]
    already_present: tuple[str, ...]
    conflicts: int
    attempts: int


def parse_log(data: bytes, *, where: str = "governance log") -> list[dict[str, Any]]:
    """The events of a log object, in order."""
    out = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            raise GovernanceLogCorrupt(f"{where} line {number}: not JSON ({e.msg})") from None
        if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
            raise GovernanceLogCorrupt(f"{where} line {number}: not an event object with an event_id")
        out.append(event)
    return out


def _line(document: Mapping[str, Any]) -> bytes:
    return canonical_json(document) + b"\n"


class GovernanceLog:
    """The run's governance log in an object store."""

    def __init__(self, store: ObjectStore, registry: Registry, platform_run_id: str, *,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, backoff_s: float = DEFAULT_BACKOFF_S,
                 sleep: Callable[[float], None] = time.sleep):
        self.store = store
        self.platform_run_id = platform_run_id
        self.key = registry.render("GOVERNANCE_EVENTS_KEY_PATTERN", platform_run_id=platform_run_id)
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self._sleep = sleep

    def events(self) -> list[dict[str, Any]]:
        """Every event of the log, in append order (empty when nothing was appended yet)."""
        current = self.store.read_versioned(self.key)
        return [] if current is None else parse_log(current[0], where=self.store.uri(self.key))

    def append(self, events: Iterable[GovernanceEvent]) -> AppendResult:
        """Append `events` (in order) exactly once each; S3_APPEND_CONFLICT after the bounded retries."""
        wanted: dict[str, dict[str, Any]] = {}
        for event in events:
            if event.platform_run_id != self.platform_run_id:
                raise ValueError(f"event of run {event.platform_run_id} appended to the log of {self.platform_run_id}")
            wanted.setdefault(event.stable_id(), event.document())
        conflicts = 0
        for attempt in range(1, self.max_attempts + 1):
            current = self.store.read_versioned(self.key)
            data, etag = (b"", None) if current is None else current
            present = {e["event_id"] for e in parse_log(data, where=self.store.uri(self.key))}
            new = [doc for eid, doc in wanted.items() if eid not in present]
            already = tuple(eid for eid in wanted if eid in present)
            if not new:
                return AppendResult((), already, conflicts, attempt)
            body = data if not data or data.endswith(b"\n") else data + b"\n"
            body += b"".join(_line(doc) for doc in new)
            try:
                if etag is None:
                    self.store.put(self.key, body, create_only=True, content_type="application/x-ndjson")
                else:
                    self.store.put(self.key, body, if_match=etag, content_type="application/x-ndjson")
            except WriteConflict as e:
                conflicts += 1
                log.warning("%s: %s (attempt %d of %d); re-reading", AppendConflict.code, e, attempt, self.max_attempts)
                if attempt < self.max_attempts:
                    self._sleep(self.backoff_s * (2 ** min(attempt - 1, 6)) * (0.5 + random.random()))
                continue
            return AppendResult(tuple(doc["event_id"] for doc in new), already, conflicts, attempt)
        raise AppendConflict(f"{self.store.uri(self.key)}: {conflicts} concurrent write(s) won every one of "
                             f"{self.max_attempts} attempts; nothing of this append was written")
