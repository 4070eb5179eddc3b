"""Worker memory: each stream worker's RSS at 10% and 100% of a long input, and what grew (issue 16 item 4).

Goal: a daemon's RSS stays within 20% of its value at 10% of the stream until 100% of it: no state
that grows with the number of events. A synthetic-engine run (fraud mode) is published on private
servers (Tansu, moto, PostgreSQL) with IG's admissions and receipts and DL's GREEN posture, as
`bench_decision_lane` does. Then each worker drains its input in a process of its own (a daemon's
RSS, not the benchmark's): archive_writer, ieg, ofp, csfb over the run's topics, df over its
traffic, dla over df's decisions and intents. Each worker process samples its RSS
(`/proc/self/status` VmRSS) at 10%, 50% and 100% of its records, and `tracemalloc` snapshots at
the same points; it prints the RSS growth against the 20% goal, the Python heap's growth
(`tracemalloc` traced bytes) beside it, and the top growth sites between 10% and 100% (RSS minus
Python heap growth is the allocator's and the C libraries': glibc arenas, librdkafka, libpq), and
how many times the loop trimmed the heaps and what that cost. tracemalloc's own bookkeeping is
subtracted from the RSS figures (VmRSS minus `tracemalloc.get_tracemalloc_memory()`), and each
snapshot is dumped to a file and dropped, so the later samples do not count it.

Size: FP_BENCH_MEMORY_SCALE (engine scale, default 37000: about 200k records, 50k traffic);
FP_BENCH_MEMORY_WORKERS (default all of them) picks workers (df needs ofp, ieg, csfb before it, dla
needs df); FP_BENCH_MEMORY_TRACE=0 measures RSS without tracemalloc; FP_BENCH_MEMORY_TRIM=0 runs the
loop without giving freed pages back after a batch (`runtime/worker/memory.py`), for comparison.
`main(smoke=True)` runs archive_writer and df over a tiny run (its figures mean nothing).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_decision_lane import publish_admitted
from benchmarks.servers import Servers, servers
from runtime.bus.port import OutboundRecord
from runtime.db.postgres import connect
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.settings import load_settings
from runtime.worker.run import assemble, build_handler

RUN = "platform_20260105T000000Z"
#: Workers in the order they run (df reads ofp, ieg and csfb; dla reads df's outputs).
WORKERS = ("archive_writer", "ieg", "ofp", "csfb", "df", "dla")
#: The share of the stream RSS is judged against, and the points sampled.
MARKS = (0.1, 0.5, 1.0)
GOAL = 0.20
TOP_SITES = 6


def rss_bytes() -> int:
    """This process's resident set (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(trace: bool, dump: Path) -> dict[str, Any]:
    """RSS (minus tracemalloc's own bookkeeping), the Python heap traced, and a snapshot (dumped to
    `dump` and dropped, so the snapshots taken are not counted in the later samples)."""
    if not trace:
        return {"rss": rss_bytes(), "traced": None, "snapshot": None}
    rss, traced = rss_bytes() - tracemalloc.get_tracemalloc_memory(), tracemalloc.get_traced_memory()[0]
    tracemalloc.take_snapshot().dump(str(dump))
    gc.collect()
    return {"rss": rss, "traced": traced, "snapshot": str(dump)}


def drain_measured(component: str, expected: int, trace: bool) -> dict[str, Any]:
    """Drain `component`'s input (the deployed WorkerConfig), sampling at each MARKS share of `expected`."""
    settings = load_settings(os.environ)
    if trace:
        tracemalloc.start(int(os.environ.get("FP_BENCH_MEMORY_FRAMES", "1")))
    # the daemon's own assembly (database pool, consumer, publisher, admin, health writer)
    assembled = assemble(settings, component, RUN, environ=os.environ)
    worker = assembled.worker
    if os.environ.get("FP_BENCH_MEMORY_TRIM", "1") == "0":
        worker.memory.trim = None  # the loop as it was before it gave freed pages back (the comparison)
    samples: list[dict[str, Any]] = []
    try:
        deadline, done, start = time.monotonic() + 1800, 0, time.perf_counter()
        marks = list(MARKS)
        while marks and time.monotonic() < deadline:
            worker.step()
            worker.flush_health()  # what the daemon's health thread does when due
            done = worker.counters.applied + worker.counters.dead_lettered + worker.counters.redelivered_skipped
            while marks and done >= marks[0] * expected:
                share = marks.pop(0)
                samples.append({"share": share, "done": done, "seconds": time.perf_counter() - start,
                                **sample(trace, Path(tempfile.gettempdir()) / f"fp-memory-{os.getpid()}-{share}.snapshot")})
        worker.run(threading.Event(), idle_exit_after=1)
    finally:
        assembled.close()
    if len(samples) < 2:
        return {"component": component, "expected": expected, "done": done, "error": "the worker did not reach 10%"}
    first, last = samples[0], samples[-1]
    sites = []
    if trace:
        late, early = (tracemalloc.Snapshot.load(s["snapshot"]) for s in (last, first))
        own = [tracemalloc.Filter(False, tracemalloc.__file__)]
        grown = sorted(late.filter_traces(own).compare_to(early.filter_traces(own), "lineno"), key=lambda st: -st.size_diff)
        for stat in grown[:TOP_SITES]:
            frame = stat.traceback[0]
            sites.append({"site": f"{_short(frame.filename)}:{frame.lineno}", "grew": stat.size_diff, "blocks": stat.count_diff})
    for s in samples:
        if s["snapshot"]:
            Path(s["snapshot"]).unlink(missing_ok=True)
    trims = {"trims": worker.memory.trims, "trim_seconds": round(worker.memory.seconds, 3)}
    return {"component": component, "expected": expected, "done": done, "sites": sites, **trims,
            "samples": [{k: v for k, v in s.items() if k != "snapshot"} for s in samples]}


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/runtime/", "/benchmarks/", "/lib/python3"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.split(marker, 1)[1] if marker != "/site-packages/" else filename.split(marker, 1)[1]
    return filename


