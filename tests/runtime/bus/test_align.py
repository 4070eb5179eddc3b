"""A consumer reads its partitions together in event time: none runs far ahead of the slowest one still to read."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from runtime.bus.align import PartitionAlignment
from runtime.bus.kafka import KafkaAdmin, KafkaBusConsumer, KafkaPublisher
from runtime.bus.port import EbRef, OutboundRecord

A, B, C = ("a", "0"), ("b", "0"), ("b", "1")


def test_a_partition_ahead_of_the_slowest_one_with_records_to_read_is_paused_until_it_catches_up() -> None:
    align = PartitionAlignment(ahead_s=600)
    align.saw(A, 10_000)
    align.saw(B, 1_000)
    assert align.decide({A, B}, lagging={A, B}) == ([A], [])
    assert align.decide({A, B}, lagging={A, B}) == ([], [])  # asked once
    align.saw(B, 9_500)
    assert align.decide({A, B}, lagging={A, B}) == ([], [A])
    assert align.paused == set()


def test_a_partition_with_nothing_left_to_read_neither_holds_others_back_nor_is_held() -> None:
    align = PartitionAlignment(ahead_s=600)
    align.saw(A, 10_000)
    align.saw(B, 1_000)  # far behind, but at its end
    assert align.decide({A, B}, lagging={A}) == ([], [])
    align.saw(A, 50_000)
    assert align.decide({A, B}, lagging={B}) == ([], [])  # A caught up: never paused


def test_a_partition_that_handed_out_nothing_yet_counts_as_the_slowest() -> None:
    align = PartitionAlignment(ahead_s=600)
    align.saw(A, 10_000)
    align.saw(B, 10_000)
    assert align.decide({A, B, C}, lagging={A, B, C}) == ([A, B], [])
    align.saw(C, 9_900)
    assert align.decide({A, B, C}, lagging={A, B, C}) == ([], [A, B])


def test_a_revoked_partition_is_forgotten() -> None:
    align = PartitionAlignment(ahead_s=600)
    align.saw(A, 10_000)
    align.saw(B, 1_000)
    align.decide({A, B}, lagging={A, B})
    align.forget([A])
    assert align.paused == set() and A not in align.frontier


RUN = "platform_20260105T000000Z"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _records(topic: str, n: int, every_s: int, pad: int) -> list[OutboundRecord]:
    return [OutboundRecord(topic, f"k{i}", json.dumps({"platform_run_id": RUN, "pad": "x" * pad, "ts_utc": (
        T0 + timedelta(seconds=i * every_s)).isoformat().replace("+00:00", "Z")}).encode()) for i in range(n)]


def test_a_kafka_consumer_behind_on_several_partitions_reads_them_together_in_event_time(
        kafka_bootstrap: str, unique_name: str) -> None:
    # The broker serves a consumer that is behind one partition at a time: without alignment the
    # big topic (one record a second) came after the small one was read to its end.
    big, small = f"{unique_name}-big", f"{unique_name}-small"
    admin = KafkaAdmin(kafka_bootstrap)
    admin.ensure_topic(big, 1, 1)
    admin.ensure_topic(small, 2, 1)
    publisher = KafkaPublisher(kafka_bootstrap)
    try:
        for chunk in range(0, 8000, 1000):  # both topics cover the same 8,000 s of event time
            assert all(isinstance(r, EbRef) for r in publisher.publish(_records(big, 8000, 1, 300)[chunk:chunk + 1000]))
        assert all(isinstance(r, EbRef) for r in publisher.publish(_records(small, 1000, 8, 900)))
    finally:
        publisher.close()
    consumer = KafkaBusConsumer(kafka_bootstrap, [small, big], f"fp-test-{unique_name}", RUN)
    newest: dict[tuple[str, int], float] = {}
    spreads, got = [], 0
    try:
        deadline = time.monotonic() + 60  # the group join takes seconds on Tansu
        while got < 9000:
            assert time.monotonic() < deadline, f"stalled after {got} records"
            records = consumer.poll(200, 1.0)
            for r in records:
                newest[(r.eb_ref.topic, int(r.eb_ref.partition))] = datetime.fromisoformat(str(r.document["ts_utc"])).timestamp()
            got += len(records)
            consumer.commit(records)
            if len(newest) == 3 and got < 7000:  # all three delivering, none at its end yet
                spreads.append(max(newest.values()) - min(newest.values()))
    finally:
        consumer.close()
    assert spreads, "the three partitions never delivered together"
    # ahead_s (600 s) plus what one poll of the sparsest partition spans (200 records of one
    # topic's two partitions, 8 s apart: up to ~3,200 s)
    assert max(spreads) <= 4000, spreads
