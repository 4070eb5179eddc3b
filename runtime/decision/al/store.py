"""AL's adapter to Postgres: the append-only effects table and the duplicates it prevented.

An effect row is inserted with ON CONFLICT DO NOTHING on (run, idempotency key), inside the
worker's transaction: the first delivery of an intent executes its effect, every later one (a
redelivery that got past the worker's positions, a replay under a new consumer group, the other
bus) finds the row and is recorded as a duplicate prevented. Both tables refuse UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    return record_effects(conn, [(outcome, intent_eb_ref)])[0]


def record_effects(conn: Any, deliveries: Sequence[tuple[ActionOutcome, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """`record_effect` for a batch of deliveries, in order, in one INSERT (and, only when some key is
    held already, one read of the held effects and one INSERT of the duplicates).

    The first delivery of a key in the batch executes it; a later one, or one whose key an earlier
    batch holds, is a duplicate. IntentConflict leaves the whole batch to the caller's savepoint
    (the stream worker then applies its records one by one and dead-letters the conflicting one).
    """
    if not deliveries:
        return []
    columns = list(zip(*[(o.platform_run_id, o.idempotency_key, o.intent_id, o.outcome_id, o.decision_id, o.event_id,
                          o.action_type, Jsonb(o.canonical()), Jsonb(ref)) for o, ref in deliveries], strict=True))
    inserted = {(str(run), str(key)) for run, key in conn.execute(
        "INSERT INTO al_effects (platform_run_id, idempotency_key, intent_id, outcome_id, decision_id, event_id, action_type,"
        " outcome, intent_eb_ref) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::jsonb[], %s::jsonb[]) ON CONFLICT DO NOTHING RETURNING platform_run_id, idempotency_key",
        [list(c) for c in columns]).fetchall()}
    results: list[dict[str, Any] | None] = [None] * len(deliveries)
    repeated: list[int] = []
    for i, (outcome, _) in enumerate(deliveries):
        key = (outcome.platform_run_id, outcome.idempotency_key)
        if key in inserted:
            inserted.discard(key)  # so a second delivery of the key in this batch is a duplicate
        else:
            repeated.append(i)
    if not repeated:
        return results
    wanted = sorted({(deliveries[i][0].platform_run_id, deliveries[i][0].idempotency_key) for i in repeated})
    held = {(str(run), str(key)): (str(intent), dict(outcome)) for run, key, intent, outcome in conn.execute(
        "SELECT e.platform_run_id, e.idempotency_key, e.intent_id, e.outcome FROM unnest(%s::text[], %s::text[]) AS w(run, key)"
        " CROSS JOIN LATERAL (SELECT platform_run_id, idempotency_key, intent_id, outcome FROM al_effects"
        " WHERE platform_run_id = w.run AND idempotency_key = w.key OFFSET 0) AS e",  # one probe per key (docs/decisions.md)
        ([r for r, _ in wanted], [k for _, k in wanted])).fetchall()}
    for i in repeated:
        outcome = deliveries[i][0]
        intent_id, held_outcome = held[(outcome.platform_run_id, outcome.idempotency_key)]
        if intent_id != outcome.intent_id:
            raise IntentConflict(f"idempotency key {outcome.idempotency_key} is held by intent {intent_id}, not {outcome.intent_id}")
        results[i] = held_outcome
    conn.execute(
        "INSERT INTO al_duplicates (platform_run_id, idempotency_key, intent_id, intent_eb_ref)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[])",
        ([deliveries[i][0].platform_run_id for i in repeated], [deliveries[i][0].idempotency_key for i in repeated],
         [deliveries[i][0].intent_id for i in repeated], [Jsonb(deliveries[i][1]) for i in repeated]))
    return results


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
