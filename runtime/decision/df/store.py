"""DF's Postgres adapter: point-in-time inputs from the RTDL stores, their completeness, the decisions table.

**Inputs as of an event.** `BatchReader` answers, for every event of a batch, exactly what
`df/inputs.py` answers from the in-memory states fed the records strictly before the event in
(ts, event_id): OFP features over the entity's facts in the 24 h before it (the domain's
`features_as_of`), the IEG signals through the same `graph_signals` over the edges read for the
batch (edges first seen strictly before the event), and the CSFB join frame from the flow's
binding and its session's arrival *only when they came before the event* (the store keeps the
earliest of each, so an earlier one is the one the in-memory state held then). The stores may
already hold later records; they never change an answer. A batch costs five reads, not a dozen
per event.

**Completeness** is cut in event time. A store answers for an event at time T only once it has
applied every record of its topics with event time at or before T, and no such record can still
come: `upstream_complete` holds when (1) every WSP output feeding the store's topics has passed T
(its frontier in `wsp_output_progress` is after T, or it has ended: every row at or before T has
been answered by IG, so admitted) and then (2) on every partition, the store's consumer group has
applied each admission of the run with `event_ts_micros` at or before T (migration 0202). The cut
is a property of the event alone, not of when IG happened to admit the records of the different
outputs, so the answer is the same on both buses, after a crash and on a replay. WSP keeps its
outputs aligned in event time (runtime/wsp/align.py), so the context DF waits for is normally
already there. Records that reach the topics without WSP (no progress rows for the run) are
judged on (2) alone. DF waits on this (bounded) before it decides.

**Decisions** go to `df_decisions` (migration 0610, append-only, unique on decision_id) with
INSERT ... ON CONFLICT DO NOTHING in the worker's transaction. The read functions at the end are
what the P9 gate reports: counts by outcome, reason, posture and degrade reason, the
admission-to-decision latency and the run's decision digest.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from runtime.contracts.canonical import canonical_digest
from runtime.decision.df.domain import DecisionInputs, DecisionRecord, Provenance, ordered_decision_digest
from runtime.decision.df.inputs import graph_signals, readiness_input
from runtime.ig.store import RUN_LAST_OFFSETS_SQL
from runtime.rtdl.csfb import store as csfb_store
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.events import Admitted
from runtime.rtdl.ieg.domain import IegState, Seen
from runtime.rtdl.ofp.domain import HORIZON_MICROS, EntityFacts, EventFact, facts_of, features_as_of
from runtime.worker.store import group_positions

Partition = tuple[str, str]


#: The IEG relations DF's graph signals ask about (runtime/decision/df/inputs.py graph_signals).
GRAPH_RELATIONS = ("uses", "used_on", "sent_p2p")


class BatchReader:
    """The RTDL stores' answers for a batch of traffic events, read in a few statements.

    OFP: the facts of every entity of the batch over the batch's 24 h windows (one range read);
    each event then gets `features_as_of` over its own slice, exactly the store's per-event read.
    IEG: every edge of the asked relations touching the batch's customers, devices and payees, and
    the devices' first sightings, loaded into an `IegState` so `graph_signals` runs the domain's
    own queries (edges first seen strictly before the event). CSFB: the flows' bindings and the
    sessions' arrivals, each counted for an event only when it came strictly before it.
    """

    def __init__(self, conn: Any, platform_run_id: str, events: Sequence[Admitted], *,
                 feature_kinds: Sequence[str] | None = None):
        self.run = platform_run_id
        #: The OFP entity kinds answered (None: every kind of the event, as the in-memory path;
        #: DF asks only the kinds its signals read, FEATURE_KINDS).
        self.feature_kinds = tuple(feature_kinds) if feature_kinds is not None else None
        self._facts = self._load_facts(conn, events)
        self._graph = self._load_graph(conn, events)
        flows = {e.text("flow_id") for e in events}
        self._bindings = csfb_store.flow_bindings(conn, platform_run_id, flows)
        sessions = {e.text("session_id") for e in events} | {b.session_id for b in self._bindings.values()}
        self._arrivals = csfb_store.session_arrivals(conn, platform_run_id, sessions)

    def _facts_of(self, event: Admitted) -> list[EventFact]:
        facts = facts_of(event)
        return facts if self.feature_kinds is None else [f for f in facts if f.entity_kind in self.feature_kinds]

    def _load_facts(self, conn: Any, events: Sequence[Admitted]) -> dict[tuple[str, str], tuple[list[tuple[Any, ...]],
                                                                                                list[tuple[int, str]]]]:
        ranges: dict[tuple[str, str], tuple[int, int]] = {}
        for event in events:
            for fact in self._facts_of(event):
                key = (fact.entity_kind, fact.entity_id)
                lo, hi = ranges.get(key, (fact.ts_micros, fact.ts_micros))
                ranges[key] = (min(lo, fact.ts_micros), max(hi, fact.ts_micros))
        keys = sorted(ranges)
        # A primary-key range probe per entity: the LATERAL subquery (kept apart by OFFSET 0) is
        # never merged into a join the planner may turn around. A join planned without statistics
        # (a table not analysed yet, the first minute of a run; or a plan psycopg prepared then)
        # read every fact of the run, or every fact of the 24 h window, per batch. The upper bound
        # is a filter (`+ 0`), not an index condition: with both bounds, rtdl_ofp_facts_run_ts
        # (platform_run_id, ts_micros) was estimated at one row like the primary key, and being the
        # smaller index it won; a 30k spine then scanned every fact of the batch's span per entity
        # (4.7-13.2 s a batch, auto_explain). With the lower bound alone it is estimated at a share
        # of the run, and the primary key (kind and id equal) is always cheaper.
        rows = conn.execute(
            "SELECT u.k, u.i, f.ts_micros, f.event_id, f.amount_minor, f.merchant_id, f.merchant_country, f.device_id,"
            " f.is_p2p, f.is_round FROM unnest(%b::text[], %b::text[], %b::int8[], %b::int8[]) AS u(k, i, lo, hi)"
            " CROSS JOIN LATERAL (SELECT ts_micros, event_id, amount_minor, merchant_id, merchant_country, device_id, is_p2p,"
            " is_round FROM rtdl_ofp_facts WHERE platform_run_id = %s AND entity_kind = u.k AND entity_id = u.i"
            " AND ts_micros > u.lo AND ts_micros + 0 <= u.hi ORDER BY entity_kind, entity_id, ts_micros, event_id OFFSET 0) AS f"
            " ORDER BY u.k, u.i, f.ts_micros, f.event_id",
            ([k for k, _ in keys], [i for _, i in keys], [ranges[k][0] - HORIZON_MICROS for k in keys],
             [ranges[k][1] for k in keys], self.run)).fetchall()
        grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for row in rows:
            grouped.setdefault((str(row[0]), str(row[1])), []).append(tuple(row[2:]))
        return {key: (facts, [(int(r[0]), str(r[1])) for r in facts]) for key, facts in grouped.items()}

    def _load_graph(self, conn: Any, events: Sequence[Admitted]) -> IegState:
        nodes = sorted({("customer", e.text("customer_id")) for e in events} | {("device", e.text("device_id")) for e in events}
                       | {("merchant", e.text("merchant_id")) for e in events})
        kinds, ids = [k for k, _ in nodes], [i for _, i in nodes]
        state = IegState()
        # An index probe per node and direction (primary key from, rtdl_ieg_edges_to to), as for the
        # facts: a join planned without statistics read every edge of the run twice.
        edge_columns = "from_kind, from_id, relation, to_kind, to_id, first_ts_micros, first_event_id"
        rows = conn.execute(
            f"SELECT e.* FROM unnest(%(k)s::text[], %(i)s::text[]) AS u(k, i) CROSS JOIN LATERAL (SELECT {edge_columns}"
            " FROM rtdl_ieg_edges WHERE platform_run_id = %(run)s AND from_kind = u.k AND from_id = u.i"
            " AND relation = ANY(%(rel)s::text[]) OFFSET 0) AS e"
            f" UNION SELECT e.* FROM unnest(%(k)s::text[], %(i)s::text[]) AS u(k, i) CROSS JOIN LATERAL (SELECT {edge_columns}"
            " FROM rtdl_ieg_edges WHERE platform_run_id = %(run)s AND to_kind = u.k AND to_id = u.i"
            " AND relation = ANY(%(rel)s::text[]) OFFSET 0) AS e",
            {"k": kinds, "i": ids, "run": self.run, "rel": list(GRAPH_RELATIONS)}).fetchall()
        for a_kind, a_id, relation, b_kind, b_id, first_ts, first_id in rows:
            edge = (str(a_kind), str(a_id), str(relation), str(b_kind), str(b_id))
            first = (int(first_ts), str(first_id))
            state.edges[edge] = Seen(first, first)
            state.adjacency.setdefault((edge[0], edge[1]), set()).add(edge)
            state.adjacency.setdefault((edge[3], edge[4]), set()).add(edge)
        devices = sorted({e.text("device_id") for e in events})
        for entity_id, first_ts, first_id in conn.execute(
                "SELECT x.* FROM unnest(%s::text[]) AS u(i) CROSS JOIN LATERAL (SELECT entity_id, first_ts_micros, first_event_id"
                " FROM rtdl_ieg_entities WHERE platform_run_id = %s AND kind = 'device' AND entity_id = u.i LIMIT 1) AS x",
                (devices, self.run)).fetchall():
            first = (int(first_ts), str(first_id))
            state.entities[("device", str(entity_id))] = Seen(first, first)
        return state

    def features(self, event: Admitted) -> dict[str, dict[str, Any]]:
        """OFP's features of every entity of the event as of the event (the store's per-event answer)."""
        out = {}
        for fact in self._facts_of(event):
            rows, keys = self._facts.get((fact.entity_kind, fact.entity_id), ([], []))
            lo = bisect.bisect_right(keys, (fact.ts_micros - HORIZON_MICROS, "\uffff"))
            hi = bisect.bisect_right(keys, (fact.ts_micros, fact.event_id))
            facts = EntityFacts.from_sorted_rows(rows[lo:hi])
            out[fact.entity_kind] = features_as_of(facts, fact.entity_kind, fact.entity_id, fact.ts_micros, fact.event_id,
                                                   fact).canonical()
        return out

    def join(self, event: Admitted) -> dict[str, Any]:
        """The CSFB join as the in-memory state held it just before the event: binding and arrival
        count only when they came strictly before it; the event cannot have joined late yet."""
        at = event.order_key
        flow_id, session_id = event.text("flow_id"), event.text("session_id")
        binding = self._bindings.get(flow_id)
        if binding is not None and binding.order_key >= at:
            binding = None
        session = binding.session_id if binding is not None else session_id
        arrival = self._arrivals.get(session)
        if arrival is not None and arrival.order_key >= at:
            arrival = None
        state = CsfbState(bindings={flow_id: binding} if binding else {}, arrivals={session: arrival} if arrival else {})
        return readiness_input(state.join_readiness(flow_id, session_id))

    def inputs(self, event: Admitted, *, features: bool = True, graph: bool = True, join: bool = True,
               provenance: Provenance | None = None) -> DecisionInputs:
        """The decision inputs of one event of the batch; an input passed False is late (its store
        was not complete as of the event) and stays None: a degrade, never a default."""
        return DecisionInputs(self.features(event) if features else None, graph_signals(self._graph, event) if graph else None,
                              self.join(event) if join else None, provenance or Provenance())


def inputs_as_of(conn: Any, platform_run_id: str, event: Admitted) -> DecisionInputs:
    """The complete decision inputs of one traffic event read from the RTDL stores."""
    return BatchReader(conn, platform_run_id, [event]).inputs(event)


# -- completeness of the RTDL stores ----------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """An RTDL store DF reads: its component name, consumer group (positions), input topics and the
    WSP outputs whose records reach those topics."""

    component: str
    consumer_group: str
    topics: tuple[str, ...]
    outputs: tuple[str, ...] = ()


#: output_id -> (frontier_ts_micros or None, ended), one entry per scenario run WSP streams.
StreamFrontiers = dict[str, list[tuple[int | None, bool]]]


def stream_frontiers(conn: Any, platform_run_id: str) -> StreamFrontiers:
    """How far WSP's outputs of the run got in event time (read before the admissions it vouches for)."""
    out: StreamFrontiers = {}
    for row in conn.execute("SELECT output_id, frontier_ts_micros, ended FROM wsp_output_progress WHERE platform_run_id = %s",
                            (platform_run_id,)).fetchall():
        out.setdefault(str(row[0]), []).append((None if row[1] is None else int(row[1]), bool(row[2])))
    return out


