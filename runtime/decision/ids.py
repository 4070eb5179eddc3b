"""Deterministic ids of the decision lane: decision, action intent, action outcome, idempotency key.

Each id is a pure function of what it names (DESIGN.md section 8), so a redelivery, a crash
restart, the other bus or a replay give the same id, and a duplicate is recognised by its id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runtime.contracts.canonical import canonical_digest


def decision_id(platform_run_id: str, event_class: str, event_id: str, policy_digest: str) -> str:
    """H(run, event_class, event_id, policy digest): one decision per event and policy."""
    return canonical_digest({"platform_run_id": platform_run_id, "event_class": event_class, "event_id": event_id,
                             "policy_digest": policy_digest})[:32]


def intent_id(decision: str, action_type: str) -> str:
    """H(decision, action type): one intent per action a decision asks for."""
    return canonical_digest({"decision_id": decision, "action_type": action_type})[:32]


def outcome_id(intent: str) -> str:
    """H(intent): one outcome per intent, however often the intent is delivered."""
    return canonical_digest({"intent_id": intent})[:32]


def idempotency_key(fields: Sequence[str], values: Mapping[str, object]) -> str:
    """H of the values of `fields` (ACTION_IDEMPOTENCY_KEY_FIELDS): the key AL executes an effect at most once for.

    A missing field is an error, never an empty value: two different intents must not collide.
    """
    missing = [f for f in fields if values.get(f) in (None, "")]
    if missing:
        raise KeyError(f"idempotency key fields missing: {', '.join(missing)}")
    return canonical_digest({f: values[f] for f in fields})[:32]
