"""OFP's Postgres adapter: event facts in `rtdl_ofp_facts` (migration 0501) and the point-in-time read.

Writes are a COPY into a session stage and one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` per
batch, so a redelivered event writes nothing. For the busy entity kinds (`MAINTAINED_KINDS`:
merchants) the same transaction keeps the bounded-read index of migration 0504
(runtime/rtdl/ofp/blocks.py): a chain row per new fact linked to its same-value neighbours, and
the 10-minute block rows. `features_as_of` is one statement either way: for a maintained entity
the raw facts of at most four blocks plus at most 143 block rows (whatever the entity's volume);
for the others an index range scan of the entity's facts in the 24 h before the event (the
primary key covers every column it needs). The server reduces them to each window's integer
aggregates, which the domain's `assemble_features` turns into features: the answer equals the
in-memory store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.db.postgres import copy_to_stage, stream_rows
from runtime.rtdl.digest import STATE_ROWS_BATCH
from runtime.rtdl.events import TRAFFIC_CLASSES, admitted
from runtime.rtdl.ofp.blocks import (
    BLOCK_MICROS,
    LINK_COLUMNS,
    LINKED_ATTRIBUTES,
    MAINTAINED_KINDS,
    SPAN_BLOCKS,
    LinkPlan,
    Neighbours,
    block_of,
    block_start,
    merge_neighbours,
    plan_links,
    window_bounds,
)
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
    new = {str(r[0]) for r in rows}
    maintained = {(f.entity_kind, f.entity_id, f.order_key): f for f in facts if f.entity_kind in MAINTAINED_KINDS and f.event_id in new}
    if maintained:
        link_facts(conn, platform_run_id, list(maintained.values()))
    return new


_PROBE_STAGE = ("rtdl_ofp_probe_stage", "k text, i text, t bigint, e text, c text, d text")
_CHAIN_STAGE = ("rtdl_ofp_chain_stage", "k text, i text, t bigint, e text, a bigint, m text, c text, d text, p boolean, r boolean, "
                + ", ".join(f"v{n} bigint" for n in range(len(LINK_COLUMNS))))
_LINK_STAGE = ("rtdl_ofp_link_stage", "k text, i text, t bigint, e text, "
               + ", ".join(f"v{n} bigint, s{n} boolean" for n in range(len(LINK_COLUMNS))))
_BLOCK_STAGE = ("rtdl_ofp_block_stage", "k text, i text, b bigint, n bigint, a bigint, x bigint, p bigint, r bigint, "
                + ", ".join(f"{a[0]} int[]" for a in LINKED_ATTRIBUTES))
_VALUE_COLUMNS = {"country": "merchant_country", "device": "device_id"}


def _neighbour_sql(value: str, earlier: bool, extra: str, outer: tuple[str, str, str, str, str]) -> str:
    """The nearest chain row of the same (value, entity) before (`earlier`) or after a point: ONE
    probe of the value's index, `(value, kind, id, ts, event_id)` compared as a row and ordered
    like the index, so no plan (with or without statistics) can take the primary key and filter
    its way through the entity's facts; the row found counts only if it has the same value and
    entity. `outer` names the value, kind, id, ts and event id it is compared with; `extra` is one
    more column to return, as `prev`."""
    key = f"{value}, entity_kind, entity_id, ts_micros, event_id"
    order = ", ".join(f"{c} DESC" for c in key.split(", ")) if earlier else key
    inner, columns = (f"{key}, {extra} AS prev", "x.ts_micros, x.event_id, x.prev") if extra else (key, "x.ts_micros, x.event_id")
    return (f"(SELECT {columns} FROM (SELECT {inner} FROM rtdl_ofp_chain WHERE platform_run_id = %s"
            f" AND ({key}) {'<' if earlier else '>'} ({', '.join(outer)}) ORDER BY {order} LIMIT 1) AS x"
            f" WHERE x.{value} = {outer[0]} AND x.entity_kind = {outer[1]} AND x.entity_id = {outer[2]})")


def _probe_sql() -> str:
    """Each staged new fact with, per attribute, its previous and next same-value fact among the
    facts held before the batch and that next one's stored previous time: two index probes per
    attribute (`_neighbour_sql`)."""
    joins, columns = [], []
    for n, attribute in enumerate(LINKED_ATTRIBUTES):
        outer = (f"u.{attribute[0]}", "u.k", "u.i", "u.t", "u.e")
        value = _VALUE_COLUMNS[attribute]
        joins.append(f" LEFT JOIN LATERAL {_neighbour_sql(value, True, '', outer)} AS p{n} ON true"
                     f" LEFT JOIN LATERAL {_neighbour_sql(value, False, f'{attribute}_prev_ts', outer)} AS n{n} ON true")
        columns.append(f"p{n}.ts_micros, p{n}.event_id, n{n}.ts_micros, n{n}.event_id, n{n}.prev")
    return (f"WITH u AS (DELETE FROM {_PROBE_STAGE[0]} RETURNING *) SELECT u.k, u.i, u.t, u.e, "
            + ", ".join(columns) + " FROM u" + "".join(joins))


_PROBE_SQL = _probe_sql()


def _write_sql() -> str:
    """A batch's index writes as ONE statement from the three stages: the new chain rows with
    their links, the held neighbours' changed links (CASE per column: only the flagged ones), and
    the block rows (new rows start from zero; sums add, the max is the larger, each firsts entry
    adds its change: one parallel unnest of the stored and the staged array)."""
    links = ", ".join(LINK_COLUMNS)
    sets = ", ".join(f"{column} = CASE WHEN l.s{n} THEN l.v{n} ELSE c.{column} END" for n, column in enumerate(LINK_COLUMNS))
    firsts = [f"{a}_firsts" for a in LINKED_ATTRIBUTES]
    added = ", ".join(f"{f} = ARRAY(SELECT u.v + u.c FROM unnest(b.{f}, excluded.{f}) WITH ORDINALITY AS u(v, c, k) ORDER BY u.k)"
                      for f in firsts)
    return (
        f"WITH s AS (DELETE FROM {_CHAIN_STAGE[0]} RETURNING *), l AS (DELETE FROM {_LINK_STAGE[0]} RETURNING *),"
        f" bs AS (DELETE FROM {_BLOCK_STAGE[0]} RETURNING *),"
        " chain AS (INSERT INTO rtdl_ofp_chain (platform_run_id, entity_kind, entity_id, ts_micros, event_id, amount_minor,"
        f" merchant_id, merchant_country, device_id, is_p2p, is_round, {links}) SELECT %(run)s, k, i, t, e, a, m, c, d, p, r,"
        f" {', '.join(f'v{n}' for n in range(len(LINK_COLUMNS)))} FROM s ON CONFLICT DO NOTHING RETURNING 1),"
        f" held AS (UPDATE rtdl_ofp_chain AS c SET {sets} FROM l WHERE c.platform_run_id = %(run)s AND c.entity_kind = l.k"
        " AND c.entity_id = l.i AND c.ts_micros = l.t AND c.event_id = l.e RETURNING 1),"
        " blocks AS (INSERT INTO rtdl_ofp_blocks AS b (platform_run_id, entity_kind, entity_id, block, fact_count, amount_sum,"
        f" amount_max, p2p_count, round_count, {', '.join(firsts)}) SELECT %(run)s, k, i, b, n, a, x, p, r,"
        f" {', '.join(f'coalesce({a[0]}, z)' for a in LINKED_ATTRIBUTES)} FROM bs, array_fill(0, ARRAY[%(span)s::int]) AS z"
        " ON CONFLICT (platform_run_id, entity_kind, entity_id, block) DO UPDATE SET fact_count = b.fact_count + excluded.fact_count,"
        " amount_sum = b.amount_sum + excluded.amount_sum, amount_max = greatest(b.amount_max, excluded.amount_max),"
        " p2p_count = b.p2p_count + excluded.p2p_count, round_count = b.round_count + excluded.round_count,"
        f" {added} RETURNING 1)"
        " SELECT (SELECT count(*) FROM chain), (SELECT count(*) FROM held), (SELECT count(*) FROM blocks)"
    )


_WRITE_SQL = _write_sql()


def link_facts(conn: Any, platform_run_id: str, facts: list[EventFact]) -> LinkPlan:
    """Write the bounded-read index of NEW facts of maintained kinds (already in `rtdl_ofp_facts`):
    probe each one's same-value neighbours among the chain rows held so far, merge in the batch
    (`merge_neighbours`), insert the chain rows with their links, and update the held neighbours'
    links and the block rows as `plan_links` says: afterwards the chain and block rows are what the
    set of facts defines, whatever the order facts arrived in."""
    copy_to_stage(conn, *_PROBE_STAGE, ((f.entity_kind, f.entity_id, f.ts_micros, f.event_id, f.merchant_country, f.device_id)
                                        for f in facts))
    existing: dict[tuple[tuple[str, str], tuple[int, str], str], Neighbours] = {}
    for row in conn.execute(_PROBE_SQL, (platform_run_id,) * (2 * len(LINKED_ATTRIBUTES))).fetchall():
        entity, key = (str(row[0]), str(row[1])), (int(row[2]), str(row[3]))
        for n, attribute in enumerate(LINKED_ATTRIBUTES):
            pt, pe, nt, ne, stored = row[4 + 5 * n:9 + 5 * n]
            existing[(entity, key, attribute)] = Neighbours(
                None if pt is None else (int(pt), str(pe)), None if nt is None else (int(nt), str(ne)),
                None if stored is None else int(stored))
    plan = plan_links(facts, merge_neighbours(facts, existing))
    new = {((f.entity_kind, f.entity_id), f.order_key) for f in facts}
    copy_to_stage(conn, *_CHAIN_STAGE, (
        (f.entity_kind, f.entity_id, f.ts_micros, f.event_id, f.amount_minor, f.merchant_id, f.merchant_country, f.device_id,
         f.is_p2p, f.is_round, *(plan.links[((f.entity_kind, f.entity_id), f.order_key)][c] for c in LINK_COLUMNS)) for f in facts))
    copy_to_stage(conn, *_LINK_STAGE, (
        (entity[0], entity[1], key[0], key[1], *(x for column in LINK_COLUMNS for x in (columns.get(column), column in columns)))
        for (entity, key), columns in plan.links.items() if (entity, key) not in new))
    copy_to_stage(conn, *_BLOCK_STAGE, (
        (entity[0], entity[1], block, d.count, d.amount_sum, d.amount_max, d.p2p, d.rounds, *(d.entries(a) for a in LINKED_ATTRIBUTES))
        for (entity, block), d in plan.blocks.items()))
    conn.execute(_WRITE_SQL, {"run": platform_run_id, "span": SPAN_BLOCKS})
    return plan


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


def _seen_sql(value: str, given: str) -> str:
    """Whether the entity has a fact with this value in the 24 h before the event: its first such
    fact after the day's start (one probe of the value's index, as in `_neighbour_sql`) is before
    the event."""
    key = f"{value}, entity_kind, entity_id, ts_micros, event_id"
    return (f"(SELECT (x.ts_micros, x.event_id) < (%(ts)s, %(eid)s) FROM q, LATERAL (SELECT {key} FROM rtdl_ofp_chain"
            f" WHERE platform_run_id = %(run)s AND ({value}, entity_kind, entity_id, ts_micros) > ({given}, %(kind)s, %(id)s, %(day)s)"
            f" ORDER BY {key} LIMIT 1) AS x WHERE x.{value} = {given} AND x.entity_kind = %(kind)s AND x.entity_id = %(id)s)")


def _bounded_sql() -> str:
    """The bounded point-in-time read of a maintained entity as ONE statement (runtime/rtdl/ofp/
    blocks.py; its `bounded_window_sums` computes the same in Python), the windows as rows `w`
    (lo, low block, low block's end). Per window whose low block is before the event's block, that
    block's chain rows: facts after lo (sums; distinct: previous same-value fact at or before lo)
    and facts at or before lo whose next same-value fact lies in a middle block. The event's block
    read once (facts before the event), every window filtering it. The block rows strictly between
    the lowest low block and the event's block, each window summing those after its own low block
    (`firsts[block - low block]` for the distinct counts). Also the previous fact in 24 h, the
    first-seen probes and the event's own fact: a handful of rows cross the wire, whatever the
    entity's volume. (Kept short: psycopg caches the parsing of statements under 4 kB only.)"""
    entity = "platform_run_id = %(run)s AND entity_kind = %(kind)s AND entity_id = %(id)s"
    before = "(ts_micros, event_id) < (%(ts)s, %(eid)s)"
    attrs = [a[0] for a in LINKED_ATTRIBUTES]
    def sums(after: str, prefix: str = "") -> list[str]:
        return [f"count(*) FILTER (WHERE {after})", f"sum({prefix}a) FILTER (WHERE {after})", f"max({prefix}a) FILTER (WHERE {after})",
                f"count(*) FILTER (WHERE {after} AND {prefix}p)", f"count(*) FILTER (WHERE {after} AND {prefix}o)"]
    low = sums("c.t > w.lo", "c.") + [f"count(*) FILTER (WHERE c.t > w.lo AND (c.{x}p IS NULL OR c.{x}p <= w.lo))"
                                      f" + count(*) FILTER (WHERE c.t <= w.lo AND c.{x}n >= w.le AND c.{x}n < %(top)s)" for x in attrs]
    top = sums("t > w.lo") + [f"count(*) FILTER (WHERE t > w.lo AND ({x}p IS NULL OR {x}p <= w.lo))" for x in attrs]
    middle = ["sum(n)", "sum(s)", "max(x)", "sum(p)", "sum(o)"] + [f"sum(f{x}[b - w.lb])" for x in attrs]
    def per_window(columns: list[str], source: str) -> str:
        return f"(SELECT array_agg(v) FROM (SELECT ARRAY[w.i, {', '.join(columns)}]::int8[] AS v FROM {source} GROUP BY w.i) AS g)"
    links = ", ".join(f"{a}_prev_ts AS {a[0]}p, {a}_next_ts AS {a[0]}n" for a in LINKED_ATTRIBUTES)
    firsts = ", ".join(f"{a}_firsts AS f{a[0]}" for a in LINKED_ATTRIBUTES)
    seen = ", ".join(_seen_sql(_VALUE_COLUMNS[a], f"q.{a[0]}") for a in LINKED_ATTRIBUTES)
    return (
        "WITH own AS MATERIALIZED (SELECT amount_minor, merchant_id, merchant_country, device_id, is_p2p, is_round FROM rtdl_ofp_chain"
        f" WHERE {entity} AND ts_micros = %(ts)s AND event_id = %(eid)s),"
        " q AS MATERIALIZED (SELECT coalesce(%(vc)s, (SELECT merchant_country FROM own)) AS c,"
        " coalesce(%(vd)s, (SELECT device_id FROM own)) AS d),"
        " w AS MATERIALIZED (SELECT * FROM unnest(%(lo)s::int8[], %(lb)s::int8[]) WITH ORDINALITY AS w(lo, lb, i), LATERAL"
        f" (SELECT (w.lb + 1) * {BLOCK_MICROS}::int8 AS le) AS e),"
        " top AS MATERIALIZED (SELECT ts_micros AS t, amount_minor AS a, is_p2p AS p, is_round AS o, "
        + ", ".join(f"{a}_prev_ts AS {a[0]}p" for a in LINKED_ATTRIBUTES) + f" FROM rtdl_ofp_chain WHERE {entity}"
        f" AND ts_micros >= %(top)s AND {before}),"
        f" m AS MATERIALIZED (SELECT block AS b, fact_count AS n, amount_sum AS s, amount_max AS x, p2p_count AS p, round_count AS o,"
        f" {firsts} FROM rtdl_ofp_blocks WHERE {entity} AND block > %(bmin)s AND block < %(btop)s)"
        " SELECT " + per_window(low, "w CROSS JOIN LATERAL (SELECT ts_micros AS t, amount_minor AS a, is_p2p AS p, is_round AS o,"
                                 f" {links} FROM rtdl_ofp_chain WHERE {entity} AND ts_micros >= w.lb * {BLOCK_MICROS}::int8"
                                 " AND ts_micros < w.le AND w.lb < %(btop)s OFFSET 0) AS c")
        + ", " + per_window(top, "w CROSS JOIN top") + ", " + per_window(middle, "w JOIN m ON m.b > w.lb")
        + f", (SELECT ts_micros FROM rtdl_ofp_chain WHERE {entity} AND ts_micros > %(day)s AND {before}"
        f" ORDER BY ts_micros DESC, event_id DESC LIMIT 1), {seen}, (SELECT ARRAY[amount_minor::text, merchant_id, merchant_country,"
        " device_id, is_p2p::text, is_round::text] FROM own)"
    )
_BOUNDED_SQL = _bounded_sql()


def bounded_features(conn: Any, platform_run_id: str, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                     current: EventFact | None) -> EntityFeatures:
    """Point-in-time features of a maintained entity (one bounded statement, `_bounded_sql`); the
    event's own fact comes from the same statement when `current` is not given."""
    bounds = window_bounds(ts_micros)
    row = conn.execute(_BOUNDED_SQL, {
        "run": platform_run_id, "kind": entity_kind, "id": entity_id, "ts": ts_micros, "eid": event_id,
        "lo": [w.lo for w in bounds], "lb": [w.low_block for w in bounds], "top": bounds[0].top_start,
        "btop": bounds[0].top_block, "bmin": min(w.low_block for w in bounds), "day": bounds[-1].lo,
        "vc": current.merchant_country if current else None, "vd": current.device_id if current else None}).fetchone()
    parts = [{int(r[0]) - 1: [v or 0 for v in r[1:]] for r in rows or ()} for rows in row[:3]]
    previous, seen_c, seen_d, own = row[3:]
    if current is None and own is not None:
        current = EventFact(entity_kind, entity_id, ts_micros, event_id, int(own[0]), own[1], own[2], own[3], own[4] == "true",
                            own[5] == "true")
    zero = [0] * (5 + len(LINKED_ATTRIBUTES))
    windows = []
    for i in range(len(WINDOWS)):
        low, top, middle = (part.get(i, zero) for part in parts)
        count = low[0] + top[0] + middle[0]
        windows.append(WindowSums(count, low[1] + top[1] + middle[1], max(low[2], top[2], middle[2]), min(count, 1),
                                  low[5] + top[5] + middle[5], low[6] + top[6] + middle[6], low[3] + top[3] + middle[3],
                                  low[4] + top[4] + middle[4]))  # a merchant's distinct merchants: itself, once it has a fact
    seen = None
    if current is not None:
        seen = (current.merchant_id == entity_id and windows[-1].count > 0, bool(seen_d), bool(seen_c))
    return assemble_features(entity_kind, entity_id, ts_micros, event_id, windows, None if previous is None else int(previous),
                             current, seen)


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
    if entity_kind in MAINTAINED_KINDS:
        return bounded_features(conn, platform_run_id, entity_kind, entity_id, ts_micros, event_id, current)
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
    """Delete the run's facts outside the horizon, from the start of the retention cutoff's block
    down (whole blocks, so a kept block row still aggregates exactly the facts kept; the digest
    cuts at the cutoff itself), with their chain and block rows; returns how many facts went."""
    cutoff = retention_cutoff(conn, platform_run_id, grace_micros)
    if cutoff is None:
        return 0
    block = block_of(cutoff)
    conn.execute(
        "WITH b AS (DELETE FROM rtdl_ofp_blocks WHERE platform_run_id = %(run)s AND block < %(block)s RETURNING entity_kind, entity_id)"
        " DELETE FROM rtdl_ofp_chain AS c USING (SELECT DISTINCT entity_kind, entity_id FROM b) AS e WHERE c.platform_run_id = %(run)s"
        " AND c.entity_kind = e.entity_kind AND c.entity_id = e.entity_id AND c.ts_micros < %(start)s",
        {"run": platform_run_id, "block": block, "start": block_start(block)})
    return int(conn.execute("DELETE FROM rtdl_ofp_facts WHERE platform_run_id = %s AND ts_micros < %s",
                            (platform_run_id, block_start(block))).rowcount)


def state_rows(conn: Any, platform_run_id: str, grace_micros: int = DEFAULT_GRACE_MICROS) -> Iterator[dict[str, Any]]:
    """The OFP digest rows: every fact inside the horizon, as `OfpState.canonical_rows` gives them."""
    cutoff = retention_cutoff(conn, platform_run_id, grace_micros)
    if cutoff is None:
        return
    for row in stream_rows(conn, f"SELECT {', '.join(_COLUMNS)} FROM rtdl_ofp_facts WHERE platform_run_id = %s"
                           " AND ts_micros >= %s", (platform_run_id, cutoff), batch=STATE_ROWS_BATCH):
        yield EventFact.from_row(dict(zip(_COLUMNS, row, strict=True))).to_row()


def has_state(conn: Any, platform_run_id: str) -> bool:
    """Whether the run has any OFP fact (a rebuild refuses to write over one)."""
    return conn.execute("SELECT 1 FROM rtdl_ofp_facts WHERE platform_run_id = %s LIMIT 1", (platform_run_id,)).fetchone() is not None