def streams_behind(frontiers: StreamFrontiers, upstream: Upstream, ts_micros: int) -> list[str]:
    """The outputs feeding `upstream` that may still send a row at or before `ts_micros` (an
    output the run does not stream has no progress rows and holds nothing back)."""
    return [o for o in upstream.outputs
            if not all(ended or (frontier is not None and frontier > ts_micros) for frontier, ended in frontiers.get(o, ()))]


def upstream_complete(conn: Any, platform_run_id: str, upstream: Upstream, ts_micros: int,
                      run_last: dict[Partition, int], frontiers: StreamFrontiers | None = None) -> bool:
    """Whether the store has applied every record of the run at or before `ts_micros` and none
    can still come (see the module docstring). `frontiers` must be read before `run_last`."""
    return stores_complete(conn, platform_run_id, [upstream], ts_micros, run_last, frontiers or {})[upstream.component]


def stores_complete(conn: Any, platform_run_id: str, upstreams: Sequence[Upstream], ts_micros: int,
                    run_last: dict[Partition, int], frontiers: StreamFrontiers,
                    positions: dict[str, dict[Partition, int]] | None = None) -> dict[str, bool]:
    """`upstream_complete` of several stores at once: component -> complete. `positions` (consumer
    group -> its positions, read with or after `run_last`) spares reading them again; the
    admissions of every store's partitions behind its run_last are probed in one statement."""
    complete = {u.component: not streams_behind(frontiers, u, ts_micros) for u in upstreams}
    probes = _unapplied(conn, [u for u in upstreams if complete[u.component]], run_last, positions)
    if probes:
        keys = sorted(probes)
        # One index probe per (partition, position): a LATERAL ... LIMIT 1 is never turned into a
        # join over the run's admissions, whatever the planner's statistics say.
        rows = conn.execute(
            "SELECT p.i FROM unnest(%s::text[], %s::text[], %s::numeric[]) WITH ORDINALITY AS p(t, part, pos, i)"
            " CROSS JOIN LATERAL (SELECT 1 FROM ig_admissions WHERE platform_run_id = %s AND eb_ref->>'topic' = p.t"
            " AND eb_ref->>'partition' = p.part AND (eb_ref->>'offset')::numeric > p.pos"
            " AND (event_ts_micros IS NULL OR event_ts_micros <= %s) LIMIT 1) AS hit",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], platform_run_id, ts_micros)).fetchall()
        for (index,) in rows:
            for component in probes[keys[int(index) - 1]]:
                complete[component] = False
    return complete


