"""IG throughput on the embedded substrate (Kafka bus on Tansu, moto S3, PostgreSQL).

Figures, each the median of a few rounds measured in this one run:
- admitted events/s with one event per push, and with batches of 500 (IG in its own uvicorn process);
- baseline: the records IG itself publishes for the same events (topic, key, canonical value with its
  payload hash, from IG's own EventValidator), produced by a bare confluent-kafka producer with the
  publisher's settings (idempotent, acks=all, linger 5 ms) and one flush per batch of 500, like IG
  does per push. The producer is warmed up first (metadata, idempotent producer id, connections)
  so the figure is producing, not the producer's start-up;
- validation cost per event (envelope + payload, compiled validators, canonical JSON + hash);
- IG's CPU per admitted event in batches of 500 (user + system time of the IG process over the
  one-sender batched phase, from /proc): unlike events/s it hardly moves with the machine's load.
- batched pushes go through WSP's own sender (`runtime/wsp/sender.py` IgClient: the same bytes and
  the same parse of the answer as a run);
- concurrent: batches of 500 from SENDERS clients at once, as WSP sends (one sender per output of
  the fraud mode), against the same bare producer driven by SENDERS threads (one flush per batch
  each), both in this run (issue 16 item 3: batched admission >= 10,000 events/s on the Kafka bus).
Goals: batched >= 5,000 events/s, batched >= 5x per-event, validation < 50 us/event, concurrent
batched >= 10,000 events/s.
`main(smoke=True)` (`python -m benchmarks --smoke`) runs one tiny round: it proves the benchmark
still runs, its figures mean nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
from confluent_kafka import Producer

from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_moto, start_postgres, start_tansu
from runtime.db.migrate import apply_migrations
from runtime.ig.domain import EventValidator, Limits
from runtime.paths import REPO_ROOT
from runtime.settings import load_settings
from runtime.wsp.sender import IgClient

ROUNDS = 3
PER_EVENT_N = 300
BATCH = 500
BATCHED_N = 5000
#: Concurrent senders (WSP streams the outputs of the fraud mode at once, one sender each).
SENDERS = 4
#: (rounds, per-event pushes, batched events, batch size, validation events) of a smoke run.
SMOKE = (1, 5, 20, 10, 50)
KEY = "bench-key-0123456789abcdef"
HOST = "127.0.0.1"


def _run_id(i: int) -> str:
    return f"platform_2031010{i}T000000Z"


def _events(run_id: str, start: int, count: int) -> list[dict]:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.events import envelope

    return [envelope(run_id, n) for n in range(start, start + count)]


def _validation_us(run_id: str, count: int) -> float:
    reg = load_settings({"FP_ENV": "local_parity"}).registry
    validator = EventValidator(reg, run_id, Limits.from_registry(reg))
    events = _events(run_id, 0, count)
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for i, e in enumerate(events):
            validator.check(i, e)
        samples.append((time.perf_counter() - t) / len(events) * 1e6)
    return statistics.median(samples)


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds the IG process has used so far (bench_spine's reading of /proc)."""
    from benchmarks.bench_spine import cpu_seconds

    used = cpu_seconds(pid)
    if used is None:
        raise RuntimeError(f"IG (pid {pid}) exited during the benchmark")
    return used


