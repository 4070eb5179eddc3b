"""CaseTrigger's adapter to Postgres: the decision/audit join and the published trigger ids.

A decision that needs a case waits in `case_trigger_decisions` until DLA's audit record of it is
in `case_trigger_audit_refs` (or the other way round: either may arrive first); the trigger is
then inserted into `case_triggers` with ON CONFLICT DO NOTHING, and only a trigger id inserted
now goes to the outbox: a replayed decision or audit record (redelivery, new consumer group)
publishes nothing. All three tables are append-only; an id stored with other content is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from runtime.case.trigger.domain import CaseTrigger
from runtime.errors import PermanentError


class TriggerDecisionConflict(PermanentError):
    """A decision id (or its audit record) arrives again with other content than the one held."""

    code = "CASE_TRIGGER_DECISION_CONFLICT"
    next_step = ("the held record stands and this one is dead-lettered; two contents under one decision id mean a "
                 "producer bug or a forged record: compare both with the DLA chain (`decision_chain`)")


@dataclass(frozen=True)
class Candidate:
    """A decision that needs a case, as held until its audit record arrives."""

    decision_id: str
    record_sha256: str
    decision: dict[str, Any]
    envelope_ts_utc: str


@dataclass(frozen=True)
class AuditRef:
    """DLA's audit record of one decision: its audit id and the sha256 DLA took of the decision."""

    decision_id: str
    audit_id: str
    record_sha256: str


@dataclass(frozen=True)
class Ready:
    """A decision whose audit record is held too: the trigger may be published."""

    candidate: Candidate
    audit: AuditRef


def _check_held(conn: Any, table: str, run: str, offered: dict[str, tuple[str, ...]], columns: str) -> None:
    rows = conn.execute(f"SELECT decision_id, {columns} FROM {table} WHERE platform_run_id = %s AND decision_id = ANY(%s)",
                        (run, sorted(offered))).fetchall()
    for row in rows:
        if tuple(row[1:]) != offered[row[0]]:
            raise TriggerDecisionConflict(f"{table}: decision {row[0]} is held with other content")


def hold_candidates(conn: Any, run: str, candidates: Sequence[Candidate]) -> None:
    """Append the decisions that need a case (a decision held with another sha256 is refused)."""
    offered: dict[str, tuple[str, ...]] = {}
    for c in candidates:
        if offered.setdefault(c.decision_id, (c.record_sha256,)) != (c.record_sha256,):
            raise TriggerDecisionConflict(f"decision {c.decision_id} arrives twice with different content")
    if not offered:
        return
    _check_held(conn, "case_trigger_decisions", run, offered, "record_sha256")
    conn.cursor().executemany(
        "INSERT INTO case_trigger_decisions (platform_run_id, decision_id, record_sha256, decision, envelope_ts_utc)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(run, c.decision_id, c.record_sha256, Jsonb(c.decision), c.envelope_ts_utc) for c in candidates])


def hold_audit_refs(conn: Any, run: str, refs: Sequence[AuditRef]) -> None:
    """Append DLA's audit records of decisions (one held with another audit id or sha256 is refused)."""
    offered: dict[str, tuple[str, ...]] = {}
    for r in refs:
        if offered.setdefault(r.decision_id, (r.audit_id, r.record_sha256)) != (r.audit_id, r.record_sha256):
            raise TriggerDecisionConflict(f"audit record of decision {r.decision_id} arrives twice with different content")
    if not offered:
        return
    _check_held(conn, "case_trigger_audit_refs", run, offered, "audit_id, record_sha256")
    conn.cursor().executemany(
        "INSERT INTO case_trigger_audit_refs (platform_run_id, decision_id, audit_id, record_sha256)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(run, r.decision_id, r.audit_id, r.record_sha256) for r in refs])


def ready(conn: Any, run: str, decision_ids: Sequence[str]) -> list[Ready]:
    """The decisions among `decision_ids` held on both sides of the join, in decision id order."""
    if not decision_ids:
        return []
    rows = conn.execute(
        "SELECT d.decision_id, d.record_sha256, d.decision, d.envelope_ts_utc, a.audit_id, a.record_sha256"
        " FROM case_trigger_decisions d JOIN case_trigger_audit_refs a USING (platform_run_id, decision_id)"
        " WHERE d.platform_run_id = %s AND d.decision_id = ANY(%s) ORDER BY d.decision_id",
        (run, sorted(set(decision_ids)))).fetchall()
    return [Ready(Candidate(r[0], r[1], dict(r[2]), r[3]), AuditRef(r[0], r[4], r[5])) for r in rows]


def record_triggers(conn: Any, run: str, triggers: Sequence[CaseTrigger]) -> set[str]:
    """Append `triggers`; the ids inserted now (only those are published: a replay inserts none)."""
    if not triggers:
        return set()
    rows = conn.execute(
        "INSERT INTO case_triggers (platform_run_id, trigger_id, case_id, decision_id, payload)"
        " SELECT %s, t, c, d, p::jsonb FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS u(t, c, d, p)"
        " ON CONFLICT DO NOTHING RETURNING trigger_id",
        (run, [t.trigger_id for t in triggers], [t.case_id for t in triggers], [t.decision_id for t in triggers],
         [json.dumps(t.payload()) for t in triggers])).fetchall()
    return {str(r[0]) for r in rows}


def published_triggers(conn: Any, run: str, trigger_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The payloads CaseTrigger published under `trigger_ids` (CM's check that a trigger is CaseTrigger's)."""
    if not trigger_ids:
        return {}
    rows = conn.execute("SELECT trigger_id, payload FROM case_triggers WHERE platform_run_id = %s AND trigger_id = ANY(%s)",
                        (run, sorted(set(trigger_ids)))).fetchall()
    return {str(r[0]): dict(r[1]) for r in rows}


@dataclass(frozen=True)
class TriggerCounts:
    """CaseTrigger's durable figures for a run: decisions held, audit refs held, triggers published, waiting."""

    decisions_needing_case: int
    audit_refs: int
    triggers_published: int
    awaiting_audit: int


def trigger_counts(conn: Any, run: str) -> TriggerCounts:
    """What the durable tables say about the run (P10's triggers processed / published)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM case_trigger_decisions WHERE platform_run_id = %(r)s),"
        " (SELECT count(*) FROM case_trigger_audit_refs WHERE platform_run_id = %(r)s),"
        " (SELECT count(*) FROM case_triggers WHERE platform_run_id = %(r)s),"
        " (SELECT count(*) FROM case_trigger_decisions d WHERE d.platform_run_id = %(r)s AND NOT EXISTS"
        "   (SELECT 1 FROM case_trigger_audit_refs a WHERE a.platform_run_id = d.platform_run_id"
        "    AND a.decision_id = d.decision_id))", {"r": run}).fetchone()
    return TriggerCounts(*(int(v) for v in row))


def triggers(conn: Any, run: str) -> list[dict[str, Any]]:
    """Every published trigger payload of the run, in trigger id order."""
    rows = conn.execute("SELECT payload FROM case_triggers WHERE platform_run_id = %s ORDER BY trigger_id", (run,)).fetchall()
    return [dict(r[0]) for r in rows]
