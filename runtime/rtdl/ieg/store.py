"""IEG's Postgres adapter: entities and edges (migration 0502), merged and queried as of an event.

A batch is first merged in memory by the domain (`IegState`: one first/last seen per key), then
written with ONE upsert per table whose update keeps the smaller first and the larger last
(ts, event_id): redelivery and any order give the same rows. Rows are written in key order so two
members of a consumer group lock shared keys in the same order. Neighbour queries count only edges
first seen strictly before the event they are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.db.postgres import copy_to_stage, stream_rows
from runtime.rtdl import store as progress
from runtime.rtdl.digest import STATE_ROWS_BATCH
from runtime.rtdl.events import micros_to_iso
from runtime.rtdl.ieg.domain import ClassCounts, EdgeKey, EntityKey, OrderKey, Seen, reconcile

COMPONENT = "ieg"
#: Counter names of the reconciliation counts: `<name>.<event_class>`.
RECONCILIATION_COUNTERS = ("records_in", "entity_writes", "edge_writes")

_MERGE = (
    " ON CONFLICT ({key}) DO UPDATE SET"
    " first_ts_micros = CASE WHEN {first_new} < {first_old} THEN excluded.first_ts_micros ELSE t.first_ts_micros END,"
    " first_event_id = CASE WHEN {first_new} < {first_old} THEN excluded.first_event_id ELSE t.first_event_id END,"
    " last_ts_micros = CASE WHEN {last_new} > {last_old} THEN excluded.last_ts_micros ELSE t.last_ts_micros END,"
    " last_event_id = CASE WHEN {last_new} > {last_old} THEN excluded.last_event_id ELSE t.last_event_id END"
    " WHERE {first_new} < {first_old} OR {last_new} > {last_old}"
).format(key="{key}", first_new="(excluded.first_ts_micros, excluded.first_event_id)",
         first_old="(t.first_ts_micros, t.first_event_id)", last_new="(excluded.last_ts_micros, excluded.last_event_id)",
         last_old="(t.last_ts_micros, t.last_event_id)")


_SEEN_STAGE = "ft bigint, fe text, lt bigint, le text, n integer"
_ENTITY_STAGE = ("rtdl_ieg_entities_stage", "k text, i text, " + _SEEN_STAGE)
_EDGE_STAGE = ("rtdl_ieg_edges_stage", "fk text, fi text, r text, tk text, ti text, " + _SEEN_STAGE)


def merge_entities(conn: Any, platform_run_id: str, entities: dict[EntityKey, Seen]) -> None:
    """Widen first/last seen of `entities` (COPY into a stage, then one upsert in key order)."""
    items = sorted(entities.items())
    if not items:
        return
    copy_to_stage(conn, *_ENTITY_STAGE, ((*key, *seen.first, *seen.last, n) for n, (key, seen) in enumerate(items)))
    conn.execute(
        f"WITH s AS (DELETE FROM {_ENTITY_STAGE[0]} RETURNING *)"
        " INSERT INTO rtdl_ieg_entities AS t (platform_run_id, kind, entity_id, first_ts_micros, first_event_id, last_ts_micros,"
        " last_event_id) SELECT %s, k, i, ft, fe, lt, le FROM s ORDER BY n"
        + _MERGE.replace("{key}", "platform_run_id, kind, entity_id"),
        (platform_run_id,),
    )


def merge_edges(conn: Any, platform_run_id: str, edges: dict[EdgeKey, Seen]) -> None:
    """Widen first/last seen of `edges` (COPY into a stage, then one upsert in key order)."""
    items = sorted(edges.items())
    if not items:
        return
    copy_to_stage(conn, *_EDGE_STAGE, ((*key, *seen.first, *seen.last, n) for n, (key, seen) in enumerate(items)))
    conn.execute(
        f"WITH s AS (DELETE FROM {_EDGE_STAGE[0]} RETURNING *)"
        " INSERT INTO rtdl_ieg_edges AS t (platform_run_id, from_kind, from_id, relation, to_kind, to_id, first_ts_micros,"
        " first_event_id, last_ts_micros, last_event_id) SELECT %s, fk, fi, r, tk, ti, ft, fe, lt, le FROM s ORDER BY n"
        + _MERGE.replace("{key}", "platform_run_id, from_kind, from_id, relation, to_kind, to_id"),
        (platform_run_id,),
    )


def neighbours(conn: Any, platform_run_id: str, kind: str, entity_id: str, relation: str, other_kind: str,
               as_of: OrderKey | None = None) -> list[str]:
    """Ids of `other_kind` linked to (kind, entity_id) by `relation`, either direction, sorted (as
    `IegState.neighbours`); with `as_of` (ts_micros, event_id) only edges first seen strictly before it."""
    ts, eid = as_of if as_of is not None else (None, None)
    before = " AND (%(ts)s::bigint IS NULL OR (first_ts_micros, first_event_id) < (%(ts)s, %(eid)s))"
    rows = conn.execute(
        "SELECT to_id FROM rtdl_ieg_edges WHERE platform_run_id = %(run)s AND from_kind = %(kind)s AND from_id = %(id)s"
        " AND relation = %(rel)s AND to_kind = %(other)s" + before
        + " UNION SELECT from_id FROM rtdl_ieg_edges WHERE platform_run_id = %(run)s AND to_kind = %(kind)s AND to_id = %(id)s"
        " AND relation = %(rel)s AND from_kind = %(other)s" + before,
        {"run": platform_run_id, "kind": kind, "id": entity_id, "rel": relation, "other": other_kind, "ts": ts, "eid": eid},
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def devices_of_customer(conn: Any, platform_run_id: str, customer_id: str, as_of: OrderKey | None = None) -> list[str]:
    """Devices a customer used."""
    return neighbours(conn, platform_run_id, "customer", customer_id, "uses", "device", as_of)


def customers_of_device(conn: Any, platform_run_id: str, device_id: str, as_of: OrderKey | None = None) -> list[str]:
    """Customers seen on a device (more than one is a shared or taken-over device)."""
    return neighbours(conn, platform_run_id, "device", device_id, "uses", "customer", as_of)


def cards_of_device(conn: Any, platform_run_id: str, device_id: str, as_of: OrderKey | None = None) -> list[str]:
    """Cards used on a device (many is card testing)."""
    return neighbours(conn, platform_run_id, "device", device_id, "used_on", "card", as_of)


def senders_of_collector(conn: Any, platform_run_id: str, collector_id: str, as_of: OrderKey | None = None) -> list[str]:
    """Distinct accounts that sent p2p transfers to a collector (many is a mule collector)."""
    return neighbours(conn, platform_run_id, "merchant", collector_id, "sent_p2p", "account", as_of)


def first_seen(conn: Any, platform_run_id: str, kind: str, entity_id: str) -> OrderKey | None:
    """When an entity was first seen (None when never)."""
    row = conn.execute("SELECT first_ts_micros, first_event_id FROM rtdl_ieg_entities WHERE platform_run_id = %s AND kind = %s"
                       " AND entity_id = %s", (platform_run_id, kind, entity_id)).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def state_rows(conn: Any, platform_run_id: str) -> Iterator[dict[str, Any]]:
    """Every entity and edge as `IegState.canonical_rows` gives them (the IEG digest section)."""
    for kind, entity_id, *seen in stream_rows(
            conn, "SELECT kind, entity_id, first_ts_micros, first_event_id, last_ts_micros, last_event_id FROM rtdl_ieg_entities"
            " WHERE platform_run_id = %s", (platform_run_id,), batch=STATE_ROWS_BATCH):
        yield {"row": "entity", "kind": kind, "id": entity_id, **_seen_row(seen)}
    for a_kind, a_id, relation, b_kind, b_id, *seen in stream_rows(
            conn, "SELECT from_kind, from_id, relation, to_kind, to_id, first_ts_micros, first_event_id, last_ts_micros,"
            " last_event_id FROM rtdl_ieg_edges WHERE platform_run_id = %s", (platform_run_id,), batch=STATE_ROWS_BATCH):
        yield {"row": "edge", "from_kind": a_kind, "from_id": a_id, "relation": relation, "to_kind": b_kind, "to_id": b_id,
               **_seen_row(seen)}


def _seen_row(seen: list[Any]) -> dict[str, Any]:
    return {"first_ts_utc": micros_to_iso(int(seen[0])), "first_event_id": seen[1], "last_ts_utc": micros_to_iso(int(seen[2])),
            "last_event_id": seen[3]}


def reconciliation(conn: Any, platform_run_id: str) -> dict[str, Any]:
    """The reconciliation document of a run from the durable counters, tables and dead letters
    (what `identity_entity_graph/reconciliation/reconciliation.json` holds)."""
    per_class: dict[str, ClassCounts] = {}
    for name, value in progress.counter_totals(conn, platform_run_id, COMPONENT).items():
        counter, _, event_class = name.partition(".")
        if counter in RECONCILIATION_COUNTERS and event_class:
            setattr(per_class.setdefault(event_class, ClassCounts()), counter, value)
    kinds = {str(k): int(n) for k, n in conn.execute(
        "SELECT kind, count(*) FROM rtdl_ieg_entities WHERE platform_run_id = %s GROUP BY kind", (platform_run_id,))}
    relations = {str(r): int(n) for r, n in conn.execute(
        "SELECT relation, count(*) FROM rtdl_ieg_edges WHERE platform_run_id = %s GROUP BY relation", (platform_run_id,))}
    row = conn.execute("SELECT count(*) FROM worker_dead_letters WHERE platform_run_id = %s AND component = %s",
                       (platform_run_id, COMPONENT)).fetchone()
    return reconcile(per_class, int(row[0]) if row else 0, kinds, relations)


def has_state(conn: Any, platform_run_id: str) -> bool:
    """Whether the run has any IEG entity (a rebuild refuses to write over one)."""
    return conn.execute("SELECT 1 FROM rtdl_ieg_entities WHERE platform_run_id = %s LIMIT 1",
                        (platform_run_id,)).fetchone() is not None
