"""RTDL core workers: records/s each stream worker processes, next to the raw consume rate of the
same topics measured in the same run (issue 12: goal >= 0.8x).

A synthetic-engine run (fraud mode) is published to the registry's topics on a private Tansu
broker; PostgreSQL (runtime role, migrated) and the moto server (S3 for the archive) are private
too. For each worker (archive_writer and whichever of ieg/ofp/csfb the repository builds), the
baseline is a bare confluent-kafka consumer reading every record of THAT worker's topics once
(median of 3, measured just before the worker); then the worker drains the same topics through
the one stream-worker loop (poll, handler, one transaction, outbox, commit) with the deployed
`WorkerConfig`. Both clocks start at the first record delivered (a new consumer group's join is
neither's cost) and stop at the last one finished. Size: FP_BENCH_RTDL_SCALE (engine scale,
default 20000: about 108k records; 14000 gives 76k). `main(smoke=True)` runs a tiny engine run once.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from benchmarks.servers import servers
from runtime.bus.factory import consumer as bus_consumer
from runtime.bus.factory import publisher as bus_publisher
from runtime.bus.kafka import consumer_config
from runtime.bus.port import BusRecord, OutboundRecord, RunScopedConsumer
from runtime.bus.scope import ScopeCounts
from runtime.components import consumer_group_id
from runtime.contracts.registry import load_registry
from runtime.db.postgres import Database
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore

#: component -> its package under runtime/rtdl/
COMPONENTS = {"archive_writer": "archive", "ieg": "ieg", "ofp": "ofp", "csfb": "csfb"}
RUN = "platform_20260105T000000Z"
REPS = 3


def _publish(settings: Any, registry: Any, scale: int) -> dict[str, int]:
    """Publish an engine run to the event-class topics; records per topic."""
    from tests.runtime.rtdl.envelopes import engine_run

    topic_of = {cls: registry.topic(spec["topic"]).name for cls, spec in registry.mapping("EVENT_CLASS_MAP").items()}
    records = [OutboundRecord(topic_of[cls], env["event_id"], json.dumps(env, sort_keys=True).encode())
               for cls, env in engine_run(scale)]
    pub = bus_publisher(settings)
    for i in range(0, len(records), 500):
        results = pub.publish(records[i:i + 500])
        bad = [r for r in results if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"publish failed: {bad[0]}")
    pub.close()
    counts: dict[str, int] = {}
    for r in records:
        counts[r.topic] = counts.get(r.topic, 0) + 1
    return counts


#: Session timeout of the baseline consumers (a quick group join on Tansu; they never stall).
BASELINE_GROUP_TIMEOUTS = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 1000}


def _raw_consume_rate(bootstrap: str, topics: list[str], expected: int) -> float:
    """Records/s of a bare confluent-kafka consumer reading `expected` records of `topics` once."""
    # The workers' own consumer settings (prefetch, fetch wait): the baseline differs from a worker
    # only in what it does with a record. Tansu holds a JoinGroup for half the session timeout (24 s
    # at librdkafka's default 45 s), and the rate is timed from the first record anyway.
    consumer = Consumer(consumer_config(bootstrap, f"bench-raw-{uuid.uuid4().hex[:8]}", BASELINE_GROUP_TIMEOUTS))
    consumer.subscribe(topics)
    seen, start, deadline = 0, None, time.monotonic() + 300
    while seen < expected and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=500, timeout=1.0):
            if message.error() is None:
                start = start or time.perf_counter()
                seen += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return seen / elapsed if elapsed > 0 else 0.0


class _FirstDelivery(RunScopedConsumer):
    """The worker's consumer, noting when the first records were delivered (the worker's clock
    starts there, as the raw consumer's starts at its first message)."""

    def __init__(self, inner: RunScopedConsumer):
        self.inner = inner
        self.first: float | None = None

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        """The inner poll; the first non-empty one starts the clock."""
        out = self.inner.poll(max_records, timeout_s)
        if out and self.first is None:
            self.first = time.perf_counter()
        return out

    def commit(self, records: list[BusRecord]) -> None:
        """The inner commit."""
        self.inner.commit(records)

    def close(self) -> None:
        """The inner close."""
        self.inner.close()

    @property
    def counts(self) -> ScopeCounts:
        """The inner run-scope counts."""
        return self.inner.counts


def _worker_rate(settings: Any, db: Database, component: str, expected: int) -> tuple[float, int]:
    """Records/s one worker finishes while draining its topics: from its first delivered record to
    the last one made durable and committed."""
    handler = importlib.import_module(f"runtime.rtdl.{COMPONENTS[component]}.handler").build(settings, RUN)
    group = consumer_group_id(settings.registry, component, RUN)
    consumer = _FirstDelivery(bus_consumer(settings, handler.input_topics(), group, RUN))
    worker = StreamWorker(handler, consumer, bus_publisher(settings), db.transaction, WorkerStore(group, component, RUN),
                          config=WorkerConfig())
    deadline = time.monotonic() + 900
    done = 0
    end = time.perf_counter()
    while done < expected and time.monotonic() < deadline:
        if worker.step():
            end = time.perf_counter()
        done = worker.counters.applied + worker.counters.dead_lettered
    elapsed = end - (consumer.first or end)
    worker.run(threading.Event(), idle_exit_after=1)
    consumer.close()
    return (done / elapsed if elapsed > 0 else 0.0), worker.counters.dead_lettered


def main(smoke: bool = False) -> int:
    """Start private servers, publish, measure the baseline and every worker; print the figures."""
    scale = 60 if smoke else int(os.environ.get("FP_BENCH_RTDL_SCALE", "20000"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    registry = load_registry("local_parity")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with servers(work) as srv:
            settings, dsn, bootstrap = srv.settings, srv.dsn, srv.bootstrap
            per_topic = _publish(settings, registry, scale)
            total = sum(per_topic.values())
            topics = sorted(per_topic)
            print(f"rtdl: {total} records of one engine run on {len(topics)} topics; per worker: records/s, and the raw "
                  f"consume rate of the same topics (bare confluent-kafka, median of {1 if smoke else REPS}) measured just before")
            with Database(dsn, name="bench", max_size=4) as db:
                for component in COMPONENTS:
                    try:
                        module = importlib.import_module(f"runtime.rtdl.{COMPONENTS[component]}.handler")
                    except ImportError:
                        print(f"  {component:<15} not built")
                        continue
                    if not hasattr(module, "build"):
                        print(f"  {component:<15} has no build(); not measured")
                        continue
                    mine_topics = [t for t in module.build(settings, RUN).input_topics() if per_topic.get(t)]
                    mine = sum(per_topic[t] for t in mine_topics)
                    raw_rate = statistics.median(_raw_consume_rate(bootstrap, mine_topics, mine)
                                                 for _ in range(1 if smoke else REPS))
                    rate, dead = _worker_rate(settings, db, component, mine)
                    ratio = rate / raw_rate if raw_rate else 0.0
                    print(f"  {component:<15} {mine:>8} records  worker {rate:>9,.0f} records/s  raw {raw_rate:>9,.0f} records/s"
                          f"  {ratio:5.2f}x ({'goal met' if ratio >= 0.8 else 'goal MISSED'}: >= 0.8x; dead letters {dead})",
                          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
