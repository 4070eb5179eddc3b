"""The stream-handler contract suite: what every consumer of the platform must survive.

Subclass `StreamHandlerContract` once per handler (it runs on the in-memory bus and the real
PostgreSQL of the session): redelivery after a crash, a crash inside the transaction, the database
and the bus going away, poison and unreadable records, other runs' records, and a clean stop.
Each subclass says how to build its handler, which events to feed it and how to read its state.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import BusRecord, OutboundRecord, PartitionRange, RunScopedConsumer
from runtime.bus.scope import ScopeCounts
from runtime.db.postgres import Database
from runtime.errors import DatabaseUnavailable
from runtime.worker.handler import StreamHandler
from runtime.worker.health import HealthWriter
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.records import InputRecord, OutputRecord
from runtime.worker.store import WorkerStore
from tests.support.events import random_run_id


class Crash(BaseException):
    """A process dying at a chosen point (not an Exception: nothing may catch it on the way)."""


@dataclass
class WorkerEnv:
    """One test's bus, database, run and the worker-building knobs."""

    broker: MemoryBroker
    db: Database
    platform_run_id: str
    group: str
    down: dict[str, bool] = field(default_factory=lambda: {"db": False})

    def transaction(self) -> AbstractContextManager[Any]:
        """The database transaction, or DatabaseUnavailable while the test holds it down."""
        if self.down["db"]:
            raise DatabaseUnavailable("the test took the database away")
        return self.db.transaction()


class WrappedConsumer(RunScopedConsumer):
    """A consumer that passes everything to `inner`; subclasses change one call to inject a fault."""

    def __init__(self, inner: RunScopedConsumer):
        self.inner = inner

    @property
    def counts(self) -> ScopeCounts:
        return self.inner.counts

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        return self.inner.poll(max_records, timeout_s)

    def commit(self, records: list[BusRecord]) -> None:
        self.inner.commit(records)

    def close(self) -> None:
        self.inner.close()

    def known_ranges(self, topic: str) -> list[PartitionRange] | None:
        return self.inner.known_ranges(topic)


class CrashOnCommit(WrappedConsumer):
    """A consumer that dies the first time it is asked to commit (after the durable write)."""

    def commit(self, records: list[BusRecord]) -> None:
        raise Crash("killed after the transaction committed, before the offsets")


class CrashInside(StreamHandler):
    """Wraps a handler and dies inside the worker's transaction, after the handler wrote."""

    def __init__(self, inner: StreamHandler):
        self.inner = inner
        self.component = inner.component

    def input_topics(self) -> list[str]:
        return self.inner.input_topics()

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        self.inner.apply(conn, records)
        raise Crash("killed inside the transaction")


class MemoryHealth(HealthWriter):
    """Keeps every health document written (in memory)."""

    def __init__(self) -> None:
        super().__init__([], interval_s=0.0)
        self.documents: list[dict[str, Any]] = []

    def write(self, document: dict[str, Any]) -> None:
        super().write(document)
        self.documents.append(document)


