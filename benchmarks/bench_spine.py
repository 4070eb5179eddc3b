"""The whole spine at scale on the embedded substrate: P(-1)..P12 as the operator runs it, measured.

What it does, in one process: `dev-min-up` (Kafka bus on Tansu, moto S3, PostgreSQL; free loopback
ports from a private copy of the registry, in a scratch folder), `dev-min-run` with no gate (full cap
at `--scale` FP_BENCH_SPINE_EVENTS, default 100,000 traffic events), a bare confluent-kafka producer
and consumer on the same broker (the bus baselines, measured in this run after P11), `dev-min-down`.
A sampler thread reads every second the RSS (/proc/<pid>/status VmRSS) of each daemon the local
compute backend records in its packs' state (and of the three servers).

Figures printed:
- end-to-end time (up to down), P3..P11, and each phase's time from its phase record;
- each stage's events/s from the run report's throughput section (WSP emitted, IG admitted, each
  RTDL core worker, DF decided, AL, DLA, the case plane), with its busiest minute and lag;
- bus baselines: bare producer and bare consumer records/s on the same broker;
- peak RSS per daemon, and the bounded-memory check (issue 16 item 4): each daemon's RSS when its
  stage had done 10% of its events and when it had done all of them; a growth above 20% is flagged.

Not a timed test: `main(smoke=True)` (`python -m benchmarks --smoke bench_spine`) runs a tiny spine
to prove the benchmark still runs; its figures mean nothing. The benchmark exits non-zero when the
run does not reach Spine Green; an RSS growth above 20% is printed as FLAG, not a failure (the
figures of a shared 2-core machine are noisy; the operator judges them).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from benchmarks.bench_rtdl import BASELINE_GROUP_TIMEOUTS
from runtime.bus.kafka import consumer_config
from runtime.paths import REPO_ROOT

#: Traffic events of a full run (the engine scale; context outputs come on top).
SCALE = int(os.environ.get("FP_BENCH_SPINE_EVENTS", "100000"))
SMOKE_SCALE = 200
#: Records of the bus baselines (bare producer, bare consumer); a smoke run sends a few.
BASELINE_RECORDS, SMOKE_BASELINE_RECORDS = 50_000, 200
SAMPLE_EVERY_S = 1.0
#: RSS growth from 10% to 100% of a stage's stream above which the daemon is flagged (issue 16 item 4).
RSS_GROWTH_LIMIT = 0.20
#: Each daemon's stage: the table whose rows time its work (None: the admitted stream, the RTDL core
#: workers' tallies time only their last batch, so their 100% is their tally's last update).
DAEMON_STAGE: dict[str, tuple[str, str, str] | None] = {
    "ig": ("ig_receipts", "recorded_at", " AND outcome = 'ADMIT'"),
    "archive_writer": None, "ieg": None, "ofp": None, "csfb": None,
    "dl": ("df_decisions", "decided_at", ""), "df": ("df_decisions", "decided_at", ""),
    "al": ("al_effects", "created_at", ""), "dla": ("dla_audit_records", "created_at", ""),
    "case_trigger": ("case_triggers", "created_at", ""), "cm": ("cm_case_timeline", "created_at", ""),
    "ls": ("ls_label_assertions", "created_at", ""),
}


@dataclass
class RssSampler:
    """Every second: (wall time, RSS bytes) of each daemon of the running packs and of the servers,
    and the CPU seconds each has used so far (a server's with its children: PostgreSQL's backends)."""

    registry: Any
    runs_root: Path
    servers: dict[str, int]
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    #: when set: the CPU seconds of each PostgreSQL backend by pid, with its session's name
    dsn: str | None = None
    backends: dict[int, tuple[str, float]] = field(default_factory=dict)

    def pids(self) -> dict[str, int]:
        """name -> pid of every process to sample now (the packs' state files, the servers)."""
        from controller.compute.local_backend import pack_paths, read_pack_state

        out = dict(self.servers)
        for pack in self.registry.mapping("PACKS"):
            state = read_pack_state(pack_paths(self.runs_root, self.registry, pack, "")) or {}
            if state.get("state") != "RUNNING":
                continue
            for p in state.get("processes") or []:
                if p.get("pid"):
                    out[str(p["name"])] = int(p["pid"])
        return out

    def sample_backends(self, conn: Any) -> None:
        """Each live PostgreSQL backend's CPU so far, under its session's name (`fp-<component>` for
        the platform's processes: runtime.components.session_name_env)."""
        for pid, application, kind in conn.execute("SELECT pid, application_name, backend_type FROM pg_stat_activity"
                                                   " WHERE pid <> pg_backend_pid()").fetchall():
            used = cpu_seconds(int(pid))
            if used is not None:
                name = str(application or f"({kind or 'postgres background, hidden from this role'})")
                self.backends[int(pid)] = (name, max(used, self.backends.get(int(pid), ("", 0.0))[1]))

    def postgres_by_session(self) -> dict[str, float]:
        """PostgreSQL's CPU seconds per session name (backends seen by the sampler; what backends
        spent after their last sample, and processes never seen, are in no row)."""
        out: dict[str, float] = {}
        for name, used in self.backends.values():
            out[name] = out.get(name, 0.0) + used
        return out

    def run(self) -> None:
        """Sample until stopped."""
        from runtime.db.postgres import open_session

        conn = open_session(self.dsn) if self.dsn else None
        try:
            self._sample_until_stopped(conn)
        finally:
            if conn is not None:
                conn.close()

    def _sample_until_stopped(self, conn: Any) -> None:
        while not self.stop.is_set():
            if conn is not None:
                self.sample_backends(conn)
            now = time.time()
            for name, pid in self.pids().items():
                rss = rss_bytes(pid)
                if rss is not None:
                    self.samples.setdefault(name, []).append((now, rss))
                used = cpu_seconds(pid, with_children=name.startswith("server:"))
                if used is not None:
                    self.cpu[name] = max(self.cpu.get(name, 0.0), used)
            # this process runs the phases (P3's oracle, the gates) and reaps the gate jobs it starts
            self.cpu["controller"] = max(self.cpu.get("controller", 0.0), cpu_seconds(os.getpid(), with_reaped=True) or 0.0)
            self.stop.wait(SAMPLE_EVERY_S)


def rss_bytes(pid: int) -> int | None:
    """The resident set of a live process (VmRSS of /proc/<pid>/status), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int, *, with_children: bool = False, with_reaped: bool = False) -> float | None:
    """User + system CPU seconds of a live process (/proc/<pid>/stat); `with_reaped` adds its
    reaped children's, `with_children` those and its live children's (a server's backends)."""
    def fields(p: int | str) -> list[str] | None:
        try:
            return Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None

    tick = os.sysconf("SC_CLK_TCK")
    own = fields(pid)
    if own is None:
        return None
    total = int(own[11]) + int(own[12])
    if with_children or with_reaped:
        total += int(own[13]) + int(own[14])
    if with_children:
        for entry in Path("/proc").iterdir():
            child = fields(entry.name) if entry.name.isdigit() else None
            if child is not None and child[1] == str(pid):
                total += int(child[11]) + int(child[12])
    return total / tick


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, all cores (/proc/stat: every state
    but idle and iowait): over a window, busy / wall is how many cores were in use, whoever used them."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rss_at(samples: list[tuple[float, int]], at: float) -> int | None:
    """The first sample at or after `at` (the last one when none is later); None without samples."""
    later = [rss for t, rss in samples if t >= at]
    return later[0] if later else (samples[-1][1] if samples else None)


def growth(at_10: int | None, at_100: int | None) -> float | None:
    """RSS growth from 10% to 100% of the stream (0.25 = +25%), None when either is missing."""
    return (at_100 - at_10) / at_10 if at_10 and at_100 is not None else None


def stream_marks(conn: Any, registry: Any, platform_run_id: str) -> dict[str, tuple[float, float] | None]:
    """Per daemon: wall times when its stage had done 10% and 100% of its events (None: it did none)."""
    from runtime.components import consumer_group_id

    def marks(table: str, column: str, where: str) -> tuple[float, float] | None:
        total = conn.execute(f"SELECT count(*) FROM {table} WHERE platform_run_id = %s{where}", (platform_run_id,)).fetchone()[0]
        if not total:
            return None
        at = [conn.execute(f"SELECT {column} FROM {table} WHERE platform_run_id = %s{where} ORDER BY {column}"
                           f" OFFSET %s LIMIT 1", (platform_run_id, k)).fetchone()[0] for k in (total // 10, total - 1)]
        return at[0].timestamp(), at[1].timestamp()

    admitted = marks(*DAEMON_STAGE["ig"])  # type: ignore[misc]
    out: dict[str, tuple[float, float] | None] = {}
    for daemon, stage in DAEMON_STAGE.items():
        if stage is not None:
            out[daemon] = marks(*stage)
            continue
        row = conn.execute("SELECT updated_at FROM worker_tallies WHERE consumer_group = %s AND platform_run_id = %s",
                           (consumer_group_id(registry, daemon, platform_run_id), platform_run_id)).fetchone()
        out[daemon] = (admitted[0], row[0].timestamp()) if admitted and row else None
    return out


def table_writes(conn: Any) -> tuple[list[tuple[str, int, int, int, int]], dict[str, int]]:
    """Rows each table took since the cluster started (inserted, updated, of those HOT, deleted), the
    busiest first, and the WAL the cluster wrote (records, full-page images, bytes): what each store
    costs PostgreSQL per admitted event. The benchmark's cluster is fresh, so the counters are the run's.
    The sessions' temporary staging tables (one per session, not WAL-logged) are left out."""
    rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables"
                        " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 AND schemaname NOT LIKE 'pg\\_temp%'"
                        " ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC").fetchall()
    wal = conn.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    return ([(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows],
            {"records": int(wal[0]), "full_page_images": int(wal[1]), "bytes": int(wal[2])} if wal else {})


def buffer_traffic(conn: Any) -> dict[str, int]:
    """Where PostgreSQL found the pages the run read, and who wrote its dirty pages, since the
    cluster started: blocks found in shared buffers (hit) or read from the OS (read), for tables and
    indexes; checkpoints (timed, requested) and the buffers written by the checkpointer, the
    background writer and the sessions themselves; autovacuum and autoanalyze runs; the database's
    size. A run whose indexes outgrow shared buffers shows here as reads and session writes."""
    io = conn.execute("SELECT coalesce(sum(heap_blks_hit), 0), coalesce(sum(heap_blks_read), 0),"
                      " coalesce(sum(idx_blks_hit), 0), coalesce(sum(idx_blks_read), 0) FROM pg_statio_user_tables").fetchone()
    bg = conn.execute("SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend"
                      " FROM pg_stat_bgwriter").fetchone()
    vac = conn.execute("SELECT coalesce(sum(autovacuum_count), 0), coalesce(sum(autoanalyze_count), 0)"
                       " FROM pg_stat_user_tables").fetchone()
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    names = ("heap_hit", "heap_read", "index_hit", "index_read", "checkpoints_timed", "checkpoints_requested",
             "buffers_checkpoint", "buffers_background", "buffers_session", "autovacuums", "autoanalyzes", "database_bytes")
    values = [*(io or (0,) * 4), *(bg or (0,) * 5), *(vac or (0, 0)), *(size or (0,))]
    return {name: int(v) for name, v in zip(names, values, strict=True)}


def io_by_process(conn: Any) -> list[tuple[str, str, int, int, int]]:
    """PostgreSQL 16's `pg_stat_io` per kind of process and context (normal, vacuum, bulk read and
    write): pages read from the OS, written to it and evicted from shared buffers, the busiest first.
    Which processes pay for a working set larger than shared buffers."""
    rows = conn.execute("SELECT backend_type, context, coalesce(sum(reads), 0), coalesce(sum(writes), 0),"
                        " coalesce(sum(evictions), 0) FROM pg_stat_io GROUP BY 1, 2"
                        " HAVING coalesce(sum(reads), 0) + coalesce(sum(writes), 0) > 0"
                        " ORDER BY sum(reads) + sum(writes) DESC NULLS LAST").fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


def sequential_scans(conn: Any) -> list[tuple[str, int, int]]:
    """Tables by rows read in sequential scans (scans, rows): a periodic query over a whole table
    costs more as the run grows."""
    rows = conn.execute("SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE seq_tup_read > 0"
                        " AND schemaname NOT LIKE 'pg\\_temp%' ORDER BY seq_tup_read DESC LIMIT 8").fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


def bus_baselines(bootstrap: str, count: int) -> tuple[float, float]:
    """(produce, consume) records/s of a bare confluent-kafka producer (the publisher's settings, one
    flush per 500) and a bare consumer reading them back, on the run's broker, records of IG's size."""
    from runtime.bus.kafka import KafkaAdmin

    topic = f"bench-spine-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(bootstrap).ensure_topic(topic, 2, 1)
    value = json.dumps({"event_id": "0" * 32, "pad": "x" * 900}).encode()  # about one canonical traffic event
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                         "batch.num.messages": 10_000, "log_level": 2})
    producer.produce(topic, value=value, key=b"warm-up")
    producer.flush(30)
    start = time.perf_counter()
    for i in range(0, count, 500):
        for n in range(i, min(count, i + 500)):
            producer.produce(topic, value=value, key=f"k{n}".encode())
        producer.flush(60)
    produce_rate = count / (time.perf_counter() - start)
    consumer = Consumer(consumer_config(bootstrap, topic, BASELINE_GROUP_TIMEOUTS))  # as bench_rtdl's baseline
    consumer.subscribe([topic])
    seen, start, deadline = 0, 0.0, time.monotonic() + 120
    while seen < count + 1 and time.monotonic() < deadline:  # timed from the first record (not the group join)
        got = sum(1 for m in consumer.consume(1000, 1.0) if m.error() is None)
        if got and not seen:
            start = time.perf_counter()
        seen += got
    consume_rate = seen / (time.perf_counter() - start) if seen else 0.0
    consumer.close()
    return produce_rate, consume_rate


@contextmanager
def scratch_substrate(work: Path) -> Iterator[Any]:
    """cwd = `work`, FP_HANDLES_REGISTRY = a copy of the registry with free loopback ports; restored after."""
    sys.path.insert(0, str(REPO_ROOT))
    from runtime.contracts.registry import load_registry
    from tests.support.free_ports import free_port_registry

    saved_cwd, saved_env = Path.cwd(), dict(os.environ)
    for name in ("FP_OBJECT_STORE_ENDPOINT", "FP_DB_DSN", "FP_KAFKA_BOOTSTRAP", "FP_BUS", "FP_IG_BASE_URL", "FP_ENV"):
        os.environ.pop(name, None)
    os.environ["FP_HANDLES_REGISTRY"] = str(free_port_registry(work))
    os.chdir(work)
    try:
        yield load_registry("local_parity")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _mib(value: int | None) -> str:
    return f"{value / 2**20:8.0f}" if value is not None else "     n/a"


def _secs(value: Any) -> str:
    return f"{value:10.1f}" if isinstance(value, (int, float)) else "       n/a"


def _rate(value: Any) -> str:
    return f"{value:10,.0f}" if isinstance(value, (int, float)) else "       n/a"


def spine(scale: int, baseline_records: int) -> int:
    """One measured spine run; returns the exit code (0: Spine Green)."""
    from controller.lifecycle import dev_min_down_local, dev_min_run_local, dev_min_up_local
    from controller.phases.machine import Slice
    from controller.runs import RunFolders
    from controller.substrate.local import Ports
    from controller.substrate.state import read_state, state_dir
    from runtime.db.postgres import connect
    from runtime.obs.closure import failed_conditions

    with tempfile.TemporaryDirectory(prefix="bench-spine-") as tmp, scratch_substrate(Path(tmp)) as registry:
        t0 = time.perf_counter()
        dev_min_up_local(registry, bus="kafka", ports=Ports.from_registry(registry))
        state = read_state(state_dir(registry))
        if state is None:
            raise RuntimeError("dev-min-up left no substrate state")
        sampler = RssSampler(registry, RunFolders.from_registry(registry).root,
                             {f"server:{p.name}": p.pid for p in state.processes}, dsn=str(state.db_dsn))
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        failed: str | None = None
        try:
            try:
                run = dev_min_run_local(registry, Slice(), gate=None, bus=None, options={"scale": scale},
                                        progress=lambda pid, name: print(f"  {time.perf_counter() - t0:7.1f}s {pid} {name}",
                                                                         flush=True))
                run_id = run.platform_run_id
            except Exception as e:
                failed = f"{type(e).__name__}: {e}"
                run_id = RunFolders.from_registry(registry).active_run_id()
            sampler.stop.set()
            thread.join(10)
            with connect(str(state.db_dsn)) as conn:
                marks = stream_marks(conn, registry, run_id)
                writes, wal = table_writes(conn)
                buffers = buffer_traffic(conn)
                io_rows, scans = io_by_process(conn), sequential_scans(conn)
                conn.rollback()
            produce_rate, consume_rate = bus_baselines(str(state.kafka_bootstrap), baseline_records)
        finally:
            sampler.stop.set()
            down = dev_min_down_local(registry)
        total_s = time.perf_counter() - t0
        evidence = down.evidence_dir
        report_path = evidence / registry.text("RUN_REPORT_PATH_PATTERN")
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        marker_path = evidence / registry.text("RUN_CLOSURE_MARKER_PATH_PATTERN")
        missing = failed_conditions(json.loads(marker_path.read_text())) if marker_path.exists() else ["no closure marker"]
        phases: dict[str, dict[str, Any]] = {}  # the phase records (the report was written while P11 ran)
        for record in sorted(evidence.glob(registry.render("PHASE_RECORD_PATH_PATTERN", phase_id="*"))):
            doc = json.loads(record.read_text())
            phases[str(doc.get("phase_id"))] = doc

    print(f"scale {scale:,} traffic events, Kafka bus (Tansu), run {run_id}: {report.get('status', 'no run report')}"
          + (f"  FAILED {failed}" if failed else "") + "".join(f"\n  not met: {m}" for m in missing))
    starts = {k: v.get("started_at_utc") for k, v in phases.items()}
    ends = {k: v.get("ended_at_utc") for k, v in phases.items()}
    p3_p11 = (datetime.fromisoformat(str(ends["P11"]).replace("Z", "+00:00"))
              - datetime.fromisoformat(str(starts["P3"]).replace("Z", "+00:00"))).total_seconds() \
        if ends.get("P11") and starts.get("P3") else None
    print(f"end to end (up .. down) {total_s:,.1f} s; P3..P11 {p3_p11:,.1f} s" if p3_p11 else f"end to end {total_s:,.1f} s")
    print("phase   seconds  state")
    for pid in ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12"):
        if pid in phases:
            d = phases[pid].get("duration_s")
            print(f"{pid:6} {d if d is not None else float('nan'):8.1f}  {phases[pid].get('state')}")
    print("stage                        events    seconds   events/s  busiest-minute  lag-at-end")
    for s in report.get("throughput") or []:
        print(f"{s['stage']:24} {s['events']:>10,} {_secs(s.get('seconds'))} {_rate(s.get('events_per_s'))}"
              f" {_rate(s.get('busiest_minute_events'))}      {s.get('lag_at_end', 'n/a')}")
    print(f"bus baseline (same broker, same run): bare producer {produce_rate:,.0f} records/s,"
          f" bare consumer {consume_rate:,.0f} records/s ({baseline_records:,} records)")
    print("daemon                peak MiB  @10% MiB @100% MiB  growth")
    flagged = []
    for name in sorted(sampler.samples):
        series = sampler.samples[name]
        mark = marks.get(name)
        at10, at100 = (rss_at(series, mark[0]), rss_at(series, mark[1])) if mark else (None, None)
        g = growth(at10, at100)
        flag = "FLAG" if g is not None and g > RSS_GROWTH_LIMIT else ""
        if flag:
            flagged.append(name)
        print(f"{name:20} {_mib(max(r for _, r in series))} {_mib(at10)} {_mib(at100)}"
              f"  {f'{g:+.0%}' if g is not None else 'n/a':>6} {flag}")
    spent = sum(sampler.cpu.values())
    admitted = next((int(x["events"]) for x in report.get("throughput") or [] if x.get("stage") == "ig admitted"), 0)
    print(f"CPU seconds from up to the end of P12: {spent:,.0f}"
          + (f" ({spent / admitted * 1000:.2f} ms per admitted event)" if admitted else ""))
    for name, used in sorted(sampler.cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {name:20} {used:8,.1f} s  {used / spent if spent else 0:5.1%}")
    by_session = sampler.postgres_by_session()
    pg_total = next((used for name, used in sampler.cpu.items() if name.startswith("server:postgres")), 0.0)
    if by_session and pg_total:
        print("PostgreSQL's CPU by the session that spent it (backends sampled every second):")
        for name, used in sorted(by_session.items(), key=lambda kv: -kv[1])[:16]:
            print(f"  {name:24} {used:8,.1f} s  {used / pg_total:5.1%} of PostgreSQL")
        print(f"  {'(not in a sampled session)':24} {max(0.0, pg_total - sum(by_session.values())):8,.1f} s")
    if admitted:
        print(f"PostgreSQL rows per admitted event, by table (inserted / updated (HOT) / deleted);"
              f" WAL {wal.get('bytes', 0) / admitted:,.0f} bytes, {wal.get('records', 0) / admitted:.1f} records"
              f" and {wal.get('full_page_images', 0) / admitted:.2f} full-page images per admitted event:")
        for table, ins, upd, hot, dele in writes[:20]:
            print(f"  {table:32} {ins / admitted:6.2f} / {upd / admitted:5.2f} ({hot / admitted:4.2f}) / {dele / admitted:5.2f}")
    if admitted:
        b = buffers
        print(f"PostgreSQL pages per admitted event: tables {b['heap_hit'] / admitted:.1f} in shared buffers,"
              f" {b['heap_read'] / admitted:.2f} from the OS; indexes {b['index_hit'] / admitted:.1f} /"
              f" {b['index_read'] / admitted:.2f}; database {b['database_bytes'] / 2**20:,.0f} MiB")
        print(f"  checkpoints {b['checkpoints_timed']} timed + {b['checkpoints_requested']} requested; buffers written"
              f" by the checkpointer {b['buffers_checkpoint']:,}, background writer {b['buffers_background']:,},"
              f" sessions {b['buffers_session']:,}; autovacuum runs {b['autovacuums']}, autoanalyze {b['autoanalyzes']}")
        print("  pages by process and context (pg_stat_io): read from the OS / written / evicted, per admitted event")
        for kind, context, reads, written, evicted in io_rows[:8]:
            print(f"    {kind[:22]:22} {context:10} {reads / admitted:6.2f} / {written / admitted:6.2f} / {evicted / admitted:6.2f}")
        print("  sequential scans by table: scans, rows read per admitted event")
        for table, count, rows_read in scans:
            print(f"    {table:32} {count:8,} {rows_read / admitted:10.1f}")
    print(f"bounded memory (RSS within {RSS_GROWTH_LIMIT:.0%} from 10% to 100% of each stage's stream): "
          + (f"FLAGGED {', '.join(flagged)}" if flagged else "every daemon within"))
    return 0 if report.get("status") == "SPINE_GREEN" and not failed else 1


def main(smoke: bool = False) -> int:
    """Run the scaled spine once (a tiny one with `smoke`) and print its figures."""
    if smoke:
        return spine(SMOKE_SCALE, SMOKE_BASELINE_RECORDS)
    return spine(SCALE, BASELINE_RECORDS)


if __name__ == "__main__":
    raise SystemExit(main())
