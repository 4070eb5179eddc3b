"""DL's Postgres adapter: the append-only posture history and the health inputs read from durable state.

`dl_posture_history` (migration 0610) holds one row per posture change, seq from 0; DF decides
with the row of the highest seq. The ladder is restored from it on start, so a restarted DL
continues the sequence (its hysteresis streak starts again: a restart never improves the posture
sooner than `recover_after` observations).

Health inputs from the stores: each RTDL component's **watermark lag** is how far (event time) its
slowest partition that still has admitted records to read is behind the stream's front (the
newest event time any RTDL component has read); a component that has read everything IG admitted
on its partitions has lag 0. The **join-miss ratio** is CSFB's unresolved misses (misses less
late joins) over its joins for the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg.types.json import Jsonb

from runtime.decision.df.store import Partition, Upstream, group_positions, run_last_offsets
from runtime.decision.dl.domain import DegradeLadder, Limits, PostureEntry
from runtime.rtdl import store as progress

SECOND = 1_000_000


def append_posture(conn: Any, platform_run_id: str, entry: PostureEntry) -> bool:
    """Append one posture change; False when its seq is already held (another DL wrote it first)."""
    row = entry.canonical()
    written = conn.execute(
        "INSERT INTO dl_posture_history (platform_run_id, seq, posture, previous, reasons, health, entry_sha256, at_utc)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (platform_run_id, entry.seq, entry.posture, entry.previous, list(entry.reasons), Jsonb(row["health"]),
         row["entry_sha256"], entry.at_utc)).fetchone()
    return written is not None


def posture_history(conn: Any, platform_run_id: str) -> list[PostureEntry]:
    """The run's posture changes in seq order."""
    rows = conn.execute(
        "SELECT seq, to_char(at_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), posture, previous, reasons, health"
        " FROM dl_posture_history WHERE platform_run_id = %s ORDER BY seq", (platform_run_id,)).fetchall()
    return [PostureEntry(int(r[0]), str(r[1]), str(r[2]), r[3], tuple(r[4]), dict(r[5])) for r in rows]


def restore_ladder(conn: Any, platform_run_id: str, limits: Limits) -> DegradeLadder:
    """A ladder holding the run's stored history (its next change gets the next seq)."""
    return DegradeLadder(limits=limits, history=posture_history(conn, platform_run_id))


def stream_front_micros(conn: Any, platform_run_id: str, components: Iterable[str]) -> int | None:
    """The newest event time any of `components` has read for the run (None before any)."""
    row = conn.execute("SELECT max(max_event_ts_micros) FROM rtdl_watermarks WHERE platform_run_id = %s"
                       " AND component = ANY(%s::text[])", (platform_run_id, list(components))).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def watermark_lag_seconds(conn: Any, platform_run_id: str, upstream: Upstream, front: int | None,
                          run_last: dict[Partition, int]) -> float | None:
    """How far (seconds of event time) the component's slowest unfinished partition is behind the
    front; 0 when it has read everything admitted; None when a partition it must read has no
    watermark yet while others have moved on (unknown)."""
    positions = group_positions(conn, upstream.consumer_group)
    unfinished = [p for p in run_last if p[0] in upstream.topics and positions.get(p, -1) < run_last[p]]
    if not unfinished or front is None:
        return 0.0
    marks = {(r["topic"], r["partition"]): r["max_event_ts_micros"]
             for r in progress.watermark_rows(conn, platform_run_id, upstream.component)}
    if any(p not in marks for p in unfinished):
        return None
    return max(0.0, (front - min(marks[p] for p in unfinished)) / SECOND)


def join_miss_ratio(conn: Any, platform_run_id: str) -> float | None:
    """CSFB's unresolved join misses over its joins for the run (None before its first traffic
    event). A miss whose context came later (a late join) does not count: whether CSFB read a
    traffic event before its flow anchor depends on consumption order, not on the data, and DF's
    point-in-time join sees the earlier anchor either way."""
    totals = progress.counter_totals(conn, platform_run_id, "csfb")
    hits, misses, late = totals.get("join_hits", 0), totals.get("join_misses", 0), totals.get("late_joins", 0)
    return None if hits + misses == 0 else max(0, misses - late) / (hits + misses)


def lags(conn: Any, platform_run_id: str, upstreams: list[Upstream]) -> dict[str, float | None]:
    """component -> watermark lag seconds, for every upstream (one read of IG's admissions)."""
    run_last = run_last_offsets(conn, platform_run_id, {t for u in upstreams for t in u.topics})
    front = stream_front_micros(conn, platform_run_id, [u.component for u in upstreams])
    return {u.component: watermark_lag_seconds(conn, platform_run_id, u, front, run_last) for u in upstreams}
