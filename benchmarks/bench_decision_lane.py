"""Decision fabric: decisions/s next to the raw consume rate of the traffic topics in the same run,
and admission-to-decision latency p50/p99 at a steady 1,000 events/s through running workers.

Private servers: a Tansu broker, the moto server (S3: run.json, health) and PostgreSQL (runtime
role, migrated). The run is pinned with the shipped policy bundle (as P1 does).

1. **Throughput.** A synthetic-engine run (fraud mode) is published to the registry's topics and IG's
   admissions and ADMIT receipts are written for every record (as IG does after publishing). The
   OFP, IEG and CSFB workers drain it, DL's GREEN posture is recorded; then DF drains the traffic
   topics through the one stream-worker loop (time in cycles that finished records). Baseline: a
   bare confluent-kafka consumer reading every traffic record once (median of 3).
2. **Latency.** A second run on fresh servers: OFP, IEG, CSFB, DL and DF run as their own processes
   (`python -m runtime <c> run`, as the pack supervisor starts them). The benchmark stands in for
   IG: it publishes the run's records at a steady FP_BENCH_DF_RATE (default 1,000) events/s in
   20 ms ticks and, right after each publish returns, writes their admissions and ADMIT receipts
   (the receipt time is the admission time). p50/p99 are DF's own figures from `df_decisions`
   (decided_at - admitted_at, `decision_latency`). Goal: p99 < 250 ms. It also prints how busy the
   whole machine was while sending (cores in use, /proc/stat) and each worker's share of a core:
   on 2 cores shared with the broker, PostgreSQL and the producer, the tail follows that load.

Size: FP_BENCH_DF_SCALE (engine scale, default 4000: about 21k records) for (1), FP_BENCH_DF_SECONDS
(default 20) of traffic for (2); FP_BENCH_DF_PARTS (default `throughput,latency`) picks the parts.
`main(smoke=True)` runs both tiny, once.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_rtdl import _raw_consume_rate as raw_consume_rate
from benchmarks.bench_spine import cpu_seconds, machine_busy_seconds
from benchmarks.servers import servers
from runtime.bus.factory import consumer as bus_consumer
from runtime.bus.factory import publisher as bus_publisher
from runtime.bus.port import EbRef, OutboundRecord
from runtime.components import consumer_group_id
from runtime.contracts.ids import event_time_micros
from runtime.db.postgres import Database, connect
from runtime.decision.bundle import load_policy
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.settings import Settings
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.run import build_handler
from runtime.worker.store import WorkerStore

RUN = "platform_20260105T000000Z"
RUN_LIVE = "platform_20260105T010000Z"
REPS = 3
#: Records published before the measured stream, whose decisions are awaited first: a fresh
#: broker takes seconds to give the workers' new consumer groups their partitions.
WARM_UP = 400
UPSTREAMS = ("ofp", "ieg", "csfb")


def pin(settings: Settings, run: str) -> None:
    """run.json with the shipped policy bundle, as P1 writes it (DF refuses to start without it)."""
    registry = settings.registry
    key = registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run) + registry.text("EVIDENCE_RUN_JSON_KEY")
    settings.bucket("S3_EVIDENCE_BUCKET").put(key, json.dumps({"platform_run_id": run,
                                                              "config": {"policy": load_policy().ref()}}).encode())


def records_of(settings: Settings, run: str, scale: int) -> list[tuple[str, OutboundRecord]]:
    """(event_class, record) of an engine run re-addressed to `run`, in the total order (ts, event_id)
    a live stream has: `engine_run` lists output after output (all traffic first), which published
    at a steady rate would send every traffic event before any of its context."""
    from runtime.rtdl.events import parse_ts_micros
    from tests.runtime.rtdl.envelopes import engine_run

    registry = settings.registry
    topic_of = {cls: registry.topic(spec["topic"]).name for cls, spec in registry.mapping("EVENT_CLASS_MAP").items()}
    ordered = sorted(engine_run(scale), key=lambda r: (parse_ts_micros(r[1]["ts_utc"]), r[1]["event_id"]))
    return [(cls, OutboundRecord(topic_of[cls], env["event_id"], json.dumps({**env, "platform_run_id": run},
                                                                            sort_keys=True).encode()))
            for cls, env in ordered]


def admit(conn: Any, run: str, batch: list[tuple[str, OutboundRecord]], refs: list[EbRef | Exception]) -> None:
    """What IG records after publishing: the admission (with its eb_ref and its event time, as IG
    claims it: DF's completeness cut reads it) and the ADMIT receipt, now."""
    rows = [(cls, document["event_id"], event_time_micros(document["ts_utc"]), ref)
            for (cls, r), ref in zip(batch, refs, strict=True) if isinstance(ref, EbRef)
            for document in (json.loads(r.value),)]
    if len(rows) < len(batch):
        raise RuntimeError(f"publish failed: {next(r for r in refs if isinstance(r, Exception))}")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, receipt_id,"
                        " eb_ref, event_ts_micros) VALUES (%s, %s, %s, 'h', 'ADMITTED', %s, %s, %s)",
                        [(run, c, e, f"r-{e}", json.dumps(ref.to_dict()), ts) for c, e, ts, ref in rows])
        cur.executemany("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key,"
                        " batch_index, receipt) VALUES (%s, %s, %s, %s, 'ADMIT', 'bench', 0, '{}')",
                        [(f"r-{e}-{uuid.uuid4().hex[:8]}", run, c, e) for c, e, _, _ in rows])
    conn.commit()


