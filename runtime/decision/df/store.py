"""DF's Postgres adapter: point-in-time inputs from the RTDL stores, their completeness, the decisions table.

**Inputs as of an event.** `inputs_as_of` answers exactly what `df/inputs.py` answers from the
in-memory states fed the records strictly before the event in (ts, event_id): OFP features from
`rtdl_ofp_facts` (the store's own point-in-time read), the IEG signals through the same
`graph_signals` over a store-backed reader (edges first seen strictly before the event), and the
CSFB join frame from the flow's binding and its session's arrival *only when they came before the
event* (the store keeps the earliest of each, so an earlier one is the one the in-memory state
held then). The store may already hold later records; they never change an answer.

**Completeness.** A store answers for an event only once it has applied everything before it:
`upstream_complete` holds when, on every partition of the component's input topics that carries
records of the run, its event-time watermark has reached the event's time, or its consumer group's
durable position has reached the last record IG admitted there (an idle partition: nothing more
to wait for). DF waits on this (bounded) before it decides.

**Decisions** go to `df_decisions` (migration 0610, append-only, unique on decision_id) with
INSERT ... ON CONFLICT DO NOTHING in the worker's transaction. The read functions at the end are
what the P9 gate reports: counts by outcome, reason, posture and degrade reason, the
admission-to-decision latency and the run's decision digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.contracts.canonical import canonical_digest
from runtime.decision.df.domain import DecisionInputs, DecisionRecord, Provenance, decision_digest
from runtime.decision.df.inputs import graph_signals, readiness_input
from runtime.rtdl import store as progress
from runtime.rtdl.csfb import store as csfb_store
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.events import Admitted
from runtime.rtdl.ieg import store as ieg_store
from runtime.rtdl.ieg.domain import OrderKey
from runtime.rtdl.ofp import store as ofp_store

Partition = tuple[str, str]


class StoredGraph:
    """IEG's queries over the store, with `IegState`'s signatures (what `graph_signals` asks)."""

    def __init__(self, conn: Any, platform_run_id: str):
        self.conn = conn
        self.run = platform_run_id

    def first_seen(self, kind: str, entity_id: str) -> OrderKey | None:
        """When the entity was first seen (the store's earliest)."""
        return ieg_store.first_seen(self.conn, self.run, kind, entity_id)

    def devices_of_customer(self, customer_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Devices the customer used before `as_of`."""
        return ieg_store.devices_of_customer(self.conn, self.run, customer_id, as_of)

    def customers_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Customers seen on the device before `as_of`."""
        return ieg_store.customers_of_device(self.conn, self.run, device_id, as_of)

    def cards_of_device(self, device_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Cards used on the device before `as_of`."""
        return ieg_store.cards_of_device(self.conn, self.run, device_id, as_of)

    def senders_of_collector(self, collector_id: str, as_of: OrderKey | None = None) -> list[str]:
        """Accounts that sent p2p transfers to the collector before `as_of`."""
        return ieg_store.senders_of_collector(self.conn, self.run, collector_id, as_of)


def join_as_of(conn: Any, platform_run_id: str, event: Admitted) -> dict[str, Any]:
    """The CSFB join input of a traffic event as the in-memory state held it just before the event:
    the flow's binding and its session's arrival count only when they came strictly before it, and
    the event itself cannot have joined late yet (READY or MISSING_CONTEXT)."""
    at = event.order_key
    flow_id, session_id = event.text("flow_id"), event.text("session_id")
    binding = csfb_store.resolve_flow_binding(conn, platform_run_id, flow_id)
    if binding is not None and binding.order_key >= at:
        binding = None
    session = binding.session_id if binding is not None else session_id
    arrival = csfb_store.session_arrival(conn, platform_run_id, session) if session else None
    if arrival is not None and arrival.order_key >= at:
        arrival = None
    state = CsfbState(bindings={flow_id: binding} if binding else {}, arrivals={session: arrival} if arrival else {})
    return readiness_input(state.join_readiness(flow_id, session_id))


def inputs_as_of(conn: Any, platform_run_id: str, envelope: dict[str, Any], event: Admitted, *, features: bool = True,
                 graph: bool = True, join: bool = True, provenance: Provenance | None = None) -> DecisionInputs:
    """The decision inputs of one traffic event read from the RTDL stores; an input passed False is
    late (its store was not complete as of the event) and stays None: a degrade, never a default."""
    answer = None
    if features:
        answer = {kind: f.canonical() for kind, f in ofp_store.event_features(conn, platform_run_id, envelope).items()}
    signals = graph_signals(StoredGraph(conn, platform_run_id), event) if graph else None
    frame = join_as_of(conn, platform_run_id, event) if join else None
    return DecisionInputs(answer, signals, frame, provenance or Provenance())


# -- completeness of the RTDL stores ----------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """An RTDL store DF reads: its component name (watermarks), consumer group (positions), input topics."""

    component: str
    consumer_group: str
    topics: tuple[str, ...]


def run_last_offsets(conn: Any, platform_run_id: str, topics: Iterable[str]) -> dict[Partition, int]:
    """Per partition of `topics`, the offset of the last record of the run IG admitted there."""
    rows = conn.execute(
        "SELECT eb_ref->>'topic', eb_ref->>'partition', max((eb_ref->>'offset')::numeric) FROM ig_admissions"
        " WHERE platform_run_id = %s AND eb_ref IS NOT NULL AND eb_ref->>'topic' = ANY(%s::text[]) GROUP BY 1, 2",
        (platform_run_id, sorted(set(topics)))).fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def group_positions(conn: Any, consumer_group: str) -> dict[Partition, int]:
    """The durable positions of a consumer group (worker_positions)."""
    rows = conn.execute("SELECT topic, partition, position FROM worker_positions WHERE consumer_group = %s",
                        (consumer_group,)).fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def upstream_complete(conn: Any, platform_run_id: str, upstream: Upstream, ts_micros: int,
                      run_last: dict[Partition, int]) -> bool:
    """Whether the store has applied everything of the run before `ts_micros` (see the module docstring)."""
    marks = {(r["topic"], r["partition"]): r["max_event_ts_micros"]
             for r in progress.watermark_rows(conn, platform_run_id, upstream.component)}
    waiting = [p for p in run_last if p[0] in upstream.topics and marks.get(p, -1) < ts_micros]
    if not waiting:
        return True
    positions = group_positions(conn, upstream.consumer_group)
    return all(positions.get(p, -1) >= run_last[p] for p in waiting)


# -- provenance: IG's receipts ------------------------------------------------------------------------


def admissions(conn: Any, platform_run_id: str, identities: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(event_class, event_id) -> (IG receipt id, admitted time) of the admitted events among
    `identities` (the ADMIT receipt; absent while IG has not written it yet)."""
    if not identities:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (event_class, event_id) event_class, event_id, receipt_id, recorded_at FROM ig_receipts"
        " WHERE platform_run_id = %s AND outcome = 'ADMIT' AND (event_class, event_id) IN"
        " (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY event_class, event_id, recorded_at",
        (platform_run_id, [c for c, _ in identities], [e for _, e in identities])).fetchall()
    return {(str(r[0]), str(r[1])): (str(r[2]), _iso(r[3])) for r in rows}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- posture (written by DL) --------------------------------------------------------------------------


def current_posture(conn: Any, platform_run_id: str) -> str | None:
    """The posture DL last recorded for the run; None before its first entry."""
    row = conn.execute("SELECT posture FROM dl_posture_history WHERE platform_run_id = %s ORDER BY seq DESC LIMIT 1",
                       (platform_run_id,)).fetchone()
    return None if row is None else str(row[0])


# -- the decisions table ------------------------------------------------------------------------------


def held_decisions(conn: Any, decision_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """decision_id -> the decision record already held (a redelivered or replayed event)."""
    ids = sorted(set(decision_ids))
    if not ids:
        return {}
    rows = conn.execute("SELECT decision_id, record FROM df_decisions WHERE decision_id = ANY(%s::text[])", (ids,)).fetchall()
    return {str(r[0]): dict(r[1]) for r in rows}


def append_decisions(conn: Any, records: Sequence[DecisionRecord], eb_refs: Sequence[dict[str, Any]]) -> set[str]:
    """Append decisions (one statement, ON CONFLICT DO NOTHING); returns the ids written now."""
    if not records:
        return set()

    rows = conn.execute(
        "INSERT INTO df_decisions (decision_id, platform_run_id, event_class, event_id, event_ts_utc, outcome, posture,"
        " reason_codes, degrade_codes, policy_digest, core_sha256, record, eb_ref, receipt_id, admitted_at, decided_at)"
        " SELECT d, r, c, e, ts::timestamptz, o, p, string_to_array(rc, ' '), string_to_array(dc, ' '), pd, cs, rec::jsonb,"
        " eb::jsonb, rid, adm::timestamptz, dec::timestamptz FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[]) AS u(d, r, c, e, ts, o, p, rc, dc, pd, cs, rec, eb, rid, adm, dec)"
        " ON CONFLICT DO NOTHING RETURNING decision_id",
        ([r.decision_id for r in records], [r.platform_run_id for r in records], [r.event_class for r in records],
         [r.event_id for r in records], [r.event_ts_utc for r in records], [r.outcome for r in records],
         [r.posture for r in records], [" ".join(x["code"] for x in r.reasons) for r in records],
         [" ".join(x["code"] for x in r.degrade_reasons) for r in records], [r.policy["digest"] for r in records],
         [canonical_digest(r.core()) for r in records], [json.dumps(r.canonical(), sort_keys=True) for r in records],
         [json.dumps(ref, sort_keys=True) for ref in eb_refs], [r.provenance.get("receipt_id") for r in records],
         [r.provenance.get("admitted_at_utc") for r in records], [r.provenance["decided_at_utc"] for r in records]),
    ).fetchall()
    return {str(r[0]) for r in rows}


# -- what the P9 gate reads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionCounts:
    """A run's decisions by outcome, reason code, posture and degrade reason (from the table)."""

    total: int
    degraded: int
    by_outcome: dict[str, int]
    by_reason: dict[str, int]
    by_posture: dict[str, int]
    by_degrade_reason: dict[str, int]


def decision_counts(conn: Any, platform_run_id: str) -> DecisionCounts:
    """Counts of the run's decisions (durable state only)."""
    def grouped(sql: str) -> dict[str, int]:
        return {str(k): int(n) for k, n in conn.execute(sql, (platform_run_id,)).fetchall()}

    by_outcome = grouped("SELECT outcome, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1 ORDER BY 1")
    row = conn.execute("SELECT count(*) FILTER (WHERE cardinality(degrade_codes) > 0) FROM df_decisions"
                       " WHERE platform_run_id = %s", (platform_run_id,)).fetchone()
    return DecisionCounts(
        total=sum(by_outcome.values()), degraded=int(row[0]), by_outcome=by_outcome,
        by_reason=grouped("SELECT x, count(*) FROM df_decisions, unnest(reason_codes) AS x WHERE platform_run_id = %s"
                          " GROUP BY 1 ORDER BY 1"),
        by_posture=grouped("SELECT posture, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1 ORDER BY 1"),
        by_degrade_reason=grouped("SELECT x, count(*) FROM df_decisions, unnest(degrade_codes) AS x"
                                  " WHERE platform_run_id = %s GROUP BY 1 ORDER BY 1"),
    )


def decision_latency(conn: Any, platform_run_id: str) -> dict[str, Any]:
    """Admission-to-decision latency of the run in milliseconds (p50, p99, max) over the decisions
    whose IG receipt was known; `measured` says how many that is."""
    row = conn.execute(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),"
        " max(ms) FROM (SELECT extract(epoch FROM decided_at - admitted_at) * 1000 AS ms FROM df_decisions"
        " WHERE platform_run_id = %s AND admitted_at IS NOT NULL) AS l", (platform_run_id,)).fetchone()
    measured = int(row[0])
    rounded = [None if v is None else round(float(v), 3) for v in row[1:]]
    return {"measured": measured, "p50_ms": rounded[0], "p99_ms": rounded[1], "max_ms": rounded[2]}


def run_decision_records(conn: Any, platform_run_id: str) -> Iterable[dict[str, Any]]:
    """Every decision record of the run, in decision_id order."""
    cursor = conn.execute("SELECT record FROM df_decisions WHERE platform_run_id = %s ORDER BY decision_id",
                          (platform_run_id,))
    for (record,) in cursor:
        yield dict(record)


def run_decision_digest(conn: Any, platform_run_id: str) -> str:
    """The run's decision digest from the table: equal across buses and replays (`decision_digest`)."""
    return decision_digest(run_decision_records(conn, platform_run_id))


def admitted_without_decision(conn: Any, platform_run_id: str, event_classes: Sequence[str]) -> list[tuple[str, str]]:
    """(event_class, event_id) of the run's admitted events of `event_classes` that have no decision
    (P9's "every admitted traffic event decided": empty)."""
    rows = conn.execute(
        "SELECT a.event_class, a.event_id FROM ig_admissions a WHERE a.platform_run_id = %s AND a.state = 'ADMITTED'"
        " AND a.event_class = ANY(%s::text[]) AND NOT EXISTS (SELECT 1 FROM df_decisions d WHERE d.platform_run_id ="
        " a.platform_run_id AND d.event_class = a.event_class AND d.event_id = a.event_id) ORDER BY 1, 2",
        (platform_run_id, list(event_classes))).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]
