"""A small but real confluent-kafka implementation of the bus port, for IG/WSP tests only.

The project's production adapters live in runtime/bus (built elsewhere); this one exists so the
IG and WSP tests talk to a real broker (Tansu) today: idempotent producer, acks=all, per-record
delivery reports, consumers that commit only when told.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.bus.port import BusAdmin, BusRecord, Consumer, EbRef, OutboundRecord, PartitionRange, Publisher
from runtime.errors import BusUnavailable, PublishAmbiguous, TopicMissing


class RealKafkaPublisher(Publisher):
    """Idempotent producer; the EbRef of each record comes from its delivery report only."""

    def __init__(self, bootstrap: str, *, delivery_timeout_s: float = 15.0):
        self.delivery_timeout_s = delivery_timeout_s
        self._suspect = True
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "socket.timeout.ms": 5000,
            "log_level": 2,  # broker shutdown at session end is not news
        })

    def publish(self, records: list[OutboundRecord]) -> list[EbRef | Exception]:
        if self._suspect:
            # After a failure (or before the first publish) ask the broker first: when it does not
            # answer, nothing is sent and the failure is definite, not ambiguous.
            try:
                self._producer.list_topics(timeout=3)
            except KafkaException as e:
                return [BusUnavailable(f"broker unreachable: {e}") for _ in records]
        results: list[EbRef | Exception | None] = [None] * len(records)

        def report(index: int):  # type: ignore[no-untyped-def]
            def callback(err: KafkaError | None, msg: Any) -> None:
                if err is None:
                    results[index] = EbRef("kafka_offset", msg.topic(), msg.partition(), msg.offset())
                elif err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT):
                    results[index] = PublishAmbiguous(f"delivery of {records[index].key} timed out: {err}")
                elif err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    results[index] = TopicMissing(f"topic {records[index].topic} missing: {err}")
                else:
                    results[index] = BusUnavailable(f"delivery of {records[index].key} failed: {err}")
            return callback

        for i, record in enumerate(records):
            while True:
                try:
                    self._producer.produce(record.topic, key=record.key.encode(), value=record.value, on_delivery=report(i))
                    break
                except BufferError:
                    self._producer.poll(0.05)
                except KafkaException as e:
                    results[i] = BusUnavailable(f"produce failed: {e}")
                    break
        self._producer.flush(self.delivery_timeout_s + 5)
        self._suspect = any(not isinstance(r, EbRef) for r in results)
        return [r if r is not None else PublishAmbiguous(f"no delivery report for {records[i].key}") for i, r in enumerate(results)]

    def close(self) -> None:
        self._producer.flush(5)


class RealKafkaConsumer(Consumer):
    """Subscribes to topics from the beginning with a fresh group; commits on request."""

    def __init__(self, bootstrap: str, topics: list[str], *, group: str | None = None, assign: bool = False):
        self._consumer = KafkaConsumer({
            "bootstrap.servers": bootstrap,
            "group.id": group or f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "log_level": 2,
        })
        if assign:
            # No group join (slow on Tansu): read every partition from the beginning.
            md = self._consumer.list_topics(timeout=10)
            parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in md.topics[t].partitions]
            self._consumer.assign(parts)
        else:
            self._consumer.subscribe(topics)

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        out: list[BusRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_records:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msgs = self._consumer.consume(num_messages=max_records - len(out), timeout=min(left, 1.0))
            for m in msgs:
                if m.error():
                    continue
                key = m.key().decode() if m.key() is not None else None
                out.append(BusRecord(EbRef("kafka_offset", m.topic(), m.partition(), m.offset()), key, m.value()))
            if out and not msgs:
                break
        return out

    def commit(self, records: list[BusRecord]) -> None:
        if records:
            offsets = [TopicPartition(r.eb_ref.topic, int(r.eb_ref.partition), int(r.eb_ref.offset) + 1) for r in records]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()


class RealKafkaAdmin(BusAdmin):
    """Topic creation and watermark ranges on the broker."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        if self.partitions(name) is not None:
            return False
        futures = self._admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                                      config={"retention.ms": str(retention_hours * 3_600_000)})])
        try:
            futures[name].result(15)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BusUnavailable(f"create topic {name}: {e}") from e
            return False
        for _ in range(50):
            if self.partitions(name) == partitions:
                break
            time.sleep(0.1)
        return True

    def partitions(self, name: str) -> int | None:
        md = self._admin.list_topics(timeout=10)
        topic = md.topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def ranges(self, name: str) -> list[PartitionRange]:
        # Tansu answers ListOffsets with a fixed high watermark, so the test admin scans instead.
        count = self.partitions(name)
        if count is None:
            raise TopicMissing(f"topic {name} does not exist")
        seen: dict[int, list[int]] = {}
        for record in read_all(self.bootstrap, [name], expected=10**9, timeout_s=3.0):
            seen.setdefault(int(record.eb_ref.partition), []).append(int(record.eb_ref.offset))
        return [PartitionRange(name, p, min(seen[p]) if p in seen else None, max(seen[p]) if p in seen else None)
                for p in range(count)]


def read_all(bootstrap: str, topics: list[str], expected: int, timeout_s: float = 60.0) -> list[BusRecord]:
    """Every record on `topics` (stops once `expected` are read, or at the timeout)."""
    consumer = RealKafkaConsumer(bootstrap, topics, assign=True)
    out: list[BusRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(out) < expected:
            batch = consumer.poll(5000, 1.0)
            if not batch and expected >= 10**9:
                break
            out.extend(batch)
        # drain briefly to catch anything beyond `expected`
        out.extend(consumer.poll(100_000, 1.0))
    finally:
        consumer.close()
    return out
