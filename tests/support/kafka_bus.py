"""A small but real confluent-kafka implementation of the bus port, for IG/WSP tests only.

The project's production adapters live in runtime/bus (built elsewhere); this one exists so the
IG and WSP tests talk to a real broker (Tansu) today: idempotent producer, acks=all, per-record
delivery reports, consumers that commit only when told.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer

from runtime.bus.kafka import KafkaAdmin, KafkaPublisher
from runtime.bus.port import BusRecord, Consumer, EbRef


def RealKafkaPublisher(bootstrap: str, *, delivery_timeout_s: float = 15.0) -> KafkaPublisher:
    """The production Kafka publisher (runtime.bus.kafka), with a test-sized delivery timeout."""
    return KafkaPublisher(bootstrap, delivery_timeout_ms=int(delivery_timeout_s * 1000))


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
                raw_key = m.key()
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                out.append(BusRecord(EbRef("kafka_offset", str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)), key,
                                     m.value() or b""))
            if out and not msgs:
                break
        return out

    def commit(self, records: list[BusRecord]) -> None:
        if records:
            offsets = [TopicPartition(r.eb_ref.topic, int(r.eb_ref.partition), int(r.eb_ref.offset) + 1) for r in records]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()


RealKafkaAdmin = KafkaAdmin


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
