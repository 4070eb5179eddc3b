"""CSFB's Postgres adapter: the FlowBinding index, arrivals, pending misses and late joins (migration 0503).

A handler batch loads the slice of state its records touch into a domain `CsfbState` (`load`),
lets the domain apply the records, and writes back what changed (`save`): bindings and arrivals
with an upsert that keeps the earlier (ts, event_id), pending misses added and removed, late joins
added. The read side DF calls is `resolve_flow_binding` and `join_readiness`, the domain's answers
over rows read by primary key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from runtime.db.postgres import copy_to_stage, stream_rows
from runtime.rtdl.csfb.domain import Arrival, CsfbState, FlowBinding, JoinReadiness
from runtime.rtdl.digest import STATE_ROWS_BATCH

COMPONENT = "csfb"
#: Advisory-lock class of CSFB's per-flow and per-session transaction locks (two-int form). The
#: migrator's lock id is a small bigint (upper half 0); IG's owner keys are random 62-bit, so one
#: meets a CSFB lock with negligible odds, and then only waits a transaction.
LOCK_CLASS = 5030
#: Flows and sessions are locked in this many hash slots at most: a batch of thousands of records
#: takes at most this many advisory locks, well inside PostgreSQL's shared lock table (64 per
#: connection by default); two keys sharing a slot only serialise their batches.
LOCK_SLOTS = 1024

_BINDING_COLUMNS = ("flow_id", "session_id", "customer_id", "account_id", "card_id", "device_id", "merchant_id", "channel",
                    "anchor_ts_micros", "anchor_event_id")
_ARRIVAL_COLUMNS = ("session_id", "arrival_id", "customer_id", "device_id", "channel", "ip_country", "ts_micros", "event_id")


@dataclass(frozen=True)
class Loaded:
    """What `load` read, to tell afterwards what the batch changed."""

    bindings: dict[str, FlowBinding]
    arrivals: dict[str, Arrival]
    pending: set[tuple[str, str]]
    late_joined: set[str]


def _binding(r: Any) -> FlowBinding:
    return FlowBinding(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), r[9])


def _arrival(r: Any) -> Arrival:
    return Arrival(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7])


def _by_key(conn: Any, table: str, columns: tuple[str, ...], platform_run_id: str, keys: Iterable[str]) -> list[Any]:
    """The rows of `table` whose primary key is (run, columns[0] in `keys`): one primary-key probe
    per key. A plain `key = ANY(...)` let a planner without statistics (a table not analysed yet,
    the first minute of a run) use only the run as index condition and filter every row of the
    run, a read that grew with the run on every batch of CSFB and DF."""
    return conn.execute(f"SELECT x.* FROM unnest(%b::text[]) AS u(k) CROSS JOIN LATERAL (SELECT {', '.join(columns)}"
                        f" FROM {table} WHERE platform_run_id = %s AND {columns[0]} = u.k LIMIT 1) AS x",
                        (sorted(set(keys)), platform_run_id)).fetchall()


def _bindings(conn: Any, platform_run_id: str, flows: Iterable[str]) -> dict[str, FlowBinding]:
    return {r[0]: _binding(r) for r in _by_key(conn, "rtdl_csfb_flow_bindings", _BINDING_COLUMNS, platform_run_id, flows)}


def _arrivals(conn: Any, platform_run_id: str, sessions: Iterable[str]) -> dict[str, Arrival]:
    return {r[0]: _arrival(r) for r in _by_key(conn, "rtdl_csfb_arrivals", _ARRIVAL_COLUMNS, platform_run_id, sessions)}


def load(conn: Any, platform_run_id: str, flows: set[str], sessions: set[str], traffic_event_ids: set[str]) -> tuple[CsfbState, Loaded]:
    """A `CsfbState` holding what a batch can touch: the bindings of `flows`, the arrivals of
    `sessions` and of those bindings' sessions, the pending misses of those flows and sessions
    (and their flows' bindings), and which of `traffic_event_ids` already joined late.

    The batch's flows and sessions are first locked for the transaction, so two members of a
    consumer group whose batches share a flow or a session (an anchor on one partition, its
    traffic on another) apply one after the other and neither loses the other's pending miss."""
    keys = sorted({f"flow:{f}" for f in flows} | {f"session:{s}" for s in sessions})
    conn.execute("SELECT pg_advisory_xact_lock(%s, h) FROM (SELECT DISTINCT hashtext(%s || k) & %s AS h"
                 " FROM unnest(%b::text[]) AS u(k) ORDER BY 1) AS x", (LOCK_CLASS, platform_run_id, LOCK_SLOTS - 1, keys))
    pending_rows = conn.execute(
        "SELECT flow_id, event_id, session_id FROM rtdl_csfb_pending WHERE platform_run_id = %s"
        " AND (flow_id = ANY(%b::text[]) OR session_id = ANY(%b::text[])) ORDER BY flow_id, event_id",
        (platform_run_id, sorted(flows), sorted(sessions)),
    ).fetchall()
    bindings = _bindings(conn, platform_run_id, flows | {r[0] for r in pending_rows})
    arrivals = _arrivals(conn, platform_run_id, sessions | {r[2] for r in pending_rows} | {b.session_id for b in bindings.values()})
    late = {str(r[0]) for r in conn.execute(
        "SELECT event_id FROM rtdl_csfb_late_joins WHERE platform_run_id = %s AND event_id = ANY(%b::text[])",
        (platform_run_id, sorted(traffic_event_ids)))}
    state = CsfbState(bindings=dict(bindings), arrivals=dict(arrivals), late_joined=set(late))
    for flow, event_id, session in pending_rows:
        state.pending.setdefault(flow, set()).add(event_id)
        state.pending_by_session.setdefault(session, set()).add(flow)
        state.pending_session[flow] = session
    return state, Loaded(bindings, arrivals, {(r[0], r[1]) for r in pending_rows}, late)


def save(conn: Any, platform_run_id: str, state: CsfbState, loaded: Loaded) -> None:
    """Write what the batch changed: new or earlier bindings and arrivals, pending misses added
    and resolved, late joins added."""
    _keep_earlier(conn, platform_run_id, "rtdl_csfb_flow_bindings", _BINDING_COLUMNS, "anchor_ts_micros",
                  [b for flow, b in sorted(state.bindings.items()) if loaded.bindings.get(flow) != b])
    _keep_earlier(conn, platform_run_id, "rtdl_csfb_arrivals", _ARRIVAL_COLUMNS, "ts_micros",
                  [a for session, a in sorted(state.arrivals.items()) if loaded.arrivals.get(session) != a])
    pending = {(flow, e) for flow, events in state.pending.items() for e in events}
    resolved = sorted(loaded.pending - pending)
    if resolved:
        conn.execute("DELETE FROM rtdl_csfb_pending p USING unnest(%b::text[], %b::text[]) AS u(f, e)"
                     " WHERE p.platform_run_id = %s AND p.flow_id = u.f AND p.event_id = u.e",
                     ([f for f, _ in resolved], [e for _, e in resolved], platform_run_id))
    added = sorted(pending - loaded.pending)
    if added:
        conn.execute("INSERT INTO rtdl_csfb_pending (platform_run_id, flow_id, event_id, session_id)"
                     " SELECT %s, * FROM unnest(%b::text[], %b::text[], %b::text[]) ON CONFLICT DO NOTHING",
                     (platform_run_id, [f for f, _ in added], [e for _, e in added], [state.pending_session[f] for f, _ in added]))
    late = sorted(state.late_joined - loaded.late_joined)
    if late:
        conn.execute("INSERT INTO rtdl_csfb_late_joins (platform_run_id, event_id)"
                     " SELECT %s, e FROM unnest(%b::text[]) AS u(e) ON CONFLICT DO NOTHING", (platform_run_id, late))


def _keep_earlier(conn: Any, platform_run_id: str, table: str, columns: tuple[str, ...], ts_column: str,
                  items: list[FlowBinding] | list[Arrival]) -> None:
    """Upsert `items` keyed by their first column; a held row is replaced only by an earlier
    (ts, event_id) (the last column is the event id). The rows go through COPY into a session
    stage (binding them as arrays dumped every element in Python), then one upsert in key order."""
    if not items:
        return
    stage = f"{table}_stage"
    copy_to_stage(conn, stage, ", ".join(f"{c} {'bigint' if c == ts_column else 'text'}" for c in columns) + ", n integer",
                  ((*(getattr(item, c) for c in columns), n) for n, item in enumerate(items)))
    conn.execute(
        f"WITH s AS (DELETE FROM {stage} RETURNING *)"
        f" INSERT INTO {table} AS t (platform_run_id, {', '.join(columns)}) SELECT %s, {', '.join(columns)} FROM s ORDER BY n"
        f" ON CONFLICT (platform_run_id, {columns[0]}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns[1:])}"
        f" WHERE (excluded.{ts_column}, excluded.{columns[-1]}) < (t.{ts_column}, t.{columns[-1]})",
        (platform_run_id,),
    )


def resolve_flow_binding(conn: Any, platform_run_id: str, flow_id: str) -> FlowBinding | None:
    """The flow's binding (session and entities), None when its anchor has not arrived."""
    return _bindings(conn, platform_run_id, [flow_id]).get(flow_id)


def join_readiness(conn: Any, platform_run_id: str, flow_id: str, session_id: str | None = None,
                   event_id: str | None = None) -> JoinReadiness:
    """READY / MISSING_CONTEXT (with reasons) / LATE_JOIN for a traffic event of `flow_id` (the
    domain's answer over the flow's binding, its session's arrival and the late-join record)."""
    bindings = _bindings(conn, platform_run_id, [flow_id])
    sessions = {b.session_id for b in bindings.values()} | ({session_id} if session_id else set())
    late: set[str] = set()
    if event_id is not None and conn.execute("SELECT 1 FROM rtdl_csfb_late_joins WHERE platform_run_id = %s AND event_id = %s",
                                             (platform_run_id, event_id)).fetchone():
        late.add(event_id)
    state = CsfbState(bindings=bindings, arrivals=_arrivals(conn, platform_run_id, sessions), late_joined=late)
    return state.join_readiness(flow_id, session_id, event_id)


def state_rows(conn: Any, platform_run_id: str) -> Iterator[dict[str, Any]]:
    """Bindings and arrivals as `CsfbState.canonical_rows` gives them (the CSFB digest section)."""
    for r in stream_rows(conn, f"SELECT {', '.join(_BINDING_COLUMNS)} FROM rtdl_csfb_flow_bindings WHERE platform_run_id = %s",
                         (platform_run_id,), batch=STATE_ROWS_BATCH):
        yield {"row": "flow_binding", **_binding(r).canonical()}
    for r in stream_rows(conn, f"SELECT {', '.join(_ARRIVAL_COLUMNS)} FROM rtdl_csfb_arrivals WHERE platform_run_id = %s",
                         (platform_run_id,), batch=STATE_ROWS_BATCH):
        yield {"row": "arrival", **_arrival(r).canonical()}


def has_state(conn: Any, platform_run_id: str) -> bool:
    """Whether the run has any binding or arrival (a rebuild refuses to write over one)."""
    return conn.execute("SELECT 1 FROM rtdl_csfb_flow_bindings WHERE platform_run_id = %s UNION ALL"
                        " SELECT 1 FROM rtdl_csfb_arrivals WHERE platform_run_id = %s LIMIT 1",
                        (platform_run_id, platform_run_id)).fetchone() is not None


def flow_bindings(conn: Any, platform_run_id: str, flow_ids: Iterable[str]) -> dict[str, FlowBinding]:
    """The bindings of `flow_ids` held (one read; DF's batch of point-in-time joins)."""
    return _bindings(conn, platform_run_id, flow_ids)


def session_arrivals(conn: Any, platform_run_id: str, session_ids: Iterable[str]) -> dict[str, Arrival]:
    """The arrivals of `session_ids` held (one read; DF's batch of point-in-time joins)."""
    return _arrivals(conn, platform_run_id, session_ids)