def green(conn: Any, run: str) -> None:
    """DL's posture GREEN (the throughput run has no DL daemon: every store is complete)."""
    conn.execute("INSERT INTO dl_posture_history (platform_run_id, seq, posture, reasons, health, entry_sha256, at_utc)"
                 " VALUES (%s, 0, 'GREEN', '{}', '{}', 'bench', now())", (run,))
    conn.commit()


def drain(settings: Settings, db: Database, component: str, run: str, expected: int) -> float:
    """Drain one worker in process; records/s over the cycles that finished records."""
    handler = build_handler(component, settings, run)
    group = consumer_group_id(settings.registry, component, run)
    consumer = bus_consumer(settings, handler.input_topics(), group, run)
    worker = StreamWorker(handler, consumer, bus_publisher(settings), db.transaction, WorkerStore(group, component, run),
                          config=WorkerConfig(batch_size=500, poll_timeout_s=0.5))
    busy, done, deadline = 0.0, 0, time.monotonic() + 900
    while done < expected and time.monotonic() < deadline:
        start = time.perf_counter()
        if worker.step():
            busy += time.perf_counter() - start
        done = worker.counters.applied + worker.counters.dead_lettered
    worker.run(threading.Event(), idle_exit_after=1)
    consumer.close()
    return done / busy if busy > 0 else 0.0


def publish_admitted(settings: Settings, dsn: str, run: str, scale: int, chunk: int = 500) -> list[tuple[str, OutboundRecord]]:
    """Pin `run`, publish an engine run of `scale` with IG's admissions and receipts, record DL's
    GREEN posture; the (event_class, record) published."""
    pin(settings, run)
    records = records_of(settings, run, scale)
    pub = bus_publisher(settings)
    with connect(dsn) as conn:
        for i in range(0, len(records), chunk):
            batch = records[i:i + chunk]
            admit(conn, run, batch, pub.publish([r for _, r in batch]))
        green(conn, run)
    pub.close()
    return records


