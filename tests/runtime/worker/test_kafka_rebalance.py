"""Two members of one consumer group on a 4-partition topic (the Tansu broker): a member joining
moves partitions (revoke: commit what is finished, drop the rest), a member dying mid-stream hands
its partitions over; every record is applied exactly once and the group commits to the end."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from runtime.bus.kafka import KafkaBusConsumer
from runtime.bus.port import BusRecord, OutboundRecord
from runtime.db.postgres import Database
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.records import InputRecord, OutputRecord
from runtime.worker.store import WorkerStore
from tests.runtime.worker.contract import envelope
from tests.support.events import random_run_id
from tests.support.kafka_bus import RealKafkaAdmin, RealKafkaPublisher

RECORDS = 600
PARTITIONS = 4


class CountingHandler(StreamHandler):
    """Records each event's effect once; a second application leaves an `#again#` row (there must be none)."""

    component = "rebalance"

    def __init__(self, topic: str, platform_run_id: str):
        self.topic = topic
        self.platform_run_id = platform_run_id
        self.slow = threading.Event()
        self.slow.set()

    def input_topics(self) -> list[str]:
        return [self.topic]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        for record in records:
            first = conn.execute("INSERT INTO worker_echo_effects (platform_run_id, event_id, applied) VALUES (%s, %s, 1)"
                                 " ON CONFLICT DO NOTHING RETURNING 1", (self.platform_run_id, record.event_id)).fetchone()
            if first is None:  # applied before: leave a visible trace of the double effect
                conn.execute("INSERT INTO worker_echo_effects (platform_run_id, event_id, applied) VALUES (%s, %s, 2)",
                             (self.platform_run_id, f"{record.event_id}#again#{uuid.uuid4().hex}"))
        if self.slow.is_set():
            time.sleep(0.2)  # slow until the rebalance happened, so the second member joins mid-stream
        return []


class Killed(Exception):
    """The member dies (after its transaction, before its offsets commit)."""


class DiesWhenTold(KafkaBusConsumer):
    """A member that dies on its first commit after `kill` is set: the batch is durable, its offsets are not."""

    def __init__(self, *args: Any, kill: threading.Event, **kw: Any):
        super().__init__(*args, **kw)
        self.kill = kill

    def commit(self, records: list[BusRecord]) -> None:
        if self.kill.is_set():
            raise Killed()
        super().commit(records)


