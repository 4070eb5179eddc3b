"""AL's adapter to Postgres: the append-only effects table and the duplicates it prevented.

An effect row is inserted with ON CONFLICT DO NOTHING on (run, idempotency key), inside the
worker's transaction: the first delivery of an intent executes its effect, every later one (a
redelivery that got past the worker's positions, a replay under a new consumer group, the other
bus) finds the row and is recorded as a duplicate prevented. Both tables refuse UPDATE and DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from runtime.decision.al.domain import ActionOutcome, IntentConflict


@dataclass(frozen=True)
class ActionCounts:
    """What AL's durable state says about a run: effects executed, duplicates prevented, by action type."""

    executed: int
    duplicates_prevented: int
    by_action_type: dict[str, int]


def record_effect(conn: Any, outcome: ActionOutcome, intent_eb_ref: dict[str, Any]) -> dict[str, Any] | None:
    """Execute (record) the effect of `outcome` once; None when it is new, else the outcome already held.

    A held effect of another intent under the same key is IntentConflict: nothing is acted on twice.
    A duplicate is appended to al_duplicates with the eb_ref of this delivery.
    """
    row = conn.execute(
        "INSERT INTO al_effects (platform_run_id, idempotency_key, intent_id, outcome_id, decision_id, event_id, action_type,"
        " outcome, intent_eb_ref) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (outcome.platform_run_id, outcome.idempotency_key, outcome.intent_id, outcome.outcome_id, outcome.decision_id,
         outcome.event_id, outcome.action_type, Jsonb(outcome.canonical()), Jsonb(intent_eb_ref)),
    ).fetchone()
    if row is not None:
        return None
    held = conn.execute("SELECT intent_id, outcome FROM al_effects WHERE platform_run_id = %s AND idempotency_key = %s",
                        (outcome.platform_run_id, outcome.idempotency_key)).fetchone()
    if held[0] != outcome.intent_id:
        raise IntentConflict(f"idempotency key {outcome.idempotency_key} is held by intent {held[0]}, not {outcome.intent_id}")
    conn.execute("INSERT INTO al_duplicates (platform_run_id, idempotency_key, intent_id, intent_eb_ref) VALUES (%s, %s, %s, %s)",
                 (outcome.platform_run_id, outcome.idempotency_key, outcome.intent_id, Jsonb(intent_eb_ref)))
    return dict(held[1])


def action_counts(conn: Any, platform_run_id: str) -> ActionCounts:
    """The run's effects and duplicates prevented, read from the durable tables (what P9 reports)."""
    by_type = {str(t): int(n) for t, n in conn.execute(
        "SELECT action_type, count(*) FROM al_effects WHERE platform_run_id = %s GROUP BY 1 ORDER BY 1",
        (platform_run_id,)).fetchall()}
    dup = conn.execute("SELECT count(*) FROM al_duplicates WHERE platform_run_id = %s", (platform_run_id,)).fetchone()
    return ActionCounts(sum(by_type.values()), int(dup[0]), by_type)


def effects(conn: Any, platform_run_id: str) -> list[dict[str, Any]]:
    """Every outcome AL recorded for the run, in idempotency-key order."""
    rows = conn.execute("SELECT outcome FROM al_effects WHERE platform_run_id = %s ORDER BY idempotency_key",
                        (platform_run_id,)).fetchall()
    return [dict(r[0]) for r in rows]