def throughput(work: Path, scale: int, reps: int) -> None:
    """(1): DF decisions/s and the raw consume rate of the traffic topics, same servers, same run."""
    with servers(work) as s:
        records = publish_admitted(s.settings, s.dsn, RUN, scale)
        traffic = [r for cls, r in records if cls in TRAFFIC_CLASSES]
        topics = sorted({r.topic for r in traffic})
        raw = statistics.median(raw_consume_rate(s.bootstrap, topics, len(traffic)) for _ in range(reps))
        with Database(s.dsn, name="bench", max_size=4) as db:
            for component in UPSTREAMS:
                mine = sum(1 for _, r in records if r.topic in build_handler(component, s.settings, RUN).input_topics())
                drain(s.settings, db, component, RUN, mine)
            rate = drain(s.settings, db, "df", RUN, len(traffic))
        with connect(s.dsn) as conn:
            decided: Any = conn.execute("SELECT count(*), count(*) FILTER (WHERE cardinality(degrade_codes) > 0) FROM df_decisions"
                                   " WHERE platform_run_id = %s", (RUN,)).fetchone()
        print(f"throughput: {len(records)} records, {len(traffic)} traffic on {len(topics)} topics")
        print(f"  raw consume (bare confluent-kafka, traffic topics): {raw:,.0f} records/s (median of {reps})")
        print(f"  df  {decided[0]:>8} decisions  {rate:>10,.0f} decisions/s  {rate / raw:5.2f}x raw"
              f"  (degraded {decided[1]}, posture GREEN)")