def _unapplied(conn: Any, upstreams: Sequence[Upstream], run_last: dict[Partition, int],
               positions: dict[str, dict[Partition, int]] | None) -> dict[tuple[str, str, int], set[str]]:
    """(topic, partition, the store's position) -> the stores behind run_last on that partition."""
    probes: dict[tuple[str, str, int], set[str]] = {}
    for u in upstreams:
        behind = [p for p in sorted(run_last) if p[0] in u.topics]
        if not behind:
            continue
        held = positions[u.consumer_group] if positions is not None and u.consumer_group in positions else None
        held = held if held is not None else group_positions(conn, u.consumer_group)
        for topic, partition in behind:
            position = held.get((topic, partition), -1)
            if position < run_last[(topic, partition)]:
                probes.setdefault((topic, partition, position), set()).add(u.component)
    return probes


def stores_complete_at(conn: Any, platform_run_id: str, upstreams: Sequence[Upstream], times: Iterable[int],
                       run_last: dict[Partition, int], frontiers: StreamFrontiers,
                       positions: dict[str, dict[Partition, int]] | None = None) -> dict[int, dict[str, bool]]:
    """`stores_complete` at each of many event times, in one statement: per partition a store is
    behind on, the earliest event time among the admissions it has not applied (an admission
    without an event time counts as the earliest of all); a store is complete at T when every such
    time is after T. A batch of 2,000 events waited out is one scan per partition, not 2,000 probes
    (each of which scans to the partition's end when the store is complete at that time)."""
    times = sorted(set(times))
    probes = _unapplied(conn, upstreams, run_last, positions)
    earliest: dict[str, float] = {}  # component -> earliest unapplied event time over its partitions
    if probes:
        keys = sorted(probes)
        rows = conn.execute(
            "SELECT p.i, m.missing_ts, m.earliest FROM unnest(%s::text[], %s::text[], %s::numeric[]) WITH ORDINALITY"
            " AS p(t, part, pos, i) CROSS JOIN LATERAL (SELECT bool_or(event_ts_micros IS NULL) AS missing_ts,"
            " min(event_ts_micros) AS earliest FROM ig_admissions WHERE platform_run_id = %s AND eb_ref->>'topic' = p.t"
            " AND eb_ref->>'partition' = p.part AND (eb_ref->>'offset')::numeric > p.pos) AS m",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], platform_run_id)).fetchall()
        for index, missing_ts, first in rows:
            at = float("-inf") if missing_ts else (float(first) if first is not None else float("inf"))
            for component in probes[keys[int(index) - 1]]:
                earliest[component] = min(earliest.get(component, float("inf")), at)
    return {ts: {u.component: not streams_behind(frontiers, u, ts) and earliest.get(u.component, float("inf")) > ts
                 for u in upstreams} for ts in times}


