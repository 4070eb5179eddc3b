"""The production Kafka adapter (runtime.bus.kafka) with test-sized knobs, for IG/WSP tests on Tansu.

`read_all` reads whole topics with the production consumer in a fresh group (every run, no commit),
up to the end offsets the admin reports.
"""

from __future__ import annotations

import time
import uuid

from runtime.bus.kafka import KafkaAdmin, KafkaBusConsumer, KafkaPublisher
from runtime.bus.port import BusRecord


def RealKafkaPublisher(bootstrap: str, *, delivery_timeout_s: float = 15.0) -> KafkaPublisher:
    """The production Kafka publisher (runtime.bus.kafka), with a test-sized delivery timeout."""
    return KafkaPublisher(bootstrap, delivery_timeout_ms=int(delivery_timeout_s * 1000))


RealKafkaAdmin = KafkaAdmin


def read_all(bootstrap: str, topics: list[str], timeout_s: float = 60.0) -> list[BusRecord]:
    """Every record on `topics` up to their last offsets at the time of the call (or what arrived by the timeout)."""
    admin = KafkaAdmin(bootstrap)
    pending = {(r.topic, int(r.partition)): int(r.end_offset) for t in topics for r in admin.ranges(t)
               if r.end_offset is not None}
    consumer = KafkaBusConsumer(bootstrap, topics, f"test-read-all-{uuid.uuid4().hex[:8]}", None)
    out: list[BusRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for record in consumer.poll(5000, 1.0):
                out.append(record)
                ref = record.eb_ref
                if int(ref.offset) >= pending.get((ref.topic, int(ref.partition)), 1 << 62):
                    pending.pop((ref.topic, int(ref.partition)))
    finally:
        consumer.close()
    return out
