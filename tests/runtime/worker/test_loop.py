"""The stream worker's own contract run, with a handler that records each event and echoes it."""

from __future__ import annotations

import gc
import json
import threading
import time
from dataclasses import replace
from typing import Any

from runtime.bus.port import BusAdmin, BusRecord, PartitionRange, RunScopedConsumer
from runtime.errors import BusUnavailable
from runtime.garbage import BatchCollection
from runtime.worker.handler import StreamHandler
from runtime.worker.memory import FreedMemory
from runtime.worker.records import InputRecord, OutputRecord, RecordRejected
from runtime.worker.store import WorkerStore
from tests.runtime.worker.contract import (
    MemoryHealth,
    StreamHandlerContract,
    WorkerEnv,
    WrappedConsumer,
    envelope,
)

IN_TOPIC = "contract.in"
OUT_TOPIC = "contract.out"


class EchoHandler(StreamHandler):
    """Remembers every event id it applies (idempotent) and publishes an echo of it."""

    component = "echo"

    def __init__(self, platform_run_id: str):
        self.platform_run_id = platform_run_id

    def input_topics(self) -> list[str]:
        return [IN_TOPIC]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        out = []
        for record in records:
            if record.payload.get("poison"):
                raise RecordRejected(f"event {record.event_id} is poison")
            conn.execute("INSERT INTO worker_echo_effects (platform_run_id, event_id, applied) VALUES (%s, %s, 1)"
                         " ON CONFLICT (platform_run_id, event_id) DO NOTHING", (self.platform_run_id, record.event_id))
            out.append(OutputRecord(f"echo:{record.event_id}", OUT_TOPIC, record.event_id,
                                    json.dumps({"platform_run_id": self.platform_run_id, "echo": record.event_id}).encode()))
        return out


class HangingCommit(WrappedConsumer):
    """A consumer whose commits hang until released (a frozen broker answers nothing)."""

    def __init__(self, inner: RunScopedConsumer, release: threading.Event):
        super().__init__(inner)
        self.release = release

    def commit(self, records: list[BusRecord]) -> None:
        self.release.wait(30)
        self.inner.commit(records)


class MembershipLost(WrappedConsumer):
    """A consumer whose group membership expired: commits fail until it has polled again (rejoined)."""

    def __init__(self, inner: RunScopedConsumer):
        super().__init__(inner)
        self.lost, self.failed_commits = True, 0

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        if self.failed_commits:
            self.lost = False  # polling serves the rejoin
        return self.inner.poll(max_records, timeout_s)

    def commit(self, records: list[BusRecord]) -> None:
        if self.lost:
            self.failed_commits += 1
            raise BusUnavailable("offset commit failed: Broker: Unknown member")
        self.inner.commit(records)


class KnowsItsEnds(WrappedConsumer):
    """A consumer that says where its input topic ends (as a Kafka consumer does from its fetches)."""

    def __init__(self, inner: RunScopedConsumer, ends: list[PartitionRange]):
        super().__init__(inner)
        self.ends = ends

    def known_ranges(self, topic: str) -> list[PartitionRange] | None:
        return self.ends if topic == IN_TOPIC else None


class BusDown(BusAdmin):
    """An admin whose broker does not answer."""

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        raise BusUnavailable("the broker did not answer")

    def partitions(self, name: str) -> int | None:
        raise BusUnavailable("the broker did not answer")

    def ranges(self, name: str) -> list[PartitionRange]:
        raise BusUnavailable("the broker did not answer")


