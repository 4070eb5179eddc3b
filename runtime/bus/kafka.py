"""Kafka adapter of the bus port (confluent-kafka): the dev_min bus, and Tansu locally.

Publisher: idempotent producer with acks=all and a short linger so records batch; an EbRef comes
only from a delivery report. A record whose outcome is unknown (message timeout, flush not
finished, retriable error exhausted) is PublishAmbiguous: it may or may not be on the topic.
Consumer: manual offset store and commit, so offsets move only after the caller's durable write;
run-scoped (see `runtime.bus.scope`). Admin: topics with partitions and retention, watermarks.
Driver errors become BusUnavailable / PublishAmbiguous / TopicMissing / RecordTooLarge.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

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
from runtime.bus.scope import CommitTracker, RunScope, ScopeCounts
from runtime.errors import BusUnavailable, PublishAmbiguous, TopicMissing

#: How long a metadata probe may take before the bus counts as unreachable.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
#: librdkafka gives up on a record after this long (then its outcome is ambiguous).
DEFAULT_DELIVERY_TIMEOUT_MS = 30_000
#: The longest single wait of a poll that holds no record yet (so the run scope's commits of skipped
#: records and the rebalance callbacks are served at least this often).
FIRST_RECORD_WAIT_S = 1.0
#: How long the broker may hold a consumer's fetch when it has nothing new. The consumer's latency
#: floor on brokers that answer at a timer instead of when records arrive (Tansu answers an empty
#: fetch after about half of it: 500 ms, librdkafka's default, put ~250 ms on every hop of the
#: RTDL chain); a conforming broker answers as soon as records are there, so on MSK it only sets
#: how often an idle consumer asks.
FETCH_WAIT_MS = 50
#: The same wait for a consumer nothing waits on promptly (`prompt=False`: archive, action, audit,
#: case and label workers). Tansu answers every idle fetch at its timer, so each idle consumer at
#: FETCH_WAIT_MS kept the broker busy: 12 idle consumers cost Tansu 12-16% of a core at 50 ms
#: and 2.6% at 500 ms (docs/performance.md). A fetch finding records returns at once; a record that
#: lands while a fetch is held waits for the timer (one record every 137 ms: p50 129 ms, max 251 ms).
RELAXED_FETCH_WAIT_MS = 500
#: Group of the offset-range reader (assigns partitions, never commits); inside the prefix of
#: CONSUMER_GROUP_ID_PATTERN, the only group prefix the demo stack's Kafka ACL allows.
WATERMARK_GROUP_ID = "fp-watermarks"
#: The broker's longest wait on an empty fetch of the offset-range reader (it reads records that
#: exist, so only a partition emptied by retention meanwhile waits at all).
RANGE_FETCH_WAIT_MS = 50

# Delivery errors that say for sure the record was NOT written (anything else is ambiguous).
_DEFINITELY_NOT_WRITTEN = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.TOPIC_EXCEPTION,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.RECORD_LIST_TOO_LARGE,
}


_LIBRDKAFKA_LOG = logging.getLogger("runtime.bus.kafka.librdkafka")


def _base_config(bootstrap: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 5_000,
        "reconnect.backoff.max.ms": 2_000,
        "log_level": 3,
        # librdkafka logs go through Python logging (not raw stderr), so operators filter them like any log.
        "logger": _LIBRDKAFKA_LOG,
    }
    config.update(extra or {})
    return config


#: librdkafka's prefetch queue per consumer (KiB). Its default (64 MiB) fills with the backlog of a
#: worker that falls behind, so the worker's RSS grew with its lag (bench_spine, docs/performance.md);
#: 16 MiB still holds several of the worker loop's batches (2,000 records of ~1-2 KB).
CONSUMER_PREFETCH_KBYTES = 16_384


def consumer_config(bootstrap: str, group: str, extra: dict[str, Any] | None = None, *,
                    prompt: bool = True) -> dict[str, Any]:
    """A run-scoped group consumer's settings: manual offset store and commit, from the earliest
    record, a bounded prefetch queue, short fetch waits (FETCH_WAIT_MS; RELAXED_FETCH_WAIT_MS when
    not `prompt`); `extra` overrides any of them."""
    return _base_config(bootstrap, {
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "enable.partition.eof": False,
        "queued.max.messages.kbytes": CONSUMER_PREFETCH_KBYTES,
        "fetch.wait.max.ms": FETCH_WAIT_MS if prompt else RELAXED_FETCH_WAIT_MS,
        **(extra or {}),
    })


def _topic_names(client: Any, bootstrap: str, timeout_s: float) -> set[str]:
    """Names of the topics on the cluster (a metadata request for all topics, no auto-create)."""
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as e:
        raise BusUnavailable(f"Kafka at {bootstrap} did not answer within {timeout_s:g}s: {e.args[0]}") from e
    return {name for name, topic in metadata.topics.items() if topic.error is None}


def _require_topics(client: Any, bootstrap: str, names: list[str], timeout_s: float) -> None:
    present = _topic_names(client, bootstrap, timeout_s)
    missing = sorted(set(names) - present)
    if missing:
        raise TopicMissing(f"topic(s) not on the Kafka cluster at {bootstrap}: {', '.join(missing)}")


class KafkaPublisher(Publisher):
    """Idempotent, acks=all producer; EbRefs only from delivery reports."""

    def __init__(
        self,
        bootstrap: str,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
        extra_config: dict[str, Any] | None = None,
    ):
        self.bootstrap = bootstrap
        self.connect_timeout_s = connect_timeout_s
        self.delivery_timeout_ms = delivery_timeout_ms
        self._producer = Producer(
            _base_config(
                bootstrap,
                {
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "batch.num.messages": 10_000,
                    "compression.type": "none",
                    "message.timeout.ms": delivery_timeout_ms,
                    # Room for our 1 MiB record limit plus the record overhead.
                    "message.max.bytes": MAX_RECORD_BYTES + 64 * 1024,
                    **(extra_config or {}),
                },
            )
        )
        self._known_topics: set[str] = set()

    def _check_topics(self, names: set[str]) -> None:
        unknown = names - self._known_topics
        if unknown:
            _require_topics(self._producer, self.bootstrap, sorted(unknown), self.connect_timeout_s)
            self._known_topics |= unknown

    def publish(self, records: list[OutboundRecord]) -> list[EbRef | Exception]:
        """Send the batch and wait for every delivery report (at most the delivery timeout)."""
        if not records:
            return []
        self._check_topics({r.topic for r in records})
        results: list[EbRef | Exception | None] = [None] * len(records)

        def report(index: int) -> Any:
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    results[index] = EbRef("kafka_offset", str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
                else:
                    results[index] = _delivery_error(err, records[index].topic)

            return on_delivery

        for index, record in enumerate(records):
            size = len(record.value) + len(record.key.encode("utf-8"))
            if size > MAX_RECORD_BYTES:
                results[index] = RecordTooLarge(f"record of {size} bytes for {record.topic} is over {MAX_RECORD_BYTES} bytes")
                continue
            self._produce(record, report(index), results, index)
        remaining = self._producer.flush(self.delivery_timeout_ms / 1000 + 5)
        out: list[EbRef | Exception] = []
        for index, result in enumerate(results):
            if result is None:
                result = PublishAmbiguous(
                    f"no delivery report for a record to {records[index].topic} "
                    f"({remaining} still in flight after the flush timeout)"
                )
            out.append(result)
        return out

    def _produce(self, record: OutboundRecord, callback: Any, results: list[Any], index: int) -> None:
        while True:
            try:
                self._producer.produce(record.topic, value=record.value, key=record.key.encode("utf-8"), on_delivery=callback)
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: serve delivery reports, then retry
            except KafkaException as e:
                error = e.args[0]
                if error.code() in (KafkaError.MSG_SIZE_TOO_LARGE,):
                    results[index] = RecordTooLarge(f"record for {record.topic} refused as too large: {error.str()}")
                else:
                    results[index] = BusUnavailable(f"produce to {record.topic} refused locally: {error.str()}")
                return

    def close(self) -> None:
        """Flush what is queued; the reports of an unfinished flush are lost (callers saw publish())."""
        self._producer.flush(self.delivery_timeout_ms / 1000)


def _delivery_error(err: KafkaError, topic: str) -> Exception:
    code = err.code()
    if code in (KafkaError.MSG_SIZE_TOO_LARGE,):
        return RecordTooLarge(f"broker refused a record for {topic} as too large: {err.str()}")
    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
        return TopicMissing(f"topic {topic} does not exist: {err.str()}")
    if code in _DEFINITELY_NOT_WRITTEN:
        return BusUnavailable(f"record for {topic} refused: {err.str()}")
    # Timeouts, transport failures and retriable errors that ran out of retries: unknown outcome.
    return PublishAmbiguous(f"delivery to {topic} has an unknown outcome: {err.str()}")


class KafkaBusConsumer(RunScopedConsumer):
    """Group consumer with manual offset store and commit, pinned to one platform run."""

    def __init__(
        self,
        bootstrap: str,
        topics: list[str],
        group: str,
        required_platform_run_id: str | None,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        extra_config: dict[str, Any] | None = None,
        prompt: bool = True,
    ):
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.scope = RunScope(required_platform_run_id)
        self._tracker = CommitTracker()
        self._consumer = KafkaConsumer(consumer_config(bootstrap, group, extra_config, prompt=prompt))
        try:
            _require_topics(self._consumer, bootstrap, self.topics, connect_timeout_s)
        except Exception:
            self._consumer.close()
            raise
        self._assigned: set[tuple[str, str]] = set()
        self.rebalances = 0
        self.connect_timeout_s = connect_timeout_s
        #: Partition counts of the topics read, learnt once (`known_ranges`).
        self._partition_counts: dict[str, int] = {}
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    # -- rebalance: commit what is finished, then forget the partitions that moved ---------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        self._assigned |= {(str(p.topic), str(p.partition)) for p in partitions}

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Commit what this member finished on the revoked partitions, then drop their state: the
        records still in hand are processed (worker_positions makes the new owner skip them), but
        their offsets are never committed by this member again."""
        try:
            self._commit_due()
        except BusUnavailable as e:
            _LIBRDKAFKA_LOG.warning("commit on revoke failed (the new owner re-reads from the last commit): %s", e)
        self._forget(partitions)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Partitions lost without a clean revoke (session expired): another member may own them; never commit."""
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        keys = [(str(p.topic), str(p.partition)) for p in partitions]
        self._assigned -= set(keys)
        self._tracker.drop(keys)

    @property
    def counts(self) -> ScopeCounts:
        """Delivered and skipped counts (skipped records are committed, never re-read)."""
        return self.scope.counts

    def known_ranges(self, topic: str) -> list[PartitionRange] | None:
        """The first and last offsets of every partition of `topic`, from the watermarks the
        broker put in this consumer's last fetch of each (no request: librdkafka keeps them).

        A worker's health reads its lag every ~2 s; asking the broker took a fresh client per
        topic (~2-3 ms of the worker's CPU) and, on Tansu, a fetch that lists every batch the
        partition holds (~3-7 ms of the broker's). None while any partition is held by another
        member or has not been fetched yet: the caller then asks `KafkaAdmin.ranges`."""
        count = self._partition_counts.get(topic)
        try:
            if count is None:
                listed = self._consumer.list_topics(topic, timeout=self.connect_timeout_s).topics.get(topic)
                if listed is None or listed.error is not None:
                    return None
                count = self._partition_counts[topic] = len(listed.partitions)
            held = {int(tp.partition) for tp in self._consumer.assignment() if tp.topic == topic}
            if len(held) < count:
                return None
            marks = [self._consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True) for p in range(count)]
        except (KafkaException, RuntimeError):
            return None
        ranges = []
        for partition, mark in enumerate(marks):
            if mark is None or min(mark) < 0:
                return None  # not fetched yet (librdkafka answers OFFSET_INVALID, -1001)
            low, high = int(mark[0]), int(mark[1])
            ranges.append(PartitionRange(topic, partition, low, high - 1) if high > low
                          else PartitionRange(topic, partition, None, None))
        return ranges

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        """Up to `max_records` records of the pinned run; other runs' records are committed past."""
        deadline = time.monotonic() + timeout_s
        out: list[BusRecord] = []
        while len(out) < max_records:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                messages = self._next_messages(max_records - len(out), min(left, FIRST_RECORD_WAIT_S), bool(out))
            except KafkaException as e:
                raise BusUnavailable(f"consume from {', '.join(self.topics)} failed: {e.args[0]}") from e
            for message in messages:
                error = message.error()
                if error is not None:
                    self._raise_for(error)
                    continue
                key = (str(message.topic()), str(message.partition()))
                offset = int(message.offset() or 0)
                value = message.value() or b""
                admitted, document = self.scope.admit(value)
                if admitted:
                    self._tracker.handed_out(key, offset)
                    raw_key = message.key()
                    out.append(
                        BusRecord(
                            EbRef("kafka_offset", key[0], int(key[1]), offset),
                            raw_key.decode("utf-8", errors="replace") if raw_key is not None else None,
                            value,
                            document,
                        )
                    )
                else:
                    self._tracker.skipped(key, offset)
            try:
                self._commit_due()
            except BusUnavailable:
                if out:  # never drop records handed out: the caller applies them, the commit is retried
                    break
                raise
            if out and not messages:
                break
        return out

    def _next_messages(self, wanted: int, wait_s: float, holding: bool) -> list[Message]:
        """What librdkafka has fetched, up to `wanted`, without waiting for a batch to fill.

        `consume(n, timeout)` returns only when it has `n` messages or the timeout passed, so a
        batch that cannot fill (a paced stream, the end of a backlog) would cost the whole timeout
        on every poll. Instead: with nothing in hand, wait for ONE message (`poll` returns as soon
        as one is there, or after `wait_s`); then take, without waiting, what is already fetched
        (librdkafka prefetches ahead of the application, so a backlog still comes in full batches).
        """
        if holding:
            return list(self._consumer.consume(num_messages=wanted, timeout=0))
        first = self._consumer.poll(wait_s)
        if first is None:
            return []
        return [first, *(self._consumer.consume(num_messages=wanted - 1, timeout=0) if wanted > 1 else [])]

    def _raise_for(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise TopicMissing(f"topic gone while consuming: {error.str()}")
        if error.fatal() or not error.retriable():
            raise BusUnavailable(f"consumer error: {error.str()}")

    def commit(self, records: list[BusRecord]) -> None:
        """Acknowledge `records` (after the caller's durable write) and commit what is safe."""
        for record in records:
            ref = record.eb_ref
            key = (ref.topic, str(ref.partition))
            if key in self._assigned:  # a partition revoked meanwhile is the new owner's to commit
                self._tracker.acknowledged(key, int(ref.offset))
        self._commit_due()

    def _commit_due(self) -> None:
        due = self._tracker.due()
        if not due:
            return
        offsets = [TopicPartition(topic, int(partition), position + 1) for (topic, partition), position in due.items()]
        try:
            self._consumer.store_offsets(offsets=offsets)
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            raise BusUnavailable(f"offset commit failed: {e.args[0]}") from e
        for key, position in due.items():
            self._tracker.mark_committed(key, position)

    def close(self) -> None:
        """Leave the group without committing anything more."""
        self._consumer.close()


class KafkaAdmin(BusAdmin):
    """Topic creation and inspection on a Kafka cluster."""

    def __init__(
        self,
        bootstrap: str,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        replication_factor: int = -1,
        extra_config: dict[str, Any] | None = None,
    ):
        self.bootstrap = bootstrap
        self.connect_timeout_s = connect_timeout_s
        self.replication_factor = replication_factor  # -1: the broker's default
        self._extra = extra_config or {}
        self._admin = AdminClient(_base_config(bootstrap, self._extra))

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        """Create `name` with `partitions` and retention.ms; False when it already existed."""
        if name in _topic_names(self._admin, self.bootstrap, self.connect_timeout_s):
            return False
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=self.replication_factor,
            config={"retention.ms": str(retention_hours * 3_600_000)},
        )
        future = self._admin.create_topics([topic], operation_timeout=self.connect_timeout_s)[name]
        try:
            future.result(timeout=self.connect_timeout_s * 2)
        except KafkaException as e:
            if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise BusUnavailable(f"creating topic {name} failed: {e.args[0].str()}") from e
        return True

    def partitions(self, name: str) -> int | None:
        """The topic's partition count, or None when it does not exist."""
        metadata = self._metadata()
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def retention_hours(self, name: str) -> int | None:
        """The topic's retention.ms in whole hours, or None when it does not exist."""
        if self.partitions(name) is None:
            return None
        future = self._admin.describe_configs([ConfigResource("topic", name)])
        try:
            [configs] = [f.result(timeout=self.connect_timeout_s) for f in future.values()]
        except KafkaException as e:
            raise BusUnavailable(f"describing the config of topic {name} failed: {e.args[0]}") from e
        entry = configs.get("retention.ms")
        return None if entry is None or entry.value is None else int(entry.value) // 3_600_000

    def ranges(self, name: str) -> list[PartitionRange]:
        """Per partition, the first and last offsets present.

        The low watermark is the first offset. The last offset is read, not inferred from the high
        watermark: some brokers (Tansu) report `base offset of the last batch + 1` as the high
        watermark of a ListOffsets request, so the adapter reads every partition from `high - 1`
        at once and takes, per partition, the last offset of the first fetch that answers (which
        holds the whole last batch) or the fetch response's own high watermark, whichever is
        greater. It never waits for the end of a partition: on a topic that is being written the
        end moves on and is never reached, and an idle one answers only after the broker's fetch
        wait (this read runs in every worker's health cycle, so it must cost one round trip).
        """
        count = self.partitions(name)
        if count is None:
            raise TopicMissing(f"topic {name} does not exist on {self.bootstrap}")
        reader = KafkaConsumer(
            _base_config(
                self.bootstrap,
                {"group.id": WATERMARK_GROUP_ID, "enable.partition.eof": True, "enable.auto.commit": False,
                 "fetch.wait.max.ms": RANGE_FETCH_WAIT_MS, **self._extra},
            )
        )
        try:
            return self._ranges(reader, name, count)
        finally:
            reader.close()

    def _ranges(self, reader: Any, name: str, count: int) -> list[PartitionRange]:
        bounds: dict[int, tuple[int, int]] = {}
        for partition in range(count):
            try:
                bounds[partition] = reader.get_watermark_offsets(TopicPartition(name, partition), timeout=self.connect_timeout_s)
            except KafkaException as e:
                raise BusUnavailable(f"watermarks of {name}[{partition}] unavailable: {e.args[0]}") from e
        last = {p: high - 1 for p, (low, high) in bounds.items() if high > low}
        open_ = set(last)
        if open_:
            reader.assign([TopicPartition(name, p, last[p]) for p in sorted(open_)])
        deadline = time.monotonic() + self.connect_timeout_s
        while open_ and time.monotonic() < deadline:
            try:
                # poll returns at the first message; consume(n, 0) takes what that fetch brought
                first = reader.poll(min(0.5, max(0.0, deadline - time.monotonic())))
                messages = [] if first is None else [first, *reader.consume(num_messages=10_000, timeout=0)]
            except KafkaException as e:
                raise BusUnavailable(f"reading the end of {name} failed: {e.args[0]}") from e
            answered: set[int] = set()
            for message in messages:
                partition = int(message.partition() or 0)
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise BusUnavailable(f"reading the end of {name}[{partition}] failed: {error.str()}")
                else:
                    last[partition] = max(last[partition], int(message.offset() or 0))
                answered.add(partition)
            for partition in answered & open_:
                # the fetch that answered carries the partition's true high watermark
                _, high = reader.get_watermark_offsets(TopicPartition(name, partition), cached=True)
                if high is not None and high > 0:
                    last[partition] = max(last[partition], int(high) - 1)
            open_ -= answered
        if open_:
            reader.unassign()
        return [PartitionRange(name, p, bounds[p][0], last[p]) if p in last else PartitionRange(name, p, None, None)
                for p in range(count)]

    def _metadata(self) -> Any:
        try:
            return self._admin.list_topics(timeout=self.connect_timeout_s)
        except KafkaException as e:
            raise BusUnavailable(f"Kafka at {self.bootstrap} did not answer within {self.connect_timeout_s:g}s: {e.args[0]}") from e
