"""The bus port's contract, one subclass per adapter: Kafka, Kinesis and the in-memory bus.

Kafka runs on Tansu, Kinesis on the moto server with Postgres checkpoints, the in-memory bus on a
fresh `MemoryBroker`; topics and groups are random per test. Tansu's group join takes seconds:
the real adapters poll generously and wait longer before concluding that nothing more comes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from controller.substrate.processes import free_port
from runtime.bus import factory
from runtime.bus.memory import MemoryBroker
from runtime.bus.port import (
    MAX_RECORD_BYTES,
    BusAdmin,
    BusRecord,
    Consumer,
    EbRef,
    OutboundRecord,
    Publisher,
    RecordTooLarge,
    RunScopedConsumer,
)
from runtime.contracts.registry import Registry, load_registry
from runtime.errors import BusUnavailable, TopicMissing
from runtime.settings import Settings
from tests.runtime.bus.conftest import adapter_settings, bus_settings

RUN_A = "platform_20260101T000000Z"
RUN_B = "platform_20260101T000001Z"


@dataclass(frozen=True)
class ContractBus:
    """One adapter as the contract sees it: how to build its admin, publishers and consumers."""

    offset_kind: str
    registry: Registry
    admin: Callable[[], BusAdmin]
    publisher: Callable[[], Publisher]
    consumer: Callable[[list[str], str, str | None], RunScopedConsumer]
    unreachable: Callable[[], ContractBus]
    min_retention_hours: int = 0
    poll_timeout_s: float = 40.0
    quiet_s: float = 3.0  # how long an empty poll waits before "nothing more" is believed
    rejoin_quiet_s: float = 12.0  # same, for a consumer that has just joined its group


def _value(run_id: str, n: int) -> bytes:
    return json.dumps({"platform_run_id": run_id, "n": n}).encode()


def _topic(bus: ContractBus, unique_name: str, partitions: int = 2) -> str:
    assert bus.admin().ensure_topic(unique_name, partitions, 24) is True
    return unique_name


def _publish(bus: ContractBus, records: list[OutboundRecord]) -> list[EbRef]:
    pub = bus.publisher()
    try:
        results = pub.publish(records)
    finally:
        pub.close()
    assert all(isinstance(r, EbRef) for r in results), results
    return [r for r in results if isinstance(r, EbRef)]


def _poll_until(consumer: Consumer, count: int, timeout_s: float) -> list[BusRecord]:
    deadline = time.monotonic() + timeout_s
    got: list[BusRecord] = []
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(count - len(got), min(5.0, max(0.1, deadline - time.monotonic())))
    return got


def _numbers(records: list[BusRecord]) -> list[int]:
    return sorted(json.loads(r.value)["n"] for r in records)


def _position(ref: EbRef) -> int:
    return int(ref.offset)


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def settings_bus(settings: Settings) -> ContractBus:
    """A real adapter behind runtime.bus.factory, as a runtime process builds it from settings."""

    def unreachable() -> ContractBus:
        dead = f"127.0.0.1:{free_port()}"
        return settings_bus(bus_settings(settings.bus, kafka_bootstrap=dead, moto_endpoint=f"http://{dead}",
                                         postgres_dsn=settings.db_dsn))

    return ContractBus(
        offset_kind="kafka_offset" if settings.bus == "kafka" else "kinesis_sequence",
        registry=settings.registry,
        admin=lambda: factory.admin(settings),
        publisher=lambda: factory.publisher(settings),
        consumer=lambda topics, group, run: factory.consumer(settings, topics, group, run),
        unreachable=unreachable,
        min_retention_hours=24 if settings.bus == "kinesis" else 0,
    )


def memory_bus(broker: MemoryBroker) -> ContractBus:
    """The in-memory adapter on `broker`; unreachable = the same broker made unavailable."""

    def unreachable() -> ContractBus:
        broker.make_unavailable("the contract suite took the bus down")
        return memory_bus(broker)

    return ContractBus(
        offset_kind="kafka_offset",
        registry=load_registry("local_parity"),
        admin=broker.admin,
        publisher=broker.publisher,
        consumer=broker.consumer,
        unreachable=unreachable,
        poll_timeout_s=2.0,
        quiet_s=0.05,
        rejoin_quiet_s=0.05,
    )


class BusContract:
    """What every bus adapter promises; a subclass provides the `bus` fixture."""

    def test_publish_returns_eb_refs_increasing_per_partition(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name)
        refs = _publish(bus, [OutboundRecord(topic, f"key-{i % 5}", _value(RUN_A, i)) for i in range(40)])
        assert {r.offset_kind for r in refs} == {bus.offset_kind}
        assert {r.topic for r in refs} == {topic}
        by_partition: dict[str, list[int]] = {}
        for ref in refs:
            by_partition.setdefault(str(ref.partition), []).append(_position(ref))
        assert len(by_partition) == 2  # 5 keys over 2 partitions/shards
        for positions in by_partition.values():
            assert positions == sorted(positions) and len(set(positions)) == len(positions)


    def test_consume_returns_what_was_published_with_matching_refs(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name)
        refs = _publish(bus, [OutboundRecord(topic, f"k{i}", _value(RUN_A, i)) for i in range(25)])
        consumer = bus.consumer([topic], _group(), RUN_A)
        try:
            got = _poll_until(consumer, 25, bus.poll_timeout_s)
            assert _numbers(got) == list(range(25))
            assert {(str(r.eb_ref.partition), str(r.eb_ref.offset)) for r in got} == {(str(r.partition), str(r.offset)) for r in refs}
            assert {r.key for r in got} == {f"k{i}" for i in range(25)}
            assert consumer.poll(10, bus.quiet_s) == []
        finally:
            consumer.close()

    def test_ends_a_consumer_says_it_knows_are_the_admins(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name)
        _publish(bus, [OutboundRecord(topic, f"k{i}", _value(RUN_A, i)) for i in range(25)])
        consumer = bus.consumer([topic], _group(), RUN_A)
        try:
            _poll_until(consumer, 25, bus.poll_timeout_s)
            known = consumer.known_ranges(topic)  # None: this adapter leaves it to the admin
            assert known is None or known == bus.admin().ranges(topic)
        finally:
            consumer.close()


    def test_commit_then_reopen_resumes_after_the_commit(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name, partitions=1)
        _publish(bus, [OutboundRecord(topic, "k", _value(RUN_A, i)) for i in range(10)])
        group = _group()
        first = bus.consumer([topic], group, RUN_A)
        try:
            got = _poll_until(first, 10, bus.poll_timeout_s)
            assert _numbers(got) == list(range(10))
            ordered = sorted(got, key=lambda r: _position(r.eb_ref))
            first.commit(ordered[:6])
        finally:
            first.close()
        second = bus.consumer([topic], group, RUN_A)
        try:
            again = _poll_until(second, 4, bus.poll_timeout_s)
            assert _numbers(again) == [6, 7, 8, 9]
            second.commit(again)
            assert second.poll(10, bus.quiet_s) == []
        finally:
            second.close()
        third = bus.consumer([topic], group, RUN_A)
        try:
            assert _poll_until(third, 1, timeout_s=bus.rejoin_quiet_s) == []
        finally:
            third.close()


    def test_uncommitted_records_are_delivered_again(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name)
        _publish(bus, [OutboundRecord(topic, f"k{i}", _value(RUN_A, i)) for i in range(8)])
        group = _group()
        first = bus.consumer([topic], group, RUN_A)
        try:
            assert _numbers(_poll_until(first, 8, bus.poll_timeout_s)) == list(range(8))
        finally:
            first.close()  # no commit: the caller never made its durable write
        second = bus.consumer([topic], group, RUN_A)
        try:
            assert _numbers(_poll_until(second, 8, bus.poll_timeout_s)) == list(range(8))
        finally:
            second.close()


    def test_commit_never_passes_an_earlier_unacknowledged_record(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name, partitions=1)
        _publish(bus, [OutboundRecord(topic, "k", _value(RUN_A, i)) for i in range(5)])
        group = _group()
        first = bus.consumer([topic], group, RUN_A)
        try:
            ordered = sorted(_poll_until(first, 5, bus.poll_timeout_s), key=lambda r: _position(r.eb_ref))
            first.commit(ordered[3:])  # records 3 and 4 written; 0..2 not yet
        finally:
            first.close()
        second = bus.consumer([topic], group, RUN_A)
        try:
            assert _numbers(_poll_until(second, 5, bus.poll_timeout_s)) == list(range(5))
        finally:
            second.close()


    def test_other_runs_records_are_skipped_counted_and_committed(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name, partitions=1)
        records = [OutboundRecord(topic, "k", _value(RUN_B if i % 2 else RUN_A, i)) for i in range(10)]
        records.append(OutboundRecord(topic, "k", b"not json"))
        _publish(bus, records)
        group = _group()
        first = bus.consumer([topic], group, RUN_A)
        try:
            got = _poll_until(first, 5, bus.poll_timeout_s)
            assert _numbers(got) == [0, 2, 4, 6, 8]
            deadline = time.monotonic() + bus.rejoin_quiet_s
            while first.counts.skipped_unscoped == 0 and time.monotonic() < deadline:
                first.poll(10, min(1.0, bus.quiet_s))
            first.commit(got)
            counts = first.counts.as_dict()
            assert counts == {"delivered": 5, "skipped_other_run": 5, "skipped_unscoped": 1}
        finally:
            first.close()
        second = bus.consumer([topic], group, RUN_A)
        try:
            assert _poll_until(second, 1, timeout_s=bus.rejoin_quiet_s) == []
            assert second.counts.as_dict()["skipped_other_run"] == 0
        finally:
            second.close()


    def test_admin_creates_topic_with_registry_partitions_and_reports_ranges(self, bus: ContractBus, unique_name: str) -> None:
        spec = bus.registry.topic("FP_BUS_TRAFFIC_FRAUD_V1")
        admin = bus.admin()
        assert admin.partitions(unique_name) is None
        assert admin.ensure_topic(unique_name, spec.partitions, spec.retention_hours) is True
        assert admin.ensure_topic(unique_name, spec.partitions, spec.retention_hours) is False
        assert admin.partitions(unique_name) == spec.partitions
        assert admin.retention_hours(unique_name) == max(spec.retention_hours, bus.min_retention_hours)
        empty = admin.ranges(unique_name)
        assert len(empty) == spec.partitions
        assert all(r.start_offset is None and r.end_offset is None for r in empty)
        refs = _publish(bus, [OutboundRecord(unique_name, f"k{i}", _value(RUN_A, i)) for i in range(30)])
        expected: dict[str, tuple[int, int]] = {}
        for ref in refs:
            low, high = expected.get(str(ref.partition), (_position(ref), _position(ref)))
            expected[str(ref.partition)] = (min(low, _position(ref)), max(high, _position(ref)))
        ranges = {str(r.partition): r for r in admin.ranges(unique_name)}
        for partition, (low, high) in expected.items():
            assert int(ranges[partition].start_offset) == low  # type: ignore[arg-type]
            assert int(ranges[partition].end_offset) == high  # type: ignore[arg-type]


    def test_unreachable_bus_is_bus_unavailable_fast(self, bus: ContractBus, unique_name: str) -> None:
        unreachable = bus.unreachable()
        start = time.monotonic()
        with pytest.raises(BusUnavailable):
            unreachable.admin().partitions(unique_name)
        with pytest.raises(BusUnavailable):
            unreachable.publisher().publish([OutboundRecord(unique_name, "k", b"{}")])
        with pytest.raises(BusUnavailable):
            unreachable.consumer([unique_name], "g", RUN_A)
        assert time.monotonic() - start < 30


    def test_missing_topic_is_topic_missing(self, bus: ContractBus, unique_name: str) -> None:
        with pytest.raises(TopicMissing):
            bus.publisher().publish([OutboundRecord(unique_name, "k", b"{}")])
        with pytest.raises(TopicMissing):
            bus.consumer([unique_name], "g", RUN_A)
        with pytest.raises(TopicMissing):
            bus.admin().ranges(unique_name)


    def test_oversized_record_is_refused_and_the_rest_of_the_batch_lands(self, bus: ContractBus, unique_name: str) -> None:
        topic = _topic(bus, unique_name, partitions=1)
        pub = bus.publisher()
        try:
            results = pub.publish([
                OutboundRecord(topic, "k", _value(RUN_A, 0)),
                OutboundRecord(topic, "k", b"x" * (MAX_RECORD_BYTES + 1)),
                OutboundRecord(topic, "k", _value(RUN_A, 2)),
            ])
        finally:
            pub.close()
        assert isinstance(results[0], EbRef) and isinstance(results[2], EbRef)
        assert isinstance(results[1], RecordTooLarge) and results[1].code == "RECORD_TOO_LARGE"
        consumer = bus.consumer([topic], _group(), RUN_A)
        try:
            assert _numbers(_poll_until(consumer, 2, bus.poll_timeout_s)) == [0, 2]
        finally:
            consumer.close()


class TestKafkaBus(BusContract):
    """The contract on the Kafka adapter (Tansu)."""

    @pytest.fixture
    def bus(self, request: pytest.FixtureRequest) -> ContractBus:
        return settings_bus(adapter_settings(request, "kafka"))


class TestKinesisBus(BusContract):
    """The contract on the Kinesis adapter (moto, Postgres checkpoints)."""

    @pytest.fixture
    def bus(self, request: pytest.FixtureRequest) -> ContractBus:
        return settings_bus(adapter_settings(request, "kinesis"))


class TestMemoryBus(BusContract):
    """The contract on the in-memory adapter (a fresh broker per test)."""

    @pytest.fixture
    def bus(self) -> ContractBus:
        return memory_bus(MemoryBroker())
