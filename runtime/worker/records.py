"""What a handler reads and what it emits: decoded input records and outbox records.

Inputs are the bus records of the pinned run, decoded once by the worker; outputs are records for a
topic with a stable id, so a re-published outbox row is recognised downstream as the same record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.bus.json_codec import loads
from runtime.bus.port import BusRecord, EbRef
from runtime.errors import PermanentError


class RecordUnreadable(PermanentError):
    """A bus record that is not a JSON envelope (truncated, not UTF-8, not an object)."""

    code = "RECORD_UNREADABLE"
    next_step = "the record is dead-lettered with its eb_ref; inspect it with `fp status` and the dead-letter table"


class RecordRejected(PermanentError):
    """A handler refuses a record it cannot process (payload breaks the handler's contract)."""

    code = "RECORD_REJECTED"
    next_step = "the record is dead-lettered with its eb_ref and reason; fix the producer"


#: Fields every envelope a worker reads must carry (schemas/events/envelope.schema.json).
ENVELOPE_FIELDS = ("platform_run_id", "event_class", "event_id", "ts_utc", "payload")


@dataclass(frozen=True)
class InputRecord:
    """One record of the pinned run with its replay pointer and decoded envelope."""

    eb_ref: EbRef
    key: str | None
    envelope: dict[str, Any]
    #: The bytes as they sit on the bus (the archive keeps them exactly).
    raw: bytes

    @property
    def event_id(self) -> str:
        """The envelope's event id."""
        return str(self.envelope["event_id"])

    @property
    def event_class(self) -> str:
        """The envelope's event class."""
        return str(self.envelope["event_class"])

    @property
    def payload(self) -> dict[str, Any]:
        """The envelope's payload."""
        payload = self.envelope["payload"]
        return payload if isinstance(payload, dict) else {}


@dataclass(frozen=True)
class OutputRecord:
    """A record for the outbox: published after the transaction that produced it commits."""

    record_id: str
    topic: str
    key: str
    value: bytes


def decode(record: BusRecord) -> InputRecord:
    """The decoded envelope of `record`; RecordUnreadable when it is not one."""
    document: Any = record.document  # parsed once by the run-scoped consumer when it could
    if document is None:
        try:
            document = loads(record.value)
        except (ValueError, UnicodeDecodeError) as e:
            raise RecordUnreadable(f"record at {describe(record.eb_ref)} is not JSON: {e}") from None
    if not isinstance(document, dict):
        raise RecordUnreadable(f"record at {describe(record.eb_ref)} is not a JSON object")
    missing = [name for name in ENVELOPE_FIELDS if name not in document]
    if missing:
        raise RecordUnreadable(f"record at {describe(record.eb_ref)} lacks envelope field(s) {', '.join(missing)}")
    if not isinstance(document["payload"], dict):
        raise RecordUnreadable(f"record at {describe(record.eb_ref)} has a payload that is not an object")
    return InputRecord(record.eb_ref, record.key, document, record.value)


def describe(ref: EbRef) -> str:
    """`topic/partition@offset`, the way operators read an eb_ref."""
    return f"{ref.topic}/{ref.partition}@{ref.offset}"