def _member(worker: StreamWorker, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        worker.run(stop)
    except Killed:
        pass
    except BaseException as e:
        errors.append(e)
    finally:
        worker.consumer.close()


def _effects(db: Database, run_id: str) -> dict[str, int]:
    with db.transaction() as conn:
        rows = conn.execute("SELECT event_id, applied FROM worker_echo_effects WHERE platform_run_id = %s", (run_id,)).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def test_a_member_joining_and_a_member_dying_lose_nothing_and_apply_nothing_twice(
        kafka_bootstrap: str, runtime_dsn: str) -> None:
    topic = f"rebalance.{uuid.uuid4().hex[:8]}"
    group = f"fp-rebalance-{uuid.uuid4().hex[:8]}"
    run_id = random_run_id()
    RealKafkaAdmin(kafka_bootstrap).ensure_topic(topic, PARTITIONS, 24)
    results = RealKafkaPublisher(kafka_bootstrap).publish(
        [OutboundRecord(topic, f"k{i}", json.dumps(envelope(run_id, "echo", f"e{i:04d}", {"n": i})).encode())
         for i in range(RECORDS)])
    assert all(not isinstance(r, Exception) for r in results), results
    db = Database(runtime_dsn, name="rebalance", max_size=4)
    handler = CountingHandler(topic, run_id)
    config = WorkerConfig(batch_size=8, poll_timeout_s=0.2, backoff_initial_s=0.1)

    def worker(consumer: KafkaBusConsumer) -> StreamWorker:
        return StreamWorker(handler, consumer, None, db.transaction, WorkerStore(group, handler.component, run_id),
                            config=config)

    stop, kill = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    first_consumer = DiesWhenTold(kafka_bootstrap, [topic], group, run_id, kill=kill)
    a = threading.Thread(target=_member, args=(worker(first_consumer), stop, errors))
    a.start()
    _wait(lambda: bool(_effects(db, run_id)) or bool(errors), "the first member applies records")
    assert not errors, errors
    second_consumer = KafkaBusConsumer(kafka_bootstrap, [topic], group, run_id)
    second = worker(second_consumer)
    b = threading.Thread(target=_member, args=(second, stop, errors))
    b.start()
    try:
        _wait(lambda: second_consumer.rebalances >= 1 and first_consumer.rebalances >= 2,
              "the second member joins and the first is rebalanced")
        _wait(lambda: second.counters.applied > 0, "the second member applies records")
        assert len(_effects(db, run_id)) < RECORDS, "the stream ended before the rebalance; make the handler slower"
        kill.set()
        handler.slow.clear()
        a.join(timeout=30)
        assert not a.is_alive(), "the first member should have died on its next commit"
        _wait(lambda: len(_effects(db, run_id)) >= RECORDS or bool(errors), "the survivor applies the rest")
        _wait(lambda: _committed(kafka_bootstrap, topic, group) == _ends(kafka_bootstrap, topic), "the survivor commits")
    finally:
        stop.set()
        b.join(timeout=60)
    assert not errors, errors
    effects = _effects(db, run_id)
    assert len(effects) == RECORDS, f"{RECORDS - len(effects)} record(s) never applied"
    assert set(effects.values()) == {1}, {k: v for k, v in effects.items() if v != 1}
    assert second_consumer.rebalances >= 2  # joined, then took over the dead member's partitions
    db.close()


def _wait(condition: Any, what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    return _committed_of(bootstrap, topic, group, PARTITIONS)


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    return {int(r.partition): int(r.end_offset) + 1 for r in RealKafkaAdmin(bootstrap).ranges(topic) if r.end_offset is not None}


def test_a_member_never_commits_a_partition_revoked_while_its_batch_was_in_hand(kafka_bootstrap: str) -> None:
    topic = f"revoke.{uuid.uuid4().hex[:8]}"
    group = f"fp-revoke-{uuid.uuid4().hex[:8]}"
    run_id = random_run_id()
    RealKafkaAdmin(kafka_bootstrap).ensure_topic(topic, 2, 24)
    RealKafkaPublisher(kafka_bootstrap).publish(
        [OutboundRecord(topic, f"k{i}", json.dumps(envelope(run_id, "echo", f"e{i}", {"n": i})).encode()) for i in range(20)])
    consumer = KafkaBusConsumer(kafka_bootstrap, [topic], group, run_id)
    try:
        batch: list[BusRecord] = []
        deadline = time.monotonic() + 60
        while {int(r.eb_ref.partition) for r in batch} != {0, 1} and time.monotonic() < deadline:
            batch += consumer.poll(50, 1.0)
        assert {int(r.eb_ref.partition) for r in batch} == {0, 1}
        consumer._on_revoke(None, [TopicPartition(topic, 1)])  # what librdkafka calls when partition 1 moves away
        consumer.commit(batch)  # the batch in hand is done: only partition 0 is still this member's
        committed = _committed_of(kafka_bootstrap, topic, group, 2)
    finally:
        consumer.close()
    last_0 = max(int(r.eb_ref.offset) for r in batch if int(r.eb_ref.partition) == 0)
    assert committed[0] == last_0 + 1
    assert committed[1] < 0  # never committed: the new owner reads partition 1 from where the group left it


def _committed_of(bootstrap: str, topic: str, group: str, partitions: int) -> dict[int, int]:
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in probe.committed([TopicPartition(topic, p) for p in range(partitions)],
                                                                   timeout=10)}
    finally:
        probe.close()