def _wait_health(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/ops/health", headers={"X-IG-Api-Key": KEY}, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("IG did not start")


def _published_records(run_id: str, start: int, count: int) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) exactly as IG publishes these events: its validator makes the bytes."""
    reg = load_settings({"FP_ENV": "local_parity"}).registry
    validator = EventValidator(reg, run_id, Limits.from_registry(reg))
    out = []
    for i, event in enumerate(_events(run_id, start, count)):
        checked = validator.check(i, event)
        assert checked.identity is not None and checked.topic and checked.value, checked
        out.append((checked.topic, checked.identity[2].encode(), checked.value))
    return out


def _bare_producer_rate(bootstrap: str, records: list[tuple[str, bytes, bytes]], batch: int) -> float:
    """Records/s of a bare producer (the publisher's settings), warmed up on the first record, then
    timed on the rest with one flush per batch."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                         "batch.num.messages": 10_000, "compression.type": "none", "log_level": 2})
    for topic, key, value in records[:1]:  # warm-up: metadata, producer id, connections to the leaders
        producer.produce(topic, value=value, key=key)
    if producer.flush(30):
        raise RuntimeError("the bare producer could not deliver its warm-up record")
    timed = records[1:]
    t = time.perf_counter()
    for i in range(0, len(timed), batch):
        for topic, key, value in timed[i:i + batch]:
            producer.produce(topic, value=value, key=key)
        producer.flush(60)
    return len(timed) / (time.perf_counter() - t)


def _concurrent_bare_rate(bootstrap: str, records: list[tuple[str, bytes, bytes]], batch: int, senders: int) -> float:
    """Records/s of one bare producer (the publisher's settings) driven by `senders` threads, each
    producing its share in batches with one flush per batch (as IG's handler threads share one producer)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                         "batch.num.messages": 10_000, "compression.type": "none", "log_level": 2})
    for topic, key, value in records[:1]:
        producer.produce(topic, value=value, key=key)
    if producer.flush(30):
        raise RuntimeError("the bare producer could not deliver its warm-up record")
    timed = records[1:]
    lock = threading.Lock()  # produce() is thread-safe; flush() of one thread may wait on the others' records

    def send(share: list[tuple[str, bytes, bytes]]) -> None:
        for i in range(0, len(share), batch):
            with lock:
                for topic, key, value in share[i:i + batch]:
                    producer.produce(topic, value=value, key=key)
            producer.flush(60)

    t = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, [timed[k::senders] for k in range(senders)]))
    return len(timed) / (time.perf_counter() - t)


def _push_all(url: str, events: list[dict], batch: int) -> None:
    """Push `events` in batches through WSP's own sender (one connection); every one must be admitted."""
    client = IgClient(url, "/v1/ingest/push", "X-IG-Api-Key", KEY, timeout_s=120)
    try:
        for i in range(0, len(events), batch):
            outcomes = {r["outcome"] for r in client.push(events[i:i + batch])}
            assert outcomes == {"ADMIT"}, outcomes
    finally:
        client.close()


def _concurrent_ig_rate(url: str, events: list[dict], batch: int, senders: int) -> float:
    """Admitted events/s with `senders` clients pushing batches at once (each its own connection)."""
    def send(share: list[dict]) -> None:
        _push_all(url, share, batch)

    shares = [events[k::senders] for k in range(senders)]
    t = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, shares))
    return len(events) / (time.perf_counter() - t)