@dataclass(frozen=True)
class InputsView:
    """What one check of a batch's inputs reads, in one statement (so one snapshot: WSP's frontiers
    are read no later than the admissions they vouch for, and the positions no earlier than
    run_last, which only makes a store look less complete than it may be by then)."""

    frontiers: StreamFrontiers
    run_last: dict[Partition, int]
    positions: dict[str, dict[Partition, int]]
    posture: str | None
    #: `admissions` of the batch's events: IG's receipt of an event commits with (or after) the
    #: admissions IG made before it, so those are all in run_last when the receipt is seen.
    receipts: dict[tuple[str, str], tuple[str, str]]


def inputs_view(conn: Any, platform_run_id: str, upstreams: Sequence[Upstream],
                identities: Sequence[tuple[str, str]] = ()) -> InputsView:
    """WSP's frontiers, run_last of the stores' topics, their groups' positions, DL's posture and
    the receipts of `identities`, in one round trip (DF re-checks them every POLL_S while a batch
    waits)."""
    topics = sorted({t for u in upstreams for t in u.topics})
    row = conn.execute(
        "SELECT (SELECT coalesce(json_agg(json_build_array(output_id, frontier_ts_micros, ended)), '[]') FROM wsp_output_progress"
        " WHERE platform_run_id = %(run)s),"
        f" (SELECT coalesce(json_agg(json_build_array(topic, part, last)), '[]') FROM ({RUN_LAST_OFFSETS_SQL}) AS r),"
        " (SELECT coalesce(json_agg(json_build_array(consumer_group, topic, partition, position)), '[]') FROM worker_positions"
        " WHERE consumer_group = ANY(%(groups)s::text[])),"
        " (SELECT posture FROM dl_posture_history WHERE platform_run_id = %(run)s ORDER BY seq DESC LIMIT 1),"
        f" (SELECT coalesce(json_agg(json_build_array(x.c, x.e, x.receipt_id, x.at)), '[]') FROM ({_RECEIPTS_SQL}) AS x)",
        {"run": platform_run_id, "ts": topics, "groups": sorted({u.consumer_group for u in upstreams}),
         "c": [c for c, _ in identities], "e": [e for _, e in identities]}).fetchone()
    frontiers: StreamFrontiers = {}
    for output, frontier, ended in row[0]:
        frontiers.setdefault(str(output), []).append((None if frontier is None else int(frontier), bool(ended)))
    positions: dict[str, dict[Partition, int]] = {u.consumer_group: {} for u in upstreams}
    for group, topic, partition, position in row[2]:
        positions[str(group)][(str(topic), str(partition))] = int(position)
    return InputsView(frontiers, {(str(t), str(p)): int(last) for t, p, last in row[1] if last is not None}, positions,
                      None if row[3] is None else str(row[3]),
                      {(str(c), str(e)): (str(receipt), str(at)) for c, e, receipt, at in row[4]})