def envelope(run_id: str, event_class: str, event_id: str, payload: dict[str, Any], ts: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    """A canonical envelope for contract inputs."""
    return {"event_id": event_id, "event_class": event_class, "event_type": event_class, "schema_version": "v1",
            "platform_run_id": run_id, "scenario_run_id": "0" * 32, "ts_utc": ts, "producer": "contract", "payload": payload}


class StreamHandlerContract(ABC):
    """The suite; subclasses fill in the four hooks below."""

    partitions = 2

    @abstractmethod
    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        """A fresh handler for the env's run (a new process would build a new one)."""

    @abstractmethod
    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        """(topic, key, envelope) of a stream of good records, at least 30."""

    @abstractmethod
    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        """(topic, key, envelope) of a record of the run that the handler must refuse."""

    @abstractmethod
    def state(self, env: WorkerEnv) -> Any:
        """The handler's durable state for the run, comparable with ==."""

    # -- fixtures and helpers -------------------------------------------------------------------

    @pytest.fixture
    def env(self, runtime_dsn: str, unique_name: str) -> Iterator[WorkerEnv]:
        broker = MemoryBroker()
        db = Database(runtime_dsn, name="contract", max_size=4)
        environment = WorkerEnv(broker, db, random_run_id(), f"fp-contract-{unique_name}")
        admin = broker.admin()
        for topic in self.topics(environment):
            admin.ensure_topic(topic, self.partitions, 24)
        yield environment
        db.close()

    def topics(self, env: WorkerEnv) -> list[str]:
        handler = self.make_handler(env)
        return sorted(set(handler.input_topics()) | set(self.output_topics(env)))

    def output_topics(self, env: WorkerEnv) -> list[str]:
        """Topics the handler publishes to (created for the test)."""
        return []

    def publish(self, env: WorkerEnv, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        results = env.broker.publisher().publish(
            [OutboundRecord(topic, key, json.dumps(doc, sort_keys=True).encode()) for topic, key, doc in items])
        assert all(not isinstance(r, Exception) for r in results), results

    def worker(self, env: WorkerEnv, *, handler: StreamHandler | None = None, consumer: RunScopedConsumer | None = None,
               health: HealthWriter | None = None, batch_size: int = 7) -> StreamWorker:
        handler = handler or self.make_handler(env)
        consumer = consumer or env.broker.consumer(handler.input_topics(), env.group, env.platform_run_id)
        store = WorkerStore(env.group, handler.component, env.platform_run_id)
        return StreamWorker(handler, consumer, env.broker.publisher(), env.transaction, store, admin=env.broker.admin(),
                            health=health, health_base=lambda: base_fields(env),
                            config=WorkerConfig(batch_size=batch_size, poll_timeout_s=0.01, backoff_initial_s=0.0),
                            sleep=lambda s: None)

    def drain(self, env: WorkerEnv, **kw: Any) -> StreamWorker:
        worker = self.worker(env, **kw)
        worker.run(threading.Event(), idle_exit_after=2)
        worker.consumer.close()
        return worker

    def committed_everything(self, env: WorkerEnv, handler: StreamHandler) -> bool:
        for topic in handler.input_topics():
            ends = {int(r.partition): int(r.end_offset) + 1 for r in env.broker.admin().ranges(topic) if r.end_offset is not None}
            if env.broker.committed(env.group, topic) != ends:
                return False
        return True

    # -- the contract ---------------------------------------------------------------------------

    def test_every_record_is_applied_and_offsets_commit_to_the_end(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        worker = self.drain(env)
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert worker.counters.dead_lettered == 0
        assert self.committed_everything(env, worker.handler)

    def crash_after_write_then_drain(self, env: WorkerEnv) -> StreamWorker:
        """A worker that dies after its batch's transaction committed (before the offset commit),
        then a fresh worker that drains what is redelivered."""
        handler = self.make_handler(env)
        crashing = CrashOnCommit(env.broker.consumer(handler.input_topics(), env.group, env.platform_run_id))
        with pytest.raises(Crash):
            self.worker(env, consumer=crashing).run(threading.Event(), idle_exit_after=2)
        crashing.close()
        return self.drain(env)

    def test_a_crash_after_the_write_redelivers_without_a_second_effect(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        after_crash = self.crash_after_write_then_drain(env)
        assert after_crash.counters.redelivered_skipped > 0
        state = self.state(env)
        replay = self.drain(env)  # nothing left to read: a third pass changes nothing
        assert replay.counters.applied == 0
        assert self.state(env) == state
        assert self.committed_everything(env, after_crash.handler)

    def test_a_crash_inside_the_transaction_leaves_nothing_half_written(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        crashed = self.worker(env, handler=CrashInside(self.make_handler(env)))
        with pytest.raises(Crash):
            crashed.run(threading.Event(), idle_exit_after=2)
        crashed.consumer.close()  # the process is gone: its group membership with it
        assert self.state(env) == self.empty_state(env)
        worker = self.drain(env)
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert self.committed_everything(env, worker.handler)

    def test_database_down_backs_off_red_without_commit_then_recovers(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        health = MemoryHealth()
        worker = self.worker(env, health=health)
        env.down["db"] = True
        for _ in range(3):
            assert worker.step() == 0
        assert health.documents[-1]["health_state"] == "RED"
        assert "DB_UNAVAILABLE" in health.documents[-1]["reasons"][0]
        assert all(not env.broker.committed(env.group, t) for t in worker.handler.input_topics())
        assert health.documents[-1]["dependencies"]["db"]["state"] == "DOWN"
        env.down["db"] = False
        worker.run(threading.Event(), idle_exit_after=2)
        final = health.documents[-1]
        assert final["health_state"] == "GREEN" and final["reasons"] == []
        assert final["dependencies"]["db"]["state"] == "UP" and final["dependencies"]["db"]["outages"] == 1
        assert final["counters"]["db_unavailable"] == 1 and final["counters"]["bus_unavailable"] == 0
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert self.committed_everything(env, worker.handler)

    def test_bus_down_backs_off_then_recovers(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        health = MemoryHealth()
        worker = self.worker(env, health=health)
        env.broker.make_unavailable()
        assert worker.step() == 0
        assert health.documents[-1]["health_state"] == "RED"
        assert "BUS_UNAVAILABLE" in health.documents[-1]["reasons"][0]
        assert health.documents[-1]["dependencies"]["bus"]["state"] == "DOWN"
        env.broker.make_available()
        worker.run(threading.Event(), idle_exit_after=2)
        final = health.documents[-1]
        assert final["health_state"] == "GREEN" and final["dependencies"]["bus"]["outages"] == 1
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert self.committed_everything(env, worker.handler)

    def test_a_poison_record_is_dead_lettered_and_the_partition_moves_on(self, env: WorkerEnv) -> None:
        good = self.inputs(env)
        self.publish(env, [*good[:5], self.poison(env), *good[5:]])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        assert worker.counters.applied == self.applied_for(env, good)
        assert self.committed_everything(env, worker.handler)
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code, eb_ref FROM worker_dead_letters WHERE consumer_group = %s",
                               (env.group,)).fetchone()
        assert row is not None and row[0] and row[1]["topic"]

    def test_a_record_without_an_envelope_is_dead_lettered_as_unreadable(self, env: WorkerEnv) -> None:
        topic = self.make_handler(env).input_topics()[0]
        broken = json.dumps({"platform_run_id": env.platform_run_id, "event_id": "x"}).encode()
        env.broker.publisher().publish([OutboundRecord(topic, "k", broken)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        with env.db.transaction() as conn:
            code = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert code == ("RECORD_UNREADABLE",)

    def test_a_truncated_record_is_counted_and_committed_past(self, env: WorkerEnv) -> None:
        topic = self.make_handler(env).input_topics()[0]
        env.broker.publisher().publish([OutboundRecord(topic, "k", b'{"platform_run_id": "platf')])
        worker = self.drain(env)
        assert worker.consumer.counts.skipped_unscoped == 1
        assert self.committed_everything(env, worker.handler)

    def test_records_of_another_run_are_skipped(self, env: WorkerEnv) -> None:
        other = WorkerEnv(env.broker, env.db, random_run_id(), env.group)
        self.publish(env, self.inputs(other))
        worker = self.drain(env)
        assert worker.counters.applied == 0
        assert worker.consumer.counts.skipped_other_run == len(self.inputs(other))
        assert self.state(env) == self.empty_state(env)

    def test_stop_finishes_the_batch_in_hand_and_commits_it(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        worker = self.worker(env, batch_size=1000)
        stop = threading.Event()
        stop.set()  # asked to stop before the first poll: nothing is read, nothing is lost
        worker.run(stop)
        assert worker.counters.polled == 0
        worker.run(threading.Event(), idle_exit_after=2)
        assert self.committed_everything(env, worker.handler)

    # -- helpers the contract uses ---------------------------------------------------------------

    def applied_for(self, env: WorkerEnv, published: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Records the worker applies once `published` is drained: the same number, unless the handler
        reads back what it publishes (AL and DLA share fp.bus.rtdl.v1 with their own outputs)."""
        return len(published)

    def empty_state(self, env: WorkerEnv) -> Any:
        """The state of a run nothing was applied to."""
        fresh = WorkerEnv(env.broker, env.db, random_run_id(), env.group)
        return self.state(fresh)


def base_fields(env: WorkerEnv) -> dict[str, Any]:
    """The common evidence fields of a health document in tests."""
    return {"platform_run_id": env.platform_run_id, "written_at_utc": "2026-01-01T00:00:00Z", "phase_id": "P8",
            "source_handles": ["COMPONENT_HEALTH_PATH_PATTERN"]}