def main(smoke: bool = False) -> int:
    """Start the embedded substrate, measure, print figures and medians, stop what was started."""
    rounds, per_event_n, batched_n, batch, validation_n = SMOKE if smoke else (ROUNDS, PER_EVENT_N, BATCHED_N, BATCH, 5000)
    senders = SENDERS
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    work = Path(tempfile.mkdtemp(prefix="bench-ig-"))
    started = []
    ig_proc = None
    try:
        moto = start_moto(HOST, free_port(), work / "moto")
        started.append(moto)
        pg = start_postgres(HOST, free_port(), work / "pg", durable=False)
        started.append(pg)
        tansu = start_tansu(HOST, free_port(), work / "tansu")
        started.append(tansu)
        endpoint, dsn, bootstrap = f"http://{HOST}:{moto.port}", f"postgresql://postgres@{HOST}:{pg.port}/postgres", f"{HOST}:{tansu.port}"
        apply_migrations(dsn)
        sys.path.insert(0, str(REPO_ROOT))
        from tests.support.kafka_bus import RealKafkaAdmin

        reg = load_settings({"FP_ENV": "local_parity"}).registry
        admin = RealKafkaAdmin(bootstrap)
        for topic in reg.topics():
            admin.ensure_topic(topic.name, topic.partitions, topic.retention_hours)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench-ig")

        per_event, batched, baseline = [], [], []
        concurrent, concurrent_baseline, ig_cpu = [], [], []
        for r in range(rounds):
            run_id = _run_id(r)
            port = free_port()
            env = {**os.environ, "FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": endpoint, "FP_DB_DSN": dsn,
                   "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": bootstrap, "FP_IG_API_KEY": KEY,
                   "REQUIRED_PLATFORM_RUN_ID": run_id, "IG_TEST_BUCKET": "bench-ig", "IG_TEST_PORT": str(port)}
            ig_proc = subprocess.Popen([sys.executable, "-m", "tests.support.ig_server"], cwd=REPO_ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://{HOST}:{port}"
            _wait_health(url)
            with httpx.Client(base_url=url, headers={"X-IG-Api-Key": KEY}, timeout=60) as client:
                client.post("/v1/ingest/push", json=_events(run_id, 10**6, 1)[0])  # warm-up (connections)
                singles = _events(run_id, 0, per_event_n)
                t = time.perf_counter()
                for e in singles:
                    assert client.post("/v1/ingest/push", json=e).json()["counts"] == {"ADMIT": 1}
                per_event.append(per_event_n / (time.perf_counter() - t))
                many = _events(run_id, 10_000, batched_n)
                cpu, t = _process_cpu_s(ig_proc.pid), time.perf_counter()
                _push_all(url, many, batch)
                batched.append(batched_n / (time.perf_counter() - t))
                ig_cpu.append((_process_cpu_s(ig_proc.pid) - cpu) / batched_n * 1e6)
            concurrent.append(_concurrent_ig_rate(url, _events(run_id, 100_000, batched_n * senders), batch, senders))
            ig_proc.terminate()
            ig_proc.wait(10)
            ig_proc = None

            baseline.append(_bare_producer_rate(bootstrap, _published_records(run_id, 50_000, batched_n + 1), batch))
            concurrent_baseline.append(_concurrent_bare_rate(
                bootstrap, _published_records(run_id, 200_000, batched_n * senders + 1), batch, senders))

        validation = _validation_us(_run_id(9), validation_n)
        pe, ba, bl = statistics.median(per_event), statistics.median(batched), statistics.median(baseline)
        print(f"IG per-event pushes : median {pe:8.0f} events/s   rounds {[round(x) for x in per_event]}")
        print(f"IG batches of {batch}  : median {ba:8.0f} events/s   rounds {[round(x) for x in batched]}"
              f"   goal >= 5000: {'met' if ba >= 5000 else 'MISSED'}")
        print(f"batched / per-event : {ba / pe:8.1f}x                goal >= 5x: {'met' if ba / pe >= 5 else 'MISSED'}")
        print(f"baseline bare producer, IG's records, warmed up: median {bl:8.0f} events/s   rounds {[round(x) for x in baseline]}"
              f"   IG batched = {ba / bl:.2f} of baseline")
        co, cb = statistics.median(concurrent), statistics.median(concurrent_baseline)
        print(f"IG batches of {batch}, {senders} senders at once: median {co:8.0f} events/s   rounds {[round(x) for x in concurrent]}"
              f"   goal >= 10000: {'met' if co >= 10_000 else 'MISSED'}")
        print(f"baseline bare producer, {senders} threads, IG's records: median {cb:8.0f} events/s   rounds "
              f"{[round(x) for x in concurrent_baseline]}   IG concurrent = {co / cb:.2f} of baseline")
        print(f"validation per event: median {validation:6.1f} us           goal < 50 us: {'met' if validation < 50 else 'MISSED'}")
        print(f"IG CPU per admitted event (batches of {batch}, one sender): median {statistics.median(ig_cpu):6.1f} us"
              f"   rounds {[round(x) for x in ig_cpu]}")
        return 0
    finally:
        if ig_proc is not None:
            ig_proc.kill()
        for proc in reversed(started):
            stop_pid(proc.pid, proc.argv)


if __name__ == "__main__":
    raise SystemExit(main())
