"""In-memory adapter of the bus port: one process, no server, for handler tests that run in milliseconds.

A `MemoryBroker` holds topics (N partitions each, offsets from 0 per partition), the committed
offsets of every consumer group, and an availability switch. Publishers, consumers and the admin
are built on one shared broker; the broker is thread-safe. It models what stream-worker tests need:

- key-hash partitioning that is stable and the same as the Kafka adapter's (librdkafka's default
  `consistent_random` partitioner: CRC-32 of the key bytes modulo the partition count);
- consumer groups: committed offsets belong to the group, so a new consumer of the group resumes
  after the last commit and uncommitted records are delivered again (crash redelivery); live
  members of one group split the partitions between them (round robin, rebalanced on join/leave);
  every group reads every partition;
- run scoping and safe commit positions exactly as the real consumers (`runtime.bus.scope`);
- MAX_RECORD_BYTES, TopicMissing, and fault injection: `make_unavailable()` makes publish, poll,
  commit, consumer creation and admin calls raise BusUnavailable until `make_available()`.

It is not an operator-visible bus (no FP_BUS value selects it): tests build it directly.
Records are never expired (retention is recorded, not enforced).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from runtime.bus.port import (
    MAX_RECORD_BYTES,
    BusAdmin,
    BusRecord,
    EbRef,
    OutboundRecord,
    PartitionRange,
    Publisher,
    RecordTooLarge,
    RunScopedConsumer,
)
from runtime.bus.scope import CommitTracker, PartitionKey, RunScope, ScopeCounts
from runtime.errors import BusUnavailable, PlatformError, TopicMissing

TopicPartition = tuple[str, int]


def partition_for(key: str, partitions: int) -> int:
    """The partition of `key`: CRC-32 of its UTF-8 bytes modulo `partitions` (librdkafka's default)."""
    return (zlib.crc32(key.encode("utf-8")) & 0xFFFFFFFF) % partitions


@dataclass
class _Topic:
    partitions: list[list[tuple[str | None, bytes]]]
    retention_hours: int


@dataclass
class _Group:
    """Committed offsets (next offset to read) and live members, in join order."""

    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[MemoryConsumer] = field(default_factory=list)
    generation: int = 0


class MemoryBroker:
    """Topics, partitions, group offsets and availability of one in-process bus (thread-safe)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._cond = threading.Condition(threading.RLock())
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._down: str | None = None

    # -- fault injection -------------------------------------------------------------------
    def make_unavailable(self, reason: str = "the in-memory bus was made unavailable by the test") -> None:
        """From now on every bus call raises BusUnavailable (records already stored are kept)."""
        with self._cond:
            self._down = reason

    def make_available(self) -> None:
        """Recover: bus calls work again; nothing stored or committed was lost."""
        with self._cond:
            self._down = None
            self._cond.notify_all()

    @contextmanager
    def unavailable(self, reason: str = "the in-memory bus was made unavailable by the test") -> Iterator[None]:
        """The bus is unavailable inside the block and recovers on leaving it."""
        self.make_unavailable(reason)
        try:
            yield
        finally:
            self.make_available()

    def _check_up(self, what: str) -> None:
        if self._down is not None:
            raise BusUnavailable(f"{what} on bus {self.name!r} failed: {self._down}")

    # -- the adapters ----------------------------------------------------------------------
    def publisher(self) -> MemoryPublisher:
        """A publisher on this broker."""
        return MemoryPublisher(self)

    def consumer(self, topics: list[str], group: str, required_platform_run_id: str | None = None) -> MemoryConsumer:
        """A run-scoped consumer of `topics` in consumer group `group`."""
        return MemoryConsumer(self, topics, group, required_platform_run_id)

    def admin(self) -> MemoryAdmin:
        """The topic admin of this broker."""
        return MemoryAdmin(self)

    # -- inspection for tests --------------------------------------------------------------
    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Per partition, the group's committed offset (the next offset it will read)."""
        with self._cond:
            state = self._groups.get(group)
            return {} if state is None else {p: o for (t, p), o in state.committed.items() if t == topic}

    def records(self, topic: str) -> list[BusRecord]:
        """Every record on `topic`, partition by partition, in offset order."""
        with self._cond:
            spec = self._require(topic)
            return [BusRecord(EbRef("kafka_offset", topic, p, o), key, value)
                    for p, log in enumerate(spec.partitions) for o, (key, value) in enumerate(log)]

    # -- internals used by the adapters (all under the broker lock) --------------------------
    def _require(self, topic: str) -> _Topic:
        spec = self._topics.get(topic)
        if spec is None:
            raise TopicMissing(f"topic {topic} does not exist on the in-memory bus {self.name!r}")
        return spec

    def _append(self, record: OutboundRecord) -> EbRef:
        spec = self._require(record.topic)
        partition = partition_for(record.key, len(spec.partitions))
        log = spec.partitions[partition]
        log.append((record.key, record.value))
        return EbRef("kafka_offset", record.topic, partition, len(log) - 1)

    def _join(self, member: MemoryConsumer) -> _Group:
        group = self._groups.setdefault(member.group, _Group())
        group.members.append(member)
        group.generation += 1
        return group

    def _leave(self, member: MemoryConsumer) -> None:
        group = self._groups.get(member.group)
        if group is not None and member in group.members:
            group.members.remove(member)
            group.generation += 1

    def _assignment(self, member: MemoryConsumer) -> list[TopicPartition]:
        """The partitions `member` owns: its group's partitions of its topics, dealt round robin."""
        group = self._groups[member.group]
        topics = sorted({t for m in group.members for t in m.topics})
        owned: list[TopicPartition] = []
        for topic in topics:
            readers = [m for m in group.members if topic in m.topics]
            for partition in range(len(self._topics[topic].partitions)):
                if readers[partition % len(readers)] is member:
                    owned.append((topic, partition))
        return owned


class MemoryPublisher(Publisher):
    """Appends records to the broker's partitions; every EbRef is the record's real position."""

    def __init__(self, broker: MemoryBroker):
        self._broker = broker

    def publish(self, records: list[OutboundRecord]) -> list[EbRef | Exception]:
        """Publish the batch; an oversized record is refused and the rest still lands."""
        if not records:
            return []
        broker = self._broker
        with broker._cond:
            broker._check_up(f"publish to {', '.join(sorted({r.topic for r in records}))}")
            for topic in sorted({r.topic for r in records}):
                broker._require(topic)
            out: list[EbRef | Exception] = []
            for record in records:
                size = len(record.value) + len(record.key.encode("utf-8"))
                if size > MAX_RECORD_BYTES:
                    out.append(RecordTooLarge(f"record of {size} bytes for {record.topic} is over {MAX_RECORD_BYTES} bytes"))
                else:
                    out.append(broker._append(record))
            broker._cond.notify_all()
        return out

    def close(self) -> None:
        """Nothing is buffered: publish() is synchronous."""


class MemoryConsumer(RunScopedConsumer):
    """A member of a consumer group on the broker; commits after the caller's durable write; run-scoped."""

    def __init__(self, broker: MemoryBroker, topics: list[str], group: str, required_platform_run_id: str | None):
        self._broker = broker
        self.topics = list(topics)
        self.group = group
        self.scope = RunScope(required_platform_run_id)
        self._tracker = CommitTracker()
        self._positions: dict[TopicPartition, int] = {}
        self._generation = -1
        self._closed = False
        with broker._cond:
            broker._check_up(f"joining group {group}")
            for topic in self.topics:
                broker._require(topic)
            broker._join(self)

    @property
    def counts(self) -> ScopeCounts:
        """Delivered and skipped counts (skipped records are committed, never re-read)."""
        return self.scope.counts

    def _sync_assignment(self) -> None:
        """After a rebalance: start newly owned partitions at the group's commit, forget revoked ones."""
        group = self._broker._groups[self.group]
        if group.generation == self._generation:
            return
        owned = set(self._broker._assignment(self))
        for tp in list(self._positions):
            if tp not in owned:
                del self._positions[tp]
                key = _key(tp)
                for table in (self._tracker.outstanding, self._tracker.finished):
                    table.pop(key, None)
                self._tracker.committed.pop(key, None)
        for tp in owned:
            if tp not in self._positions:
                self._positions[tp] = group.committed.get(tp, 0)
                self._tracker.committed[_key(tp)] = self._positions[tp] - 1
        self._generation = group.generation

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        """Up to `max_records` records of the pinned run, waiting at most `timeout_s` for the first."""
        self._require_open()
        broker = self._broker
        deadline = time.monotonic() + timeout_s
        out: list[BusRecord] = []
        with broker._cond:
            while True:
                broker._check_up(f"poll of {', '.join(self.topics)}")
                self._sync_assignment()
                read_any = self._read(max_records - len(out), out)
                self._commit_due()
                if len(out) >= max_records or (out and not read_any):
                    return out
                left = deadline - time.monotonic()
                if left <= 0:
                    return out
                if not read_any:
                    broker._cond.wait(left)

    def _read(self, limit: int, out: list[BusRecord]) -> bool:
        read_any = False
        for tp in sorted(self._positions):
            topic, partition = tp
            log = self._broker._require(topic).partitions[partition]
            while self._positions[tp] < len(log) and len(out) < limit:
                offset = self._positions[tp]
                key, value = log[offset]
                self._positions[tp] = offset + 1
                read_any = True
                admitted, document = self.scope.admit(value)
                if admitted:
                    self._tracker.handed_out(_key(tp), offset)
                    out.append(BusRecord(EbRef("kafka_offset", topic, partition, offset), key, value, document))
                else:
                    self._tracker.skipped(_key(tp), offset)
        return read_any

    def commit(self, records: list[BusRecord]) -> None:
        """Acknowledge `records` (after the caller's durable write) and commit what is safe for the group."""
        self._require_open()
        with self._broker._cond:
            self._broker._check_up(f"offset commit of group {self.group}")
            self._sync_assignment()
            for record in records:
                ref = record.eb_ref
                tp = (ref.topic, int(ref.partition))
                if tp in self._positions:  # a partition revoked by a rebalance is the new owner's to commit
                    self._tracker.acknowledged(_key(tp), int(ref.offset))
            self._commit_due()

    def _commit_due(self) -> None:
        committed = self._broker._groups[self.group].committed
        for key, position in self._tracker.due().items():
            tp = (key[0], int(key[1]))
            committed[tp] = max(committed.get(tp, 0), position + 1)
            self._tracker.mark_committed(key, position)

    def _require_open(self) -> None:
        if self._closed:
            raise PlatformError("the in-memory consumer is closed", code="BUS_CONSUMER_CLOSED",
                                next_step="create a new consumer of the group")

    def close(self) -> None:
        """Leave the group without committing anything more (its partitions go to the other members)."""
        with self._broker._cond:
            if not self._closed:
                self._closed = True
                self._broker._leave(self)


def _key(tp: TopicPartition) -> PartitionKey:
    return (tp[0], str(tp[1]))


class MemoryAdmin(BusAdmin):
    """Topic creation and inspection on the broker."""

    def __init__(self, broker: MemoryBroker):
        self._broker = broker

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        """Create `name` with `partitions`; False when it already existed."""
        if partitions < 1:
            raise PlatformError(f"topic {name} needs at least one partition, not {partitions}", code="BUS_TOPIC_INVALID",
                                next_step="fix the partition count in handles.registry.yaml")
        with self._broker._cond:
            self._broker._check_up(f"creating topic {name}")
            if name in self._broker._topics:
                return False
            self._broker._topics[name] = _Topic([[] for _ in range(partitions)], retention_hours)
            return True

    def partitions(self, name: str) -> int | None:
        """The topic's partition count, or None when it does not exist."""
        with self._broker._cond:
            self._broker._check_up(f"describing topic {name}")
            spec = self._broker._topics.get(name)
            return None if spec is None else len(spec.partitions)

    def retention_hours(self, name: str) -> int | None:
        """The retention the topic was created with, or None when it does not exist."""
        with self._broker._cond:
            self._broker._check_up(f"describing topic {name}")
            spec = self._broker._topics.get(name)
            return None if spec is None else spec.retention_hours

    def ranges(self, name: str) -> list[PartitionRange]:
        """Per partition, the first and last offsets present (None/None when empty)."""
        with self._broker._cond:
            self._broker._check_up(f"ranges of topic {name}")
            spec = self._broker._require(name)
            return [PartitionRange(name, p, 0 if log else None, len(log) - 1 if log else None)
                    for p, log in enumerate(spec.partitions)]
