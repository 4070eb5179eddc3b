"""Bus adapter benchmarks: records/s published through the port vs the bare client, same run.

1. Kafka (Tansu broker): `KafkaPublisher.publish` in batches of 500 vs a bare confluent-kafka
   producer with the same settings (idempotent, acks=all, linger 5 ms) producing the same records
   and flushing once per 500 - without delivery callbacks (the floor) and with a one-line callback
   (what any producer that records offsets pays; the goal is measured against this one).
2. Kinesis (moto server): `KinesisPublisher.publish` in batches of 500 vs bare boto3 `put_records`
   calls of 500 records.
Medians of 3, adapter and baseline runs interleaved. Size: FP_BENCH_BUS_EVENTS (default 20000). Goal: adapter >= 0.7x the bare client.
`main(smoke=True)` (`python -m benchmarks --smoke`) publishes a few records once: it proves the
benchmark still runs, not how fast.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
from confluent_kafka import Producer

from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_moto, start_tansu
from runtime.bus.kafka import KafkaAdmin, KafkaPublisher
from runtime.bus.kinesis import KinesisAdmin, KinesisPublisher, kinesis_client
from runtime.bus.port import EbRef, OutboundRecord

REPS = 3
BATCH = 500
RUN = "platform_20260101T000000Z"
#: Records of a smoke run (one repetition).
SMOKE_EVENTS = 20


def _records(topic: str, count: int) -> list[OutboundRecord]:
    return [
        OutboundRecord(topic, f"evt-{i:08d}", json.dumps({"platform_run_id": RUN, "event_id": f"{i:032x}", "amount": i * 1.5,
                                                          "pad": "x" * 200}).encode())
        for i in range(count)
    ]


def _median_rates(count: int, adapter: Callable[[], None], baseline: Callable[[], None]) -> tuple[float, float]:
    """Median records/s of each, runs interleaved so topic growth and warm-up hit both alike."""
    rates: dict[str, list[float]] = {"adapter": [], "baseline": []}
    for _ in range(1 if count <= SMOKE_EVENTS else REPS):
        for name, run in (("adapter", adapter), ("baseline", baseline)):
            start = time.perf_counter()
            run()
            rates[name].append(count / (time.perf_counter() - start))
    return statistics.median(rates["adapter"]), statistics.median(rates["baseline"])


def bench_kafka(work: Path, count: int) -> tuple[float, float, float]:
    """(adapter, bare producer, bare producer with delivery callbacks) records/s on a private Tansu broker."""
    proc = start_tansu("127.0.0.1", free_port(), work / "tansu")
    bootstrap = f"127.0.0.1:{proc.port}"
    try:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        KafkaAdmin(bootstrap).ensure_topic(topic, 2, 24)
        records = _records(topic, count)
        publisher = KafkaPublisher(bootstrap)

        def adapter() -> None:
            for i in range(0, count, BATCH):
                results = publisher.publish(records[i:i + BATCH])
                assert all(isinstance(r, EbRef) for r in results)

        bare = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})

        def baseline() -> None:
            for i in range(0, count, BATCH):
                for record in records[i:i + BATCH]:
                    bare.produce(record.topic, value=record.value, key=record.key.encode())
                bare.flush(30)

        offsets: list[int] = []

        def baseline_with_reports() -> None:
            for i in range(0, count, BATCH):
                for record in records[i:i + BATCH]:
                    bare.produce(record.topic, value=record.value, key=record.key.encode(),
                                 on_delivery=lambda err, msg: offsets.append(int(msg.offset() or 0)))
                bare.flush(30)

        adapter_rate, bare_rate = _median_rates(count, adapter, baseline)
        _, reports_rate = _median_rates(count, adapter, baseline_with_reports)
        publisher.close()
        return adapter_rate, bare_rate, reports_rate
    finally:
        stop_pid(proc.pid, proc.argv)


def bench_kinesis(work: Path, count: int) -> tuple[float, float]:
    """(adapter records/s, bare put_records records/s) on a private moto server."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    proc = start_moto("127.0.0.1", free_port(), work / "moto")
    endpoint = f"http://127.0.0.1:{proc.port}"
    try:
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        client = kinesis_client(endpoint, "us-east-1")
        KinesisAdmin(client).ensure_topic(stream, 2, 24)
        records = _records(stream, count)
        publisher = KinesisPublisher(client)
        bare = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")

        def adapter() -> None:
            results = publisher.publish(records)
            assert all(isinstance(r, EbRef) for r in results)

        def baseline() -> None:
            for i in range(0, count, BATCH):
                response = bare.put_records(StreamName=stream, Records=[{"Data": r.value, "PartitionKey": r.key}
                                                                        for r in records[i:i + BATCH]])
                assert response["FailedRecordCount"] == 0

        return _median_rates(count, adapter, baseline)
    finally:
        stop_pid(proc.pid, proc.argv)


def main(smoke: bool = False) -> int:
    """Run both benchmarks and print figure, baseline and ratio (smoke: a few records, once)."""
    count = SMOKE_EVENTS if smoke else int(os.environ.get("FP_BENCH_BUS_EVENTS", "20000"))
    with tempfile.TemporaryDirectory(prefix="fp-bench-bus-") as tmp:
        work = Path(tmp)
        kafka_adapter, kafka_bare, kafka_reports = bench_kafka(work, count)
        print(f"bus kafka publish ({count} records, batches of {BATCH}, median of {REPS}): "
              f"adapter {kafka_adapter:,.0f} rec/s; bare confluent-kafka {kafka_bare:,.0f} rec/s "
              f"(ratio {kafka_adapter / kafka_bare:.2f}); bare with delivery callbacks {kafka_reports:,.0f} rec/s "
              f"(ratio {kafka_adapter / kafka_reports:.2f}, goal >= 0.7)")
        kinesis_adapter, kinesis_bare = bench_kinesis(work, count)
        print(f"bus kinesis publish ({count} records, batches of {BATCH}, median of {REPS}): "
              f"adapter {kinesis_adapter:,.0f} rec/s, bare boto3 put_records {kinesis_bare:,.0f} rec/s, "
              f"ratio {kinesis_adapter / kinesis_bare:.2f} (goal >= 0.7)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
