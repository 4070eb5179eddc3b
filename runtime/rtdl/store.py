"""RTDL's shared Postgres adapter: per-partition watermarks and counters, and the state digest.

OFP, IEG and CSFB each keep their state in their own tables (runtime/rtdl/<c>/store.py); what they
share is operational progress per (run, component, topic, partition): the event-time watermark
with its late count (migration 0501, `rtdl_watermarks`) and the component's counters
(`rtdl_counters`). Both are written in the worker's transaction, beside the state they describe,
so they are exact under redelivery; neither is part of the state digest. `state_digest` reads
the three components' canonical rows back and hashes them the way the in-memory digest does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from runtime.rtdl.digest import SECTIONS, rows_digest
from runtime.rtdl.events import Watermarks
from runtime.worker.records import InputRecord

#: (topic, partition, counter) -> increment.
CounterDeltas = dict[tuple[str, str, str], int]


def partition_of(record: InputRecord) -> tuple[str, str]:
    """The (topic, partition) a record was read from, as the watermark and counter tables key it."""
    return (record.eb_ref.topic, str(record.eb_ref.partition))


def load_watermarks(conn: Any, platform_run_id: str, component: str, partitions: Iterable[tuple[str, str]]) -> Watermarks:
    """The stored watermarks of `partitions` as a domain `Watermarks` (late counts start at 0, so
    after observing a batch `late` holds the batch's late events only)."""
    keys = sorted(set(partitions))
    marks = Watermarks()
    if not keys:
        return marks
    rows = conn.execute(
        "SELECT topic, partition, max_event_ts_micros FROM rtdl_watermarks"
        " WHERE platform_run_id = %s AND component = %s AND (topic, partition) IN"
        " (SELECT * FROM unnest(%b::text[], %b::text[]))",
        (platform_run_id, component, [k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    for topic, partition, max_ts in rows:
        marks.max_seen[(topic, partition)] = int(max_ts)
    return marks


def save_watermarks(conn: Any, platform_run_id: str, component: str, marks: Watermarks) -> None:
    """Persist what a batch observed: max event time never moves back, late counts add up."""
    rows = marks.rows()
    if not rows:
        return
    conn.execute(
        "INSERT INTO rtdl_watermarks AS w (platform_run_id, component, topic, partition, max_event_ts_micros, late_events)"
        " SELECT %s, %s, t, p, m, l FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[]) AS u(t, p, m, l)"
        " ON CONFLICT (platform_run_id, component, topic, partition) DO UPDATE SET"
        " max_event_ts_micros = GREATEST(w.max_event_ts_micros, excluded.max_event_ts_micros),"
        " late_events = w.late_events + excluded.late_events, updated_at = now()",
        (platform_run_id, component, [r["topic"] for r in rows], [r["partition"] for r in rows],
         [r["max_event_ts_micros"] for r in rows], [r["late_events"] for r in rows]),
    )


def watermark_rows(conn: Any, platform_run_id: str, component: str) -> list[dict[str, Any]]:
    """Every partition's watermark row of a component (for health, caught_up.json and tests)."""
    rows = conn.execute(
        "SELECT topic, partition, max_event_ts_micros, late_events FROM rtdl_watermarks"
        " WHERE platform_run_id = %s AND component = %s ORDER BY topic, partition",
        (platform_run_id, component),
    ).fetchall()
    return [{"topic": r[0], "partition": r[1], "max_event_ts_micros": int(r[2]), "late_events": int(r[3])} for r in rows]


def complete_up_to(conn: Any, platform_run_id: str, component: str,
                   partitions: list[tuple[str, int | str]] | None = None) -> int | None:
    """Event time (micros) up to which a component's store is complete: the minimum watermark over
    `partitions` (default: every partition it has read); None while any has delivered nothing.
    What DF waits on before deciding an event with complete inputs."""
    marks = Watermarks()
    for row in watermark_rows(conn, platform_run_id, component):
        marks.max_seen[(row["topic"], row["partition"])] = row["max_event_ts_micros"]
    return marks.complete_up_to(partitions)


def add_counters(conn: Any, platform_run_id: str, component: str, deltas: CounterDeltas) -> None:
    """Add a batch's counter increments (zero increments are not written)."""
    items = sorted((k, v) for k, v in deltas.items() if v)
    if not items:
        return
    conn.execute(
        "INSERT INTO rtdl_counters AS c (platform_run_id, component, topic, partition, counter, value)"
        " SELECT %s, %s, t, p, n, v FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[]) AS u(t, p, n, v)"
        " ON CONFLICT (platform_run_id, component, topic, partition, counter) DO UPDATE SET value = c.value + excluded.value",
        (platform_run_id, component, [k[0] for k, _ in items], [k[1] for k, _ in items], [k[2] for k, _ in items],
         [v for _, v in items]),
    )


def bump(deltas: CounterDeltas, topic: str, partition: str, name: str, by: int = 1) -> None:
    """Add `by` to counter `name` of (topic, partition) in a batch's deltas."""
    key = (topic, partition, name)
    deltas[key] = deltas.get(key, 0) + by


def counter_totals(conn: Any, platform_run_id: str, component: str) -> dict[str, int]:
    """A component's counters summed over its partitions, by name."""
    rows = conn.execute(
        "SELECT counter, sum(value) FROM rtdl_counters WHERE platform_run_id = %s AND component = %s GROUP BY counter ORDER BY 1",
        (platform_run_id, component),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def has_progress(conn: Any, platform_run_id: str, component: str) -> bool:
    """Whether a component recorded any watermark or counter for the run."""
    row = conn.execute("SELECT 1 FROM rtdl_watermarks WHERE platform_run_id = %s AND component = %s UNION ALL"
                       " SELECT 1 FROM rtdl_counters WHERE platform_run_id = %s AND component = %s LIMIT 1",
                       (platform_run_id, component, platform_run_id, component)).fetchone()
    return row is not None


def section_stream(conn: Any, platform_run_id: str, section: str) -> Iterator[dict[str, Any]]:
    """The canonical rows of one digest section, streamed from its store."""
    from runtime.rtdl.csfb import store as csfb_store
    from runtime.rtdl.ieg import store as ieg_store
    from runtime.rtdl.ofp import store as ofp_store

    readers = {"ofp": ofp_store.state_rows, "ieg": ieg_store.state_rows, "csfb": csfb_store.state_rows}
    return iter(readers[section](conn, platform_run_id))


def section_rows(conn: Any, platform_run_id: str, section: str) -> list[dict[str, Any]]:
    """The canonical rows of one digest section read from its store."""
    return list(section_stream(conn, platform_run_id, section))


def state_digest(conn: Any, platform_run_id: str, sections: Iterable[str] = SECTIONS) -> str:
    """The RTDL state digest of a run read from Postgres: equal to `digest.state_digest` of the
    in-memory states fed the same events (P8's `state_digest`, and what a rebuild must reproduce)."""
    return rows_digest({name: section_stream(conn, platform_run_id, name) for name in sections})  # streamed: millions of rows at full cap
