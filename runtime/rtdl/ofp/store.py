"""OFP's Postgres adapter: event facts in `rtdl_ofp_facts` (migration 0501) and the point-in-time read.

Writes are one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` per batch, so a
redelivered event writes nothing. `features_as_of` is one index range scan of the entity's facts
in the 24 h before the event (the primary key covers every column it needs), turned into the
domain's columns and handed to the domain function: the answer equals the in-memory store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.rtdl.events import TRAFFIC_CLASSES, admitted
from runtime.rtdl.ofp.domain import (
    DEFAULT_GRACE_MICROS,
    HORIZON_MICROS,
    EntityFacts,
    EntityFeatures,
    EventFact,
    facts_of,
)
from runtime.rtdl.ofp.domain import (
    features_as_of as domain_features_as_of,
)

_COLUMNS = ("entity_kind", "entity_id", "ts_micros", "event_id", "amount_minor", "merchant_id", "merchant_country", "device_id",
            "is_p2p", "is_round")


def insert_facts(conn: Any, platform_run_id: str, facts: list[EventFact]) -> set[str]:
    """Insert facts (one statement); returns the event ids that wrote at least one new fact."""
    if not facts:
        return set()
    rows = conn.execute(
        "INSERT INTO rtdl_ofp_facts (platform_run_id, entity_kind, entity_id, ts_micros, event_id, amount_minor, merchant_id,"
        " merchant_country, device_id, is_p2p, is_round)"
        " SELECT %s, k, i, t, e, a, m, c, d, p, r FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::bigint[],"
        " %s::text[], %s::text[], %s::text[], %s::boolean[], %s::boolean[]) AS u(k, i, t, e, a, m, c, d, p, r)"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        (platform_run_id, [f.entity_kind for f in facts], [f.entity_id for f in facts], [f.ts_micros for f in facts],
         [f.event_id for f in facts], [f.amount_minor for f in facts], [f.merchant_id for f in facts],
         [f.merchant_country for f in facts], [f.device_id for f in facts], [f.is_p2p for f in facts],
         [f.is_round for f in facts]),
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


def features_as_of(conn: Any, platform_run_id: str, entity_kind: str, entity_id: str, ts_micros: int, event_id: str,
                   current: EventFact | None = None) -> EntityFeatures:
    """Point-in-time features of one entity as of event (ts, event_id): only facts strictly before
    it count (the domain function over one indexed range read)."""
    facts = entity_facts(conn, platform_run_id, entity_kind, entity_id, ts_micros, event_id)
    return domain_features_as_of(facts, entity_kind, entity_id, ts_micros, event_id, current)


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