# -- provenance: IG's receipts ------------------------------------------------------------------------


def admissions(conn: Any, platform_run_id: str, identities: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(event_class, event_id) -> (IG receipt id, admitted time) of the admitted events among
    `identities` (the ADMIT receipt; absent while IG has not written it yet)."""
    if not identities:
        return {}
    rows = conn.execute(_RECEIPTS_SQL, {"run": platform_run_id, "c": [c for c, _ in identities],
                                        "e": [e for _, e in identities]}).fetchall()
    return {(str(r[0]), str(r[1])): (str(r[2]), str(r[3])) for r in rows}


#: (event_class, event_id, receipt id, admitted time as ISO UTC with microseconds) of the earliest
#: ADMIT receipt of each identity (%(c)s, %(e)s) of the run %(run)s. One probe of
#: ig_receipts_identity per identity, whatever the planner's statistics say: the outcome is chosen
#: inside the probe (ADMIT first, then the earliest), not filtered in it. An `outcome = 'ADMIT'`
#: condition let a planner without statistics (a table not analysed yet: the first minute of every
#: fresh run, when psycopg also prepares the statement for good) pick ig_receipts_run_outcome and
#: scan every ADMIT receipt of the run once per identity (~70-130 ms a batch at 20k receipts,
#: growing with the run).
_RECEIPTS_SQL = (
    "SELECT u.c, u.e, r.receipt_id, to_char(r.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at"
    " FROM (SELECT DISTINCT c, e FROM unnest(%(c)s::text[], %(e)s::text[]) AS x(c, e)) AS u CROSS JOIN LATERAL"
    " (SELECT receipt_id, recorded_at, outcome FROM ig_receipts WHERE platform_run_id = %(run)s AND event_class = u.c"
    " AND event_id = u.e ORDER BY outcome <> 'ADMIT', recorded_at LIMIT 1) AS r WHERE r.outcome = 'ADMIT'")


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
    """Append decisions (one statement over one JSON document, ON CONFLICT DO NOTHING); returns the
    ids written now."""
    if not records:
        return set()
    rows = [{"d": r.decision_id, "r": r.platform_run_id, "c": r.event_class, "e": r.event_id, "ts": r.event_ts_utc,
             "o": r.outcome, "p": r.posture, "rc": [x["code"] for x in r.reasons], "dc": [x["code"] for x in r.degrade_reasons],
             "pd": r.policy["digest"], "cs": canonical_digest(r.core()), "rec": r.canonical(), "eb": ref,
             "rid": r.provenance.get("receipt_id"), "adm": r.provenance.get("admitted_at_utc"),
             "dec": r.provenance["decided_at_utc"]} for r, ref in zip(records, eb_refs, strict=True)]
    written = conn.execute(
        "INSERT INTO df_decisions (decision_id, platform_run_id, event_class, event_id, event_ts_utc, outcome, posture,"
        " reason_codes, degrade_codes, policy_digest, core_sha256, record, eb_ref, receipt_id, admitted_at, decided_at)"
        " SELECT d, r, c, e, ts, o, p, rc, dc, pd, cs, rec, eb, rid, adm, dec FROM jsonb_to_recordset(%s::jsonb) AS x(d text,"
        " r text, c text, e text, ts timestamptz, o text, p text, rc text[], dc text[], pd text, cs text, rec jsonb, eb jsonb,"
        " rid text, adm timestamptz, dec timestamptz) ON CONFLICT DO NOTHING RETURNING decision_id",
        (Jsonb(rows),)).fetchall()
    return {str(r[0]) for r in written}


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
    from runtime.db.postgres import stream_rows

    for (record,) in stream_rows(conn, "SELECT record FROM df_decisions WHERE platform_run_id = %s ORDER BY decision_id",
                                 (platform_run_id,)):
        yield dict(record)


def run_decision_digest(conn: Any, platform_run_id: str) -> str:
    """The run's decision digest from the table: equal across buses and replays (`decision_digest`).
    PostgreSQL orders the records as the digest does (bytewise, `COLLATE "C"`, whatever the
    database's collation: Python orders str by code point, UTF-8 bytes order the same way) and
    they stream into it (P9's job held 6.5 GB at 500k traffic events with them all in memory)."""
    from runtime.db.postgres import stream_rows

    records = stream_rows(conn, "SELECT record FROM df_decisions WHERE platform_run_id = %s"
                          ' ORDER BY event_class COLLATE "C", event_id COLLATE "C"', (platform_run_id,))
    return ordered_decision_digest(dict(record) for (record,) in records)


def admitted_without_decision(conn: Any, platform_run_id: str, event_classes: Sequence[str]) -> list[tuple[str, str]]:
    """(event_class, event_id) of the run's admitted events of `event_classes` that have no decision
    (P9's "every admitted traffic event decided": empty)."""
    rows = conn.execute(
        "SELECT a.event_class, a.event_id FROM ig_admissions a WHERE a.platform_run_id = %s AND a.state = 'ADMITTED'"
        " AND a.event_class = ANY(%s::text[]) AND NOT EXISTS (SELECT 1 FROM df_decisions d WHERE d.platform_run_id ="
        " a.platform_run_id AND d.event_class = a.event_class AND d.event_id = a.event_id) ORDER BY 1, 2",
        (platform_run_id, list(event_classes))).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]
