"""OFP's Postgres adapter: event facts in `rtdl_ofp_facts` (migration 0501) and the point-in-time read.

Writes are a COPY into a session stage and one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` per
batch, so a redelivered event writes nothing. `features_as_of` is one statement: an index range
scan of the entity's facts in the 24 h before the event (the primary key covers every column it
needs) reduced in the server to each window's integer aggregates, which the domain's
`assemble_features` turns into features: the answer equals the in-memory store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.db.postgres import copy_to_stage
from runtime.rtdl.events import TRAFFIC_CLASSES, admitted
from runtime.rtdl.ofp.domain import (
    DEFAULT_GRACE_MICROS,
    HORIZON_MICROS,
    WINDOWS,
    EntityFacts,
    EntityFeatures,
    EventFact,
    WindowSums,
    assemble_features,
    facts_of,
)

_COLUMNS = ("entity_kind", "entity_id", "ts_micros", "event_id", "amount_minor", "merchant_id", "merchant_country", "device_id",
            "is_p2p", "is_round")


_STAGE = ("rtdl_ofp_facts_stage", "k text, i text, t bigint, e text, a bigint, m text, c text, d text, p boolean, r boolean")


def insert_facts(conn: Any, platform_run_id: str, facts: list[EventFact]) -> set[str]:
    """Insert facts (COPY into a stage, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`);
    returns the event ids that wrote at least one new fact."""
    if not facts:
        return set()
    copy_to_stage(conn, *_STAGE, ((f.entity_kind, f.entity_id, f.ts_micros, f.event_id, f.amount_minor, f.merchant_id,
                                   f.merchant_country, f.device_id, f.is_p2p, f.is_round) for f in facts))
    rows = conn.execute(
        f"WITH s AS (DELETE FROM {_STAGE[0]} RETURNING *)"
        " INSERT INTO rtdl_ofp_facts (platform_run_id, entity_kind, entity_id, ts_micros, event_id, amount_minor, merchant_id,"
        " merchant_country, device_id, is_p2p, is_round) SELECT %s, k, i, t, e, a, m, c, d, p, r FROM s"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        (platform_run_id,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def entity_facts(conn: Any, platform_run_id: str, entity_kind: str, entity_id: str, ts_micros: int, event_id: str) -> EntityFacts:
    """The entity's facts inside the 24 h window before (ts, event_id), that event's own fact
    included (it gives the amount and attributes the baseline ratio and first-seen flags use)."""
    rows = conn.execute(
        "SELECT ts_micros, event_id, amount_minor, merchant_id, merchant_country, device_id, is_p2p, is_round"
        " FROM rtdl_ofp_facts WHERE platform_run_id = %s AND entity_kind = %s AND entity_id = %s"
        " AND ts_micros > %s AND (ts_micros, event_id) <= (%s, %s) ORDER BY ts_micros, event_id",
        (platform_run_id, entity_kind, entity_id, ts_micros - HORIZON_MICROS, ts_micros, event_id),
    ).fetchall()
    return EntityFacts.from_sorted_rows(rows)


def _window_sql() -> str:
    """The point-in-time read as ONE statement: the entity's facts strictly before the event inside
    the horizon (one index range scan, materialised once), reduced in the server to each window's
    integer aggregates; distinct counts count the values whose last occurrence before the event
    falls inside the window (one hash aggregate per attribute). Only one row crosses the wire,
    whatever the entity's volume."""
    bounds = [f"%(b{i})s" for i in range(len(WINDOWS))]
    scalars = ", ".join(
        f"count(*) FILTER (WHERE t > {b}), coalesce(sum(a) FILTER (WHERE t > {b}), 0)::bigint,"
        f" coalesce(max(a) FILTER (WHERE t > {b}), 0), count(*) FILTER (WHERE p AND t > {b}),"
        f" count(*) FILTER (WHERE o AND t > {b})" for b in bounds)
    def distinct(column: str) -> str:
        counts = ", ".join(f"count(*) FILTER (WHERE last > {b})" for b in bounds)
        return f"(SELECT ARRAY[{counts}] FROM (SELECT max(t) AS last FROM r GROUP BY {column}) AS g)"
    return (
        "WITH r AS MATERIALIZED (SELECT ts_micros AS t, amount_minor AS a, merchant_id AS m, merchant_country AS c,"
        " device_id AS d, is_p2p AS p, is_round AS o FROM rtdl_ofp_facts WHERE platform_run_id = %(run)s"
        " AND entity_kind = %(kind)s AND entity_id = %(id)s AND ts_micros > %(lo)s AND (ts_micros, event_id) < (%(ts)s, %(eid)s))"
        f" SELECT (SELECT ARRAY[{scalars}, coalesce(max(t), 0), coalesce(bool_or(m = %(cm)s), false)::int,"
        " coalesce(bool_or(d = %(cd)s), false)::int, coalesce(bool_or(c = %(cc)s), false)::int] FROM r),"
        f" {distinct('m')}, {distinct('c')}, {distinct('d')}"
    )


_WINDOW_SQL = _window_sql()


def own_fact(conn: Any, platform_run_id: str, entity_kind: str, entity_id: str, ts_micros: int, event_id: str) -> EventFact | None:
    """The entity's fact of event (ts, event_id), None when the event is not applied (yet)."""
    row = conn.execute(
        "SELECT amount_minor, merchant_id, merchant_country, device_id, is_p2p, is_round FROM rtdl_ofp_facts"
        " WHERE platform_run_id = %s AND entity_kind = %s AND entity_id = %s AND ts_micros = %s AND event_id = %s",
        (platform_run_id, entity_kind, entity_id, ts_micros, event_id),
    ).fetchone()
    if row is None:
        return None
    return EventFact(entity_kind, entity_id, ts_micros, event_id, int(row[0]), row[1], row[2], row[3], bool(row[4]), bool(row[5]))


def features_as_of(conn: Any, platform_run_id: str, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                   current: EventFact | None = None) -> EntityFeatures:
    """Point-in-time features of one entity as of event (ts, event_id): only facts strictly before
    it count. One statement reduces the entity's horizon in the server to each window's integer
    aggregates, assembled by the domain's `assemble_features` (the answer equals the domain
    function over the same facts; tests prove it)."""
    if current is None:
        current = own_fact(conn, platform_run_id, entity_kind, entity_id, ts_micros, event_id)
    params: dict[str, Any] = {"run": platform_run_id, "kind": entity_kind, "id": entity_id, "lo": ts_micros - HORIZON_MICROS,
                              "ts": ts_micros, "eid": event_id, "cm": current.merchant_id if current else None,
                              "cd": current.device_id if current else None, "cc": current.merchant_country if current else None}
    params.update({f"b{i}": ts_micros - length for i, (_, length) in enumerate(WINDOWS)})
    row = conn.execute(_WINDOW_SQL, params).fetchone()
    scalars, merchants, countries, devices = (list(map(int, column)) for column in row)
    windows = []
    for i in range(len(WINDOWS)):
        count, amount_sum, amount_max, p2p, rounds = scalars[5 * i:5 * i + 5]
        windows.append(WindowSums(count, amount_sum, amount_max, merchants[i], countries[i], devices[i], p2p, rounds))
    previous, seen = scalars[5 * len(WINDOWS)], scalars[5 * len(WINDOWS) + 1:]
    return assemble_features(entity_kind, entity_id, ts_micros, event_id, windows, previous if windows[-1].count else None, current,
                             None if current is None else (bool(seen[0]), bool(seen[1]), bool(seen[2])))


def event_features(conn: Any, platform_run_id: str, envelope: dict[str, Any]) -> dict[str, EntityFeatures]:
    """Features of every entity of one traffic event as of that event (what DF asks OFP for)."""
    event = admitted(envelope, expect=TRAFFIC_CLASSES)
    return {f.entity_kind: features_as_of(conn, platform_run_id, f.entity_kind, f.entity_id, f.ts_micros, f.event_id, f)
            for f in facts_of(event)}


def newest_ts_micros(conn: Any, platform_run_id: str) -> int | None:
    """The run's newest fact time (None before the first)."""
    row = conn.execute("SELECT max(ts_micros) FROM rtdl_ofp_facts WHERE platform_run_id = %s", (platform_run_id,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def retention_cutoff(conn: Any, platform_run_id: str, grace_micros: int = DEFAULT_GRACE_MICROS) -> int | None:
    """Facts strictly older than this are outside the horizon (24 h + grace before the newest)."""
    newest = newest_ts_micros(conn, platform_run_id)
    return None if newest is None else newest - HORIZON_MICROS - grace_micros


def evict(conn: Any, platform_run_id: str, grace_micros: int = DEFAULT_GRACE_MICROS) -> int:
    """Delete the run's facts outside the horizon; returns how many went."""
    cutoff = retention_cutoff(conn, platform_run_id, grace_micros)
    if cutoff is None:
        return 0
    return int(conn.execute("DELETE FROM rtdl_ofp_facts WHERE platform_run_id = %s AND ts_micros < %s",
                            (platform_run_id, cutoff)).rowcount)


def state_rows(conn: Any, platform_run_id: str, grace_micros: int = DEFAULT_GRACE_MICROS) -> Iterator[dict[str, Any]]:
    """The OFP digest rows: every fact inside the horizon, as `OfpState.canonical_rows` gives them."""
    cutoff = retention_cutoff(conn, platform_run_id, grace_micros)
    if cutoff is None:
        return
    cursor = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM rtdl_ofp_facts WHERE platform_run_id = %s AND ts_micros >= %s",
        (platform_run_id, cutoff),
    )
    for row in cursor:
        yield EventFact.from_row(dict(zip(_COLUMNS, row, strict=True))).to_row()


def has_state(conn: Any, platform_run_id: str) -> bool:
    """Whether the run has any OFP fact (a rebuild refuses to write over one)."""
    return conn.execute("SELECT 1 FROM rtdl_ofp_facts WHERE platform_run_id = %s LIMIT 1", (platform_run_id,)).fetchone() is not None