def run_worker(env: dict[str, str], component: str, expected: int, trace: bool) -> dict[str, Any]:
    """One worker in a process of its own (a daemon's RSS); its measurement as the last stdout line."""
    argv = [sys.executable, "-m", "benchmarks.bench_worker_memory", "--worker", component, str(expected), str(int(trace))]
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=2400, check=False)
    if proc.returncode != 0:
        return {"component": component, "expected": expected, "error": (proc.stderr or proc.stdout)[-1500:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report(result: dict[str, Any]) -> bool:
    """Print one worker's figures; True when its growth is within the goal."""
    name = result["component"]
    if "error" in result:
        print(f"  {name:<15} FAILED: {result['error']}", flush=True)
        return False
    mib = 1024 * 1024
    samples = result["samples"]
    first, last = samples[0], samples[-1]
    growth = (last["rss"] - first["rss"]) / first["rss"]
    ok = growth <= GOAL
    rss = " -> ".join(f"{s['rss'] / mib:.0f}" for s in samples)
    heap = ""
    if first["traced"] is not None:
        heap = "; python heap " + " -> ".join(f"{s['traced'] / mib:.1f}" for s in samples) + " MiB"
    print(f"  {name:<15} {result['done']:>8} records in {last['seconds']:.0f} s; RSS at 10/50/100%: {rss} MiB,"
          f" {growth:+.0%} ({'within' if ok else 'OVER'} the {GOAL:.0%} goal){heap}", flush=True)
    if result.get("trims"):
        print(f"      {result['trims']} trims (runtime/worker/memory.py) took {result['trim_seconds']:.2f} s in all")
    for site in result["sites"]:
        print(f"      {site['grew'] / 1024:>+9.0f} KiB {site['blocks']:>+8} blocks  {site['site']}")
    return ok


@contextlib.contextmanager
def prepare(work: Path, scale: int) -> Iterator[tuple[Servers, list[tuple[str, OutboundRecord]]]]:
    """Servers with the run pinned, published and admitted, DL's posture GREEN."""
    with servers(work) as s:
        yield s, publish_admitted(s.settings, s.dsn, RUN, scale, chunk=1000)


def expected_of(component: str, settings: Any, records: list[Any], decisions: int) -> int:
    """Records `component` will read: its topics' share of the run (dla: df's decisions and intents)."""
    if component == "dla":
        return decisions
    topics = set(build_handler(component, settings, RUN).input_topics())
    return sum(1 for _, r in records if r.topic in topics)


def main(smoke: bool = False) -> int:
    """Publish a run, then measure each worker in a process of its own; prints the figures."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    scale = 60 if smoke else int(os.environ.get("FP_BENCH_MEMORY_SCALE", "37000"))
    trace = os.environ.get("FP_BENCH_MEMORY_TRACE", "1") != "0"
    wanted = [w for w in os.environ.get("FP_BENCH_MEMORY_WORKERS", ",".join(WORKERS)).split(",") if w]
    if smoke:
        wanted = ["archive_writer", "df"] if wanted == list(WORKERS) else wanted
    with tempfile.TemporaryDirectory() as tmp, prepare(Path(tmp), scale) as (s, records):
        traffic = sum(1 for cls, _ in records if cls in TRAFFIC_CLASSES)
        print(f"worker memory: {len(records)} records ({traffic} traffic); RSS of each worker's own process at 10%, 50%,"
              f" 100% of its input (goal: at most +{GOAL:.0%} from 10% to 100%){'; tracemalloc on' if trace else ''}",
              flush=True)
        failed = 0
        for component in WORKERS:
            if component not in wanted:
                continue
            decisions = 0
            if component == "dla":
                with connect(s.dsn) as conn:
                    row: Any = conn.execute("SELECT count(*) FROM worker_outbox WHERE component = 'df' AND platform_run_id = %s",
                                            (RUN,)).fetchone()
                decisions = int(row[0])
            result = run_worker(s.env, component, expected_of(component, s.settings, records, decisions), trace)
            report(result)
            failed += int("error" in result)
    return 0 if not failed else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        print(json.dumps(drain_measured(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")))
        raise SystemExit(0)
    raise SystemExit(main())