class TestEchoHandlerContract(StreamHandlerContract):
    """The worker loop proven with the simplest handler there is."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        with env.db.transaction() as conn:
            conn.execute("SELECT 1 FROM worker_echo_effects LIMIT 1")
        return EchoHandler(env.platform_run_id)

    def output_topics(self, env: WorkerEnv) -> list[str]:
        return [OUT_TOPIC]

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return [(IN_TOPIC, f"k{i % 5}", envelope(env.platform_run_id, "echo", f"e{i:03d}", {"n": i})) for i in range(40)]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        return (IN_TOPIC, "k1", envelope(env.platform_run_id, "echo", "poison", {"poison": True}))

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            rows = conn.execute("SELECT event_id, applied FROM worker_echo_effects WHERE platform_run_id = %s ORDER BY 1",
                                (env.platform_run_id,)).fetchall()
        return [tuple(r) for r in rows]

    def test_every_echo_reaches_the_output_topic_once(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        echoes = [json.loads(r.value)["echo"] for r in env.broker.records(OUT_TOPIC)]
        assert sorted(echoes) == sorted(e["event_id"] for _, _, e in self.inputs(env))

    def test_freed_memory_is_given_back_after_finished_batches_and_never_while_idle(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))  # 40 records, batches of 7
        worker = self.worker(env)
        ticks = iter(range(0, 10_000, 10))  # every release finds its interval passed
        calls: list[int] = []
        worker.memory = FreedMemory(clock=lambda: float(next(ticks)), trim=lambda pad: calls.append(pad) or 1)
        worker.give_back_memory()
        assert calls == []  # nothing finished yet
        while worker.counters.applied < 40:
            worker.step()
            worker.give_back_memory()  # what the health thread does on each tick
        assert len(calls) == worker.counters.batches >= 6
        for _ in range(3):
            assert worker.step() == 0
            worker.give_back_memory()
        assert len(calls) == worker.counters.batches
        worker.consumer.close()

    def test_the_cycle_collector_runs_after_each_finished_batch_and_is_put_back_when_the_loop_ends(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))  # 40 records, batches of 7
        worker = self.worker(env)
        worker.collection = BatchCollection(full_interval_s=3600.0)
        enabled_inside: list[bool] = []
        apply = worker.handler.apply

        def watching(conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
            enabled_inside.append(gc.isenabled())
            return apply(conn, records)

        worker.handler.apply = watching  # type: ignore[method-assign]
        assert gc.isenabled()
        worker.run(threading.Event(), idle_exit_after=3)
        worker.consumer.close()
        assert worker.counters.applied == 40
        assert worker.collection.young == worker.counters.batches >= 6  # one young collection per finished batch
        assert enabled_inside and not any(enabled_inside)  # no automatic collection inside a batch
        assert gc.isenabled() and gc.get_freeze_count() == 0

    def test_the_health_thread_gives_freed_memory_back_while_the_loop_runs(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        worker = self.worker(env)
        calls: list[int] = []
        worker.memory = FreedMemory(interval_s=0.0, trim=lambda pad: calls.append(pad) or 1)
        stop = threading.Event()
        runner = threading.Thread(target=worker.run, args=(stop,))
        runner.start()
        deadline = time.monotonic() + 10
        while (worker.counters.applied < 40 or not calls) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        runner.join(10)
        worker.consumer.close()
        assert worker.counters.applied == 40 and calls

    def test_health_takes_the_ends_its_consumer_knows_and_asks_the_bus_only_when_it_does_not(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))  # 40 records over 2 partitions
        told = [PartitionRange(IN_TOPIC, p, 0, 99) for p in range(self.partitions)]
        for consumer, ends in ((KnowsItsEnds(env.broker.consumer([IN_TOPIC], env.group, env.platform_run_id), told), {99}),
                               (env.broker.consumer([IN_TOPIC], f"{env.group}-2", env.platform_run_id), None)):
            health = MemoryHealth()
            worker = self.worker(env, consumer=consumer, health=health)
            worker.step()
            worker.flush_health(force=True)
            rows = health.documents[-1]["lag"]
            assert len(rows) == self.partitions
            if ends is not None:
                assert {row["end_offset"] for row in rows} == ends
            else:  # the bus's own ends: every record published
                assert sum(int(row["end_offset"]) + 1 for row in rows) == len(self.inputs(env))
            worker.consumer.close()

    def test_a_worker_that_knows_its_ends_still_notices_the_bus_down_in_its_health_read(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        told = [PartitionRange(IN_TOPIC, p, 0, 99) for p in range(self.partitions)]
        health = MemoryHealth()
        worker = self.worker(env, consumer=KnowsItsEnds(env.broker.consumer([IN_TOPIC], env.group, env.platform_run_id), told),
                             health=health)
        worker.step()
        worker.admin = BusDown()
        worker.flush_health(force=True)
        bus = health.documents[-1]["dependencies"]["bus"]
        assert (bus["state"], bus["outages"]) == ("DOWN", 1)
        worker.consumer.close()

    def test_the_error_kept_for_health_does_not_keep_the_failed_batch_alive(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        worker = self.worker(env, consumer=MembershipLost(env.broker.consumer([IN_TOPIC], env.group, env.platform_run_id)))
        worker.step()  # the batch is durable, its commit fails: a transient error kept for health
        error = worker.last_error
        assert error is not None and error.code == "BUS_UNAVAILABLE"
        assert error.__traceback__ is None  # its frames held the batch's locals
        worker.consumer.close()

    def test_a_commit_that_hangs_turns_health_red_naming_the_bus_until_it_returns(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        release = threading.Event()
        handler = self.make_handler(env)
        health = MemoryHealth()
        worker = self.worker(env, consumer=HangingCommit(env.broker.consumer(handler.input_topics(), env.group,
                                                                             env.platform_run_id), release), health=health)
        worker.config = replace(worker.config, bus_stall_s=0.3)
        runner = threading.Thread(target=worker.run, args=(threading.Event(),), kwargs={"idle_exit_after": 2})
        runner.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(d["health_state"] == "RED" for d in health.documents):
            time.sleep(0.05)
        release.set()
        runner.join(30)
        red = [d for d in health.documents if d["health_state"] == "RED"]
        assert red and red[0]["dependencies"]["bus"]["state"] == "DOWN"
        assert red[0]["reasons"][0].startswith("BUS_UNAVAILABLE") and "offset commit has not returned" in red[0]["reasons"][0]
        final = health.documents[-1]
        assert final["health_state"] == "GREEN"
        assert (final["dependencies"]["bus"]["state"], final["dependencies"]["bus"]["outages"]) == ("UP", 1)
        assert final["counters"]["bus_unavailable_ms"] > 0
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert self.committed_everything(env, worker.handler)

    def test_a_failed_commit_is_retried_after_polling_again_without_applying_the_batch_twice(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        handler = self.make_handler(env)
        consumer = MembershipLost(env.broker.consumer(handler.input_topics(), env.group, env.platform_run_id))
        health = MemoryHealth()
        worker = self.worker(env, consumer=consumer, health=health)
        worker.run(threading.Event(), idle_exit_after=2)
        assert consumer.failed_commits == 1
        assert worker.counters.redelivered_skipped == 0  # the durable batch was not run through the transaction again
        assert worker.counters.applied == self.applied_for(env, self.inputs(env))
        assert health.documents[-1]["health_state"] == "GREEN" and health.documents[-1]["counters"]["bus_unavailable"] == 1
        assert self.committed_everything(env, worker.handler)

    def tally(self, env: WorkerEnv) -> tuple[int, int] | None:
        with env.db.transaction() as conn:
            row = conn.execute("SELECT processed, dead_lettered FROM worker_tallies WHERE consumer_group = %s"
                               " AND platform_run_id = %s", (env.group, env.platform_run_id)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def test_the_run_tally_counts_each_record_once_across_a_crash_and_a_dead_letter(self, env: WorkerEnv) -> None:
        good = self.inputs(env)
        self.publish(env, [*good[:5], self.poison(env), *good[5:]])
        after_crash = self.crash_after_write_then_drain(env)
        assert after_crash.counters.redelivered_skipped > 0  # redelivered records are not counted again
        assert self.tally(env) == (len(good), 1)

    def test_a_batch_without_outputs_skips_the_outbox_once_a_sweep_left_it_drained(self, env: WorkerEnv) -> None:
        self.publish(env, [*self.inputs(env)[:7], self.poison(env), *self.inputs(env)[7:21]])
        worker = self.worker(env, batch_size=7)
        reads: list[int] = []
        pending_outputs = worker.store.pending_outputs

        def counted(conn: Any, limit: int) -> Any:
            reads.append(limit)
            return pending_outputs(conn, limit)

        worker.store.pending_outputs = counted  # type: ignore[method-assign]
        assert worker.step() == 7 and len(reads) == 1  # outputs added: swept
        assert worker.step() == 7 and len(reads) == 2  # the poison (no output) and six echoes: swept
        worker.handler = Silent(worker.handler)
        assert worker.step() == 7 and len(reads) == 2  # nothing added, the outbox was drained: no read
        assert worker.counters.outputs_added == 13 and worker.counters.published == 13

    def test_the_first_batch_sweeps_what_a_predecessor_left_even_without_outputs_of_its_own(self, env: WorkerEnv) -> None:
        with env.db.transaction() as conn:
            WorkerStore(env.group, "echo", env.platform_run_id).add_outputs(conn, [OutputRecord(
                "echo:left", OUT_TOPIC, "left", json.dumps({"platform_run_id": env.platform_run_id, "echo": "left"}).encode())])
        self.publish(env, self.inputs(env)[:7])
        worker = self.worker(env, handler=Silent(self.make_handler(env)), batch_size=7)
        assert worker.step() == 7
        assert [json.loads(r.value)["echo"] for r in env.broker.records(OUT_TOPIC)] == ["left"]


class Silent(StreamHandler):
    """The echo handler's effects without its outputs (a store that never publishes)."""

    component = "echo"

    def __init__(self, inner: StreamHandler):
        self.inner = inner

    def input_topics(self) -> list[str]:
        return self.inner.input_topics()

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        self.inner.apply(conn, records)
        return []
