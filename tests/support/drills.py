"""Shared parts of the kill drills: the offset sampler and the pack killer.

A drill SIGKILLs only its own pack's worker processes (by the pids the pack's state.json names)
while records flow, and samples the whole time that no consumer group ever commits an offset on
the bus ahead of the position it made durable in PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from controller.compute.local_backend import pack_paths, read_pack_state
from runtime.contracts.registry import Registry
from runtime.db.postgres import Database
from runtime.settings import Settings


class OffsetSampler:
    """Samples, for every group and partition of `groups` (group -> its topics), the committed offset on the
    bus and then the durable position in PostgreSQL: committed - 1 must never exceed the position. A
    sample that cannot be taken (PostgreSQL or the broker down in an outage drill) is counted as missed."""

    def __init__(self, settings: Settings, groups: Mapping[str, Sequence[str]]):
        self.settings = settings
        self.groups = {g: sorted(set(t)) for g, t in groups.items()}
        self.violations: list[str] = []
        self.samples = 0
        self.missed = 0
        #: Set once any group made a position durable: records are flowing, the killer may start.
        self.flowing = threading.Event()
        #: Durable positions summed over groups at the last sample (progress while records flow).
        self.durable_total = -1

    def run(self, stop: threading.Event) -> None:
        """Sample every 0.3 s until `stop`."""
        db = Database(str(self.settings.db_dsn), name="drill sampler", max_size=1, acquire_timeout_s=2.0, connect_timeout_s=2)
        try:
            while not stop.is_set():
                try:
                    self._sample(db)
                    self.samples += 1
                except Exception:  # an outage drill takes the database or the broker away on purpose
                    self.missed += 1
                stop.wait(0.3)
        finally:
            db.close()

    def _sample(self, db: Database) -> None:
        total = 0
        for group, topics in self.groups.items():
            committed = self._committed(group, topics)
            with db.connection() as conn:
                rows = conn.execute("SELECT topic, partition, position FROM worker_positions WHERE consumer_group = %s",
                                    (group,)).fetchall()
            durable = {(r[0], int(r[1])): int(r[2]) for r in rows}
            if any(v >= 0 for v in durable.values()):
                self.flowing.set()
            total += sum(v + 1 for v in durable.values())
            for key, offset in committed.items():
                if offset > 0 and offset - 1 > durable.get(key, -1):
                    self.violations.append(f"{group} {key}: committed {offset} but durable {durable.get(key)}")
        self.durable_total = total

    def _committed(self, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": group, "enable.auto.commit": False,
                             "socket.connection.setup.timeout.ms": 2000})
        try:
            md = consumer.list_topics(timeout=3)
            parts = [TopicPartition(t, p) for t in topics for p in md.topics[t].partitions]
            return {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=3) if tp.offset >= 0}
        finally:
            consumer.close()


class Killer:
    """SIGKILLs the pack's own processes of `victims` at random moments (0.2-1.0 s apart), `kills` times each."""

    def __init__(self, root: Path, registry: Registry, pack: str, run_id: str, flowing: threading.Event, *,
                 victims: Sequence[str], kills: int, seed: int = 20261129):
        self.flowing = flowing
        self.paths = pack_paths(root, registry, pack, run_id)
        self.components = list(victims)
        self.target = kills
        self.seed = seed
        self.kills: Counter[str] = Counter()

    def run(self, stop: threading.Event) -> None:
        rng = random.Random(self.seed)
        while not stop.is_set() and not self.flowing.wait(0.2):
            pass
        while not stop.is_set() and not self.done:
            stop.wait(rng.uniform(0.2, 1.0))
            state = read_pack_state(self.paths)
            if not state:
                continue
            alive = [p for p in state["processes"] if p.get("pid") and p["status"] == "RUNNING"
                     and p["name"] in self.components and self.kills[p["name"]] < self.target]
            if alive:
                victim = rng.choice(alive)
                try:
                    os.kill(int(victim["pid"]), signal.SIGKILL)
                    self.kills[victim["name"]] += 1
                except ProcessLookupError:
                    pass

    @property
    def done(self) -> bool:
        """Every victim was killed `kills` times."""
        return min(self.kills[c] for c in self.components) >= self.target


def run_alongside(*targets: object) -> tuple[threading.Event, list[threading.Thread]]:
    """Start each `target.run(stop)` in a thread; returns the stop event and the threads to join."""
    stop = threading.Event()
    threads = [threading.Thread(target=t.run, args=(stop,), daemon=True) for t in targets]  # type: ignore[attr-defined]
    for t in threads:
        t.start()
    return stop, threads


def stop_all(stop: threading.Event, threads: list[threading.Thread]) -> None:
    """Stop and join the drill's threads."""
    stop.set()
    for t in threads:
        t.join()
