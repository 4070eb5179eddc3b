"""DL's Postgres adapter: the append-only posture history and the health inputs read from durable state.

`dl_posture_history` (migration 0610) holds one row per posture change, seq from 0; DF decides
with the row of the highest seq. The ladder is restored from it on start, so a restarted DL
continues the sequence (its hysteresis streak starts again: a restart never improves the posture
sooner than `recover_after` observations).

Health inputs from the stores: each RTDL component's **admission lag** is how long ago (wall
seconds, the database's clock) IG admitted the oldest record on the component's partitions that
its consumer group has not made durable yet; a component that has applied everything IG admitted
has lag 0. It follows stream progress: event time is no measure of it, because a replayed stream
runs its event time a thousand times faster than the wall clock and each output of WSP at its
own pace, so a store a few hundred milliseconds behind is hours behind in event time. The
**join-miss ratio** is CSFB's unresolved misses (misses less late joins) over its joins for the
run, 0 before its first traffic event (nothing missed).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from runtime.decision.df.store import Partition, Upstream
from runtime.decision.dl.domain import DegradeLadder, Limits, PostureEntry
from runtime.ig.store import run_last_offsets
from runtime.rtdl import store as progress
from runtime.worker.store import group_positions


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


def admission_lag_seconds(conn: Any, upstream: Upstream, platform_run_id: str, run_last: dict[Partition, int]) -> float:
    """Seconds since IG admitted the oldest record of the run the component has not applied, over
    its partitions (0 when it applied everything admitted). One index probe per partition behind."""
    positions = group_positions(conn, upstream.consumer_group)
    worst = 0.0
    for p in sorted(run_last):
        position = positions.get(p, -1)
        if p[0] not in upstream.topics or position >= run_last[p]:
            continue
        row = conn.execute(
            "SELECT extract(epoch FROM now() - claimed_at) FROM ig_admissions WHERE platform_run_id = %s"
            " AND eb_ref->>'topic' = %s AND eb_ref->>'partition' = %s AND (eb_ref->>'offset')::numeric > %s"
            " ORDER BY (eb_ref->>'offset')::numeric LIMIT 1", (platform_run_id, p[0], p[1], position)).fetchone()
        if row is not None and row[0] is not None:
            worst = max(worst, float(row[0]))
    return round(worst, 3)


def join_miss_ratio(conn: Any, platform_run_id: str) -> float:
    """CSFB's unresolved join misses over its joins for the run. A miss whose context came later (a
    late join) does not count: whether CSFB read a traffic event before its flow anchor depends on
    consumption order, not on the data, and DF's point-in-time join sees the earlier anchor either
    way. Before CSFB's first traffic event the ratio is 0: nothing was missed (a stopped CSFB shows
    in its lag and its stale health instead)."""
    totals = progress.counter_totals(conn, platform_run_id, "csfb")
    hits, misses, late = totals.get("join_hits", 0), totals.get("join_misses", 0), totals.get("late_joins", 0)
    return 0.0 if hits + misses == 0 else max(0, misses - late) / (hits + misses)


def lags(conn: Any, platform_run_id: str, upstreams: list[Upstream]) -> dict[str, float | None]:
    """component -> admission lag seconds, for every upstream (one read of IG's last offsets)."""
    run_last = run_last_offsets(conn, platform_run_id, {t for u in upstreams for t in u.topics})
    return {u.component: admission_lag_seconds(conn, u, platform_run_id, run_last) for u in upstreams}
