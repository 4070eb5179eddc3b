"""The event-bus port: what publishers, consumers and the admin need, whatever the bus.

`EbRef` is the replay pointer IG stores in receipts: `kafka_offset` (topic/partition/offset) or
`kinesis_sequence` (stream/shard/sequence). Adapters translate driver errors into BusUnavailable,
PublishAmbiguous and TopicMissing (runtime.errors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.bus.scope import ScopeCounts
from runtime.errors import PlatformError

OffsetKind = Literal["kafka_offset", "kinesis_sequence"]


#: Largest record (key + value bytes) either adapter accepts: the Kinesis per-record limit
#: (1 MiB, data + partition key), applied to Kafka too so both buses refuse the same records.
MAX_RECORD_BYTES = 1024 * 1024


class RecordTooLarge(PlatformError):
    """A record is larger than MAX_RECORD_BYTES; it was not sent."""

    code = "RECORD_TOO_LARGE"
    next_step = "split or shrink the record; the bus accepts at most 1 MiB per record"


@dataclass(frozen=True)
class EbRef:
    """Where a record landed on the bus."""

    offset_kind: OffsetKind
    topic: str
    partition: int | str
    offset: int | str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in receipts and evidence."""
        return {"offset_kind": self.offset_kind, "topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(frozen=True)
class OutboundRecord:
    """A record to publish: topic name, partition key, bytes."""

    topic: str
    key: str
    value: bytes


@dataclass(frozen=True)
class BusRecord:
    """A record read from the bus, with its replay pointer.

    `document` is the JSON object `value` holds when the consumer already parsed it for run
    scoping (a reader decodes it from there instead of parsing the same bytes twice); it is
    derived from `value` and never compared."""

    eb_ref: EbRef
    key: str | None
    value: bytes
    document: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PartitionRange:
    """First and last offset/sequence present on one partition/shard (None when empty)."""

    topic: str
    partition: int | str
    start_offset: int | str | None
    end_offset: int | str | None


class Publisher(ABC):
    """Publishes records and reports where each landed, from the bus's own acknowledgement."""

    @abstractmethod
    def publish(self, records: list[OutboundRecord]) -> list[EbRef | Exception]:
        """Publish a batch; per record its EbRef, or the error (PublishAmbiguous when unknown)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the client."""


class Consumer(ABC):
    """Reads records; the caller commits only after its own durable write."""

    @abstractmethod
    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        """Up to `max_records` records, waiting at most `timeout_s`."""

    @abstractmethod
    def commit(self, records: list[BusRecord]) -> None:
        """Mark `records` consumed (after the caller's durable write)."""

    @abstractmethod
    def close(self) -> None:
        """Release the client."""


class RunScopedConsumer(Consumer):
    """A consumer pinned to one platform run: other runs' records are skipped, counted, committed."""

    @property
    @abstractmethod
    def counts(self) -> ScopeCounts:
        """Records delivered to the caller and records skipped by run scope."""

    def known_ranges(self, topic: str) -> list[PartitionRange] | None:
        """Per partition of `topic`, the first and last offsets as this consumer's own reads last
        saw them, without asking the bus; None when it cannot say for every partition (another
        member holds some, nothing read yet, or an adapter that does not keep them): then ask
        `BusAdmin.ranges`."""
        return None


class BusAdmin(ABC):
    """Creates and inspects topics/streams (bootstrap, P0 and P7 evidence)."""

    @abstractmethod
    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        """Create the topic if absent; True when it was created now."""

    @abstractmethod
    def partitions(self, name: str) -> int | None:
        """The topic's partition/shard count, or None if it does not exist."""

    @abstractmethod
    def ranges(self, name: str) -> list[PartitionRange]:
        """Per partition/shard, the first and last offsets present."""
