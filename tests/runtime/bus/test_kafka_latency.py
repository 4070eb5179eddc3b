"""The Kafka adapter never waits for a batch to fill or for a partition's end while a producer streams.

These are the waits that held every RTDL worker seconds behind a paced stream (docs/worker.md
"Latency"): `consume(n, timeout)` returns only when it has n messages or the timeout passed, and
the old offset-range read waited for an end of partition that a topic being written never reaches.
Both run against the session's Tansu broker with a producer writing every 20 ms.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from runtime.bus.kafka import KafkaAdmin, KafkaBusConsumer, KafkaPublisher
from runtime.bus.port import EbRef, OutboundRecord

RUN = "platform_20260105T000000Z"


@pytest.fixture
def streamed(kafka_bootstrap: str, unique_name: str) -> Iterator[tuple[str, list[int]]]:
    """A two-partition topic a producer writes 10 records to every 20 ms (100 already on it)."""
    KafkaAdmin(kafka_bootstrap).ensure_topic(unique_name, 2, 1)
    publisher = KafkaPublisher(kafka_bootstrap)
    sent: list[int] = []

    def batch(n: int) -> list[OutboundRecord]:
        return [OutboundRecord(unique_name, f"k{n + i}", json.dumps({"platform_run_id": RUN, "n": n + i}).encode())
                for i in range(10)]

    for n in range(0, 100, 10):
        assert all(isinstance(r, EbRef) for r in publisher.publish(batch(n)))
    stop = threading.Event()

    def produce() -> None:
        n = 100
        while not stop.wait(0.02):
            publisher.publish(batch(n))
            n += 10
            sent.append(n)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield unique_name, sent
    finally:
        stop.set()
        thread.join(timeout=10)
        publisher.close()


def test_offset_ranges_of_a_topic_being_written_answer_in_one_fetch_round(kafka_bootstrap: str,
                                                                          streamed: tuple[str, list[int]]) -> None:
    topic, sent = streamed
    admin = KafkaAdmin(kafka_bootstrap)
    for _ in range(3):
        start = time.monotonic()
        ranges = admin.ranges(topic)
        took = time.monotonic() - start
        assert took < 1.0, f"ranges took {took:.2f}s while the topic is written"
        assert len(ranges) == 2 and all(r.end_offset is not None for r in ranges)
        assert sum(int(r.end_offset or 0) + 1 for r in ranges) >= 100
    assert sent, "the producer wrote meanwhile"


def test_poll_of_a_paced_stream_returns_what_is_there_instead_of_waiting_for_a_full_batch(
        kafka_bootstrap: str, streamed: tuple[str, list[int]], unique_name: str) -> None:
    topic, _ = streamed
    consumer = KafkaBusConsumer(kafka_bootstrap, [topic], f"fp-test-{unique_name}", RUN)
    try:
        deadline = time.monotonic() + 30
        got = 0
        while got == 0 and time.monotonic() < deadline:  # the group join takes a few seconds on Tansu
            got = len(consumer.poll(2000, 1.0))
        assert got > 0
        durations = []
        for _ in range(10):
            start = time.monotonic()
            records = consumer.poll(2000, 5.0)
            durations.append(time.monotonic() - start)
            consumer.commit(records)
            assert len(records) < 2000
        # records arrive every 20 ms: a poll returns with them, never after its 5 s timeout
        assert sorted(durations)[len(durations) // 2] < 0.5, durations
    finally:
        consumer.close()
