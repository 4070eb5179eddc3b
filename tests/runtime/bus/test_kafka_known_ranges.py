"""A Kafka consumer's own view of where its partitions end (what a worker's health reads every few
seconds instead of asking the broker), against the session's Tansu broker."""

from __future__ import annotations

import json
import time

from runtime.bus.kafka import KafkaAdmin, KafkaBusConsumer, KafkaPublisher
from runtime.bus.port import EbRef, OutboundRecord

RUN = "platform_20260105T000000Z"


def publish(bootstrap: str, topic: str, count: int) -> None:
    publisher = KafkaPublisher(bootstrap)
    try:
        refs = publisher.publish([OutboundRecord(topic, f"k{i}", json.dumps({"platform_run_id": RUN, "n": i}).encode())
                                  for i in range(count)])
        assert all(isinstance(r, EbRef) for r in refs)
    finally:
        publisher.close()


def read_all(consumer: KafkaBusConsumer, count: int) -> None:
    got, deadline = 0, time.monotonic() + 30  # a group join takes a few seconds on Tansu
    while got < count and time.monotonic() < deadline:
        records = consumer.poll(100, 1.0)
        consumer.commit(records)
        got += len(records)
    assert got == count


def test_after_reading_its_partitions_a_consumer_knows_their_ends_as_the_broker_gives_them(
        kafka_bootstrap: str, unique_name: str) -> None:
    admin = KafkaAdmin(kafka_bootstrap)
    admin.ensure_topic(unique_name, 2, 1)
    publish(kafka_bootstrap, unique_name, 30)
    consumer = KafkaBusConsumer(kafka_bootstrap, [unique_name], f"fp-test-{unique_name}", RUN)
    try:
        assert consumer.known_ranges(unique_name) is None  # nothing assigned, nothing fetched yet
        read_all(consumer, 30)
        known = consumer.known_ranges(unique_name)
        assert known is not None and known == admin.ranges(unique_name)
        assert sum(int(r.end_offset or 0) - int(r.start_offset or 0) + 1 for r in known) == 30
        publish(kafka_bootstrap, unique_name, 10)
        read_all(consumer, 10)  # the ends move with the consumer's fetches
        assert consumer.known_ranges(unique_name) == admin.ranges(unique_name)
    finally:
        consumer.close()


def test_a_member_holding_only_some_partitions_leaves_the_answer_to_the_broker(kafka_bootstrap: str, unique_name: str) -> None:
    KafkaAdmin(kafka_bootstrap).ensure_topic(unique_name, 2, 1)
    publish(kafka_bootstrap, unique_name, 20)
    group = f"fp-test-{unique_name}"
    members = [KafkaBusConsumer(kafka_bootstrap, [unique_name], group, RUN) for _ in range(2)]
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            for member in members:
                member.commit(member.poll(100, 0.5))
            held = [len(member._consumer.assignment()) for member in members]
            if held == [1, 1]:
                break
        assert held == [1, 1], f"the group did not split the partitions: {held}"
        assert [member.known_ranges(unique_name) for member in members] == [None, None]
    finally:
        for member in members:
            member.close()