def latency(work: Path, seconds: float, rate: int, *, green_wait_s: float = 20.0, warm_up: int = WARM_UP) -> None:
    """(2): admission-to-decision p50/p99 at a steady `rate` events/s through running worker processes."""
    with servers(work) as s:
        pin(s.settings, RUN_LIVE)
        env = {**os.environ, **s.env, s.settings.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"): RUN_LIVE}
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        procs = []
        try:
            components = (*UPSTREAMS, "dl", "df")
            for component in components:
                argv = [sys.executable, "-m", "runtime", component, "run", "--platform-run-id", RUN_LIVE]
                with (logs / f"{component}.log").open("w") as log:
                    procs.append((subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT), tuple(argv)))
            posture = wait_green(s.dsn, RUN_LIVE, green_wait_s)
            wanted = int(seconds * rate)
            records = records_of(s.settings, RUN_LIVE, max(60, (wanted + warm_up) // 5))[:wanted + warm_up]
            pub = bus_publisher(s.settings)
            # warm-up: the workers' consumer groups join (seconds on a fresh broker) before anything is measured
            with connect(s.dsn) as conn:
                for i in range(0, warm_up, 100):
                    admit(conn, RUN_LIVE, records[i:i + 100], pub.publish([r for _, r in records[i:i + 100]]))
            warm_traffic = sum(1 for cls, _ in records[:warm_up] if cls in TRAFFIC_CLASSES)
            warmed = wait_decided(s.dsn, RUN_LIVE, warm_traffic, 120.0)
            with connect(s.dsn) as conn:
                now: Any = conn.execute("SELECT now()").fetchone()
                mark = now[0]
            records = records[warm_up:]
            traffic = sum(1 for cls, _ in records if cls in TRAFFIC_CLASSES)
            tick = 0.02
            per_tick = max(1, int(rate * tick))
            busy_before = machine_busy_seconds()
            used_before = {c: cpu_seconds(proc.pid) or 0.0 for c, (proc, _) in zip(components, procs, strict=True)}
            start = time.monotonic()
            with connect(s.dsn) as conn:
                for n, i in enumerate(range(0, len(records), per_tick)):
                    time.sleep(max(0.0, start + n * tick - time.monotonic()))
                    batch = records[i:i + per_tick]
                    admit(conn, RUN_LIVE, batch, pub.publish([r for _, r in batch]))
            sent_for = time.monotonic() - start
            busy = (machine_busy_seconds() - busy_before) / sent_for
            used = {c: ((cpu_seconds(proc.pid) or 0.0) - used_before[c]) / sent_for
                    for c, (proc, _) in zip(components, procs, strict=True)}
            pub.close()
            decided = wait_decided(s.dsn, RUN_LIVE, warm_traffic + traffic, 120.0) - warmed
            from runtime.decision.df.store import decision_counts

            with connect(s.dsn) as conn:
                figures = steady_latency(conn, RUN_LIVE, mark)
                counts = decision_counts(conn, RUN_LIVE)
                spread: Any = conn.execute(
                    "SELECT to_char(min(admitted_at), 'MI:SS.MS'), to_char(min(decided_at), 'MI:SS.MS'),"
                    " to_char(max(admitted_at), 'MI:SS.MS'), to_char(max(decided_at), 'MI:SS.MS') FROM df_decisions"
                    " WHERE platform_run_id = %s AND admitted_at > %s", (RUN_LIVE, mark)).fetchone()
                details = [r[0] for r in conn.execute(
                    "SELECT DISTINCT d->>'code' || ': ' || (d->>'detail') FROM df_decisions, jsonb_array_elements(record->"
                    "'degrade_reasons') AS d WHERE platform_run_id = %s LIMIT 3", (RUN_LIVE,)).fetchall()]
        finally:
            for proc, _ in procs:
                proc.terminate()  # SIGTERM: each stops after the batch in hand
            for proc, _ in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        print(f"latency: {len(records)} records ({traffic} traffic) in {sent_for:.1f} s = {len(records) / sent_for:,.0f} events/s"
              f" through running ofp, ieg, csfb, dl, df; posture at start {posture}")
        print(f"  {decided} decisions; admission-to-decision p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms,"
              f" max {figures['max_ms']} ms over {figures['measured']} (goal p99 < 250 ms)")
        print(f"  first admitted {spread[0]}, first decided {spread[1]}; last admitted {spread[2]}, last decided {spread[3]}")
        print(f"  while sending: the machine busy {busy:.2f} of {os.cpu_count()} cores; of a core, "
              + ", ".join(f"{c} {u:.2f}" for c, u in used.items()))
        print(f"  run (warm-up included) by posture {counts.by_posture}, degraded {counts.degraded} {counts.by_degrade_reason}"
              + (f" e.g. {details}" if details else ""))


def steady_latency(conn: Any, run: str, since: Any) -> dict[str, Any]:
    """DF's admission-to-decision p50/p99/max (ms) over the events admitted after the warm-up
    (`decision_latency`'s figures, restricted to the steady part)."""
    row: Any = conn.execute(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),"
        " max(ms) FROM (SELECT extract(epoch FROM decided_at - admitted_at) * 1000 AS ms FROM df_decisions"
        " WHERE platform_run_id = %s AND admitted_at > %s) AS l", (run, since)).fetchone()
    rounded = [None if v is None else round(float(v), 1) for v in row[1:]]
    return {"measured": int(row[0]), "p50_ms": rounded[0], "p99_ms": rounded[1], "max_ms": rounded[2]}


def wait_green(dsn: str, run: str, wait_s: float) -> str | None:
    """DL's posture once GREEN (or the last one after `wait_s`)."""
    deadline, posture = time.monotonic() + wait_s, None
    while time.monotonic() < deadline:
        with connect(dsn) as conn:
            row = conn.execute("SELECT posture FROM dl_posture_history WHERE platform_run_id = %s ORDER BY seq DESC LIMIT 1",
                               (run,)).fetchone()
        posture = row[0] if row else None
        if posture == "GREEN":
            break
        time.sleep(0.5)
    return posture


def wait_decided(dsn: str, run: str, expected: int, wait_s: float) -> int:
    """DF's decisions of the run once `expected` (or what there is after `wait_s`)."""
    deadline, decided = time.monotonic() + wait_s, 0
    while time.monotonic() < deadline:
        with connect(dsn) as conn:
            row: Any = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (run,)).fetchone()
        decided = int(row[0])
        if decided >= expected:
            break
        time.sleep(0.5)
    return decided


def main(smoke: bool = False) -> int:
    """Both measurements; prints the figures."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    scale = 60 if smoke else int(os.environ.get("FP_BENCH_DF_SCALE", "4000"))
    seconds = 1.0 if smoke else float(os.environ.get("FP_BENCH_DF_SECONDS", "20"))
    rate = int(os.environ.get("FP_BENCH_DF_RATE", "1000"))
    parts = {"throughput", "latency"} if smoke else set(os.environ.get("FP_BENCH_DF_PARTS", "throughput,latency").split(","))
    if "throughput" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            throughput(Path(tmp) / "throughput", scale, 1 if smoke else REPS)
    if "latency" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            latency(Path(tmp) / "latency", seconds, rate, green_wait_s=3.0 if smoke else 20.0, warm_up=0 if smoke else WARM_UP)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
