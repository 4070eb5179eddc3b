"""The in-memory bus beyond the shared contract: what stream-worker tests rely on.

Groups share committed offsets, members split partitions, every group reads everything, the bus
can be taken down and brought back, partitioning matches the Kafka adapter, and it is thread-safe.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from runtime.bus.memory import MemoryBroker, partition_for
from runtime.bus.port import BusRecord, EbRef, OutboundRecord
from runtime.errors import BusUnavailable

RUN = "platform_20260101T000000Z"


def _value(n: int, run: str = RUN) -> bytes:
    return json.dumps({"platform_run_id": run, "n": n}).encode()


def _numbers(records: list[BusRecord]) -> list[int]:
    return sorted(json.loads(r.value)["n"] for r in records)


def _broker(partitions: int = 3, records: int = 12) -> MemoryBroker:
    broker = MemoryBroker()
    broker.admin().ensure_topic("traffic", partitions, 24)
    broker.publisher().publish([OutboundRecord("traffic", f"key-{i}", _value(i)) for i in range(records)])
    return broker


def test_a_key_always_lands_on_the_partition_librdkafka_would_choose() -> None:
    broker = MemoryBroker()
    broker.admin().ensure_topic("t", 4, 24)
    refs = broker.publisher().publish([OutboundRecord("t", "merchant-42", _value(i)) for i in range(5)])
    assert {r.partition for r in refs if isinstance(r, EbRef)} == {partition_for("merchant-42", 4)}
    assert [r.offset for r in refs if isinstance(r, EbRef)] == [0, 1, 2, 3, 4]
    # librdkafka's consistent partitioner: CRC-32 of the key bytes modulo the partition count
    assert partition_for("123456789", 7) == 0xCBF43926 % 7


def test_each_group_reads_every_record_and_commits_only_for_itself() -> None:
    broker = _broker()
    decisions = broker.consumer(["traffic"], "fp-decision", RUN)
    features = broker.consumer(["traffic"], "fp-features", RUN)
    got = decisions.poll(100, 0.1)
    decisions.commit(got)
    assert _numbers(got) == list(range(12))
    assert _numbers(features.poll(100, 0.1)) == list(range(12))
    assert sum(broker.committed("fp-decision", "traffic").values()) == 12
    assert broker.committed("fp-features", "traffic") == {}


def test_a_new_member_resumes_from_the_groups_commit_and_gets_uncommitted_records_again() -> None:
    broker = _broker(partitions=1, records=6)
    crashed = broker.consumer(["traffic"], "fp-worker", RUN)
    got = crashed.poll(100, 0.1)
    crashed.commit(got[:4])
    crashed.close()  # "crash" after handling 4 records durably, 2 not
    restarted = broker.consumer(["traffic"], "fp-worker", RUN)
    assert _numbers(restarted.poll(100, 0.1)) == [4, 5]
    assert broker.committed("fp-worker", "traffic") == {0: 4}


def test_live_members_of_a_group_split_the_partitions_and_take_them_over_on_leave() -> None:
    broker = _broker(partitions=4, records=40)
    first = broker.consumer(["traffic"], "fp-worker", RUN)
    second = broker.consumer(["traffic"], "fp-worker", RUN)
    a, b = first.poll(100, 0.1), second.poll(100, 0.1)
    assert {r.eb_ref.partition for r in a}.isdisjoint({r.eb_ref.partition for r in b})
    assert _numbers(a + b) == list(range(40))
    first.commit(a)
    second.close()  # never committed: its partitions go back to `first` from the group's commit
    assert _numbers(first.poll(100, 0.1)) == _numbers(b)


def test_a_commit_for_a_partition_lost_in_a_rebalance_is_not_applied() -> None:
    broker = _broker(partitions=2, records=10)
    first = broker.consumer(["traffic"], "fp-worker", RUN)
    got = first.poll(100, 0.1)
    second = broker.consumer(["traffic"], "fp-worker", RUN)  # takes partition 1 from `first`
    first.commit(got)
    assert set(broker.committed("fp-worker", "traffic")) == {0}
    assert {r.eb_ref.partition for r in second.poll(100, 0.1)} == {1}


def test_unavailable_bus_raises_bus_unavailable_everywhere_and_recovers_without_loss() -> None:
    broker = _broker(partitions=1, records=3)
    consumer = broker.consumer(["traffic"], "fp-worker", RUN)
    got = consumer.poll(100, 0.1)
    with broker.unavailable():
        for call in (
            lambda: broker.publisher().publish([OutboundRecord("traffic", "k", _value(99))]),
            lambda: consumer.poll(10, 0.1),
            lambda: consumer.commit(got),
            lambda: broker.consumer(["traffic"], "other", RUN),
            lambda: broker.admin().ranges("traffic"),
        ):
            with pytest.raises(BusUnavailable) as caught:
                call()
            assert caught.value.code == "BUS_UNAVAILABLE"
    assert broker.committed("fp-worker", "traffic") == {}
    consumer.commit(got)  # the retry after recovery commits what the failed commit could not
    assert broker.committed("fp-worker", "traffic") == {0: 3}
    assert [r.end_offset for r in broker.admin().ranges("traffic")] == [2]


def test_poll_wakes_up_when_a_record_is_published_from_another_thread() -> None:
    broker = _broker(partitions=2, records=0)
    consumer = broker.consumer(["traffic"], "fp-worker", RUN)
    timer = threading.Timer(0.05, lambda: broker.publisher().publish([OutboundRecord("traffic", "k", _value(7))]))
    start = time.monotonic()
    timer.start()
    got = consumer.poll(10, 5.0)
    timer.join()
    assert _numbers(got) == [7] and time.monotonic() - start < 2.0


def test_concurrent_publishers_get_unique_gapless_offsets() -> None:
    broker = _broker(partitions=2, records=0)
    refs: list[EbRef] = []
    lock = threading.Lock()

    def publish(worker: int) -> None:
        pub = broker.publisher()
        for i in range(100):
            [ref] = pub.publish([OutboundRecord("traffic", f"k{worker}-{i}", _value(i))])
            assert isinstance(ref, EbRef)
            with lock:
                refs.append(ref)

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for partition in (0, 1):
        offsets = sorted(int(r.offset) for r in refs if r.partition == partition)
        assert offsets == list(range(len(offsets)))
    assert len(refs) == 400 == len(broker.records("traffic"))


def test_partitioning_agrees_with_the_kafka_adapter(kafka_bootstrap: str, unique_name: str) -> None:
    from runtime.bus.kafka import KafkaAdmin, KafkaPublisher

    KafkaAdmin(kafka_bootstrap).ensure_topic(unique_name, 5, 1)
    pub = KafkaPublisher(kafka_bootstrap)
    try:
        keys = [f"merchant-{i}" for i in range(30)]
        refs = pub.publish([OutboundRecord(unique_name, key, _value(i)) for i, key in enumerate(keys)])
    finally:
        pub.close()
    assert [r.partition for r in refs if isinstance(r, EbRef)] == [partition_for(key, 5) for key in keys]
