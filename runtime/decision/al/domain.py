"""The action layer (AL): execute the simulated effect of each action intent exactly once.

An intent is executed at most once per idempotency key (H of ACTION_IDEMPOTENCY_KEY_FIELDS:
run, decision, action type); a redelivered or replayed intent returns the outcome already
recorded and is counted as a duplicate prevented. The outcome id is H(intent), and the effect is a
pure function of the intent, so the outcome record is the same however often it is produced.
An intent whose ids do not add up (forged or corrupted) or whose action type is unknown is
refused with a specific error: the worker dead-letters it and nothing is acted on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.decision.df.domain import DEFAULT_IDEMPOTENCY_FIELDS
from runtime.decision.ids import idempotency_key, intent_id, outcome_id
from runtime.errors import PermanentError

ACTION_TYPES = ("approve", "step_up_challenge", "queue_for_review", "decline", "block_card")
REVIEW_QUEUE = "fraud_review"


class IntentInvalid(PermanentError):
    """An action intent AL cannot act on: missing fields, ids that do not match, an unknown action type."""

    code = "ACTION_INTENT_INVALID"
    next_step = "the intent is dead-lettered with its eb_ref; check the DF that produced it (ids are H(decision, action type))"


class IntentConflict(PermanentError):
    """Another intent already holds this idempotency key: acting on it would act twice."""

    code = "ACTION_INTENT_CONFLICT"
    next_step = "the intent is dead-lettered; two intents with one key mean a DF bug or a forged record: investigate"


@dataclass(frozen=True)
class ActionOutcome:
    """The recorded result of one intent's effect (the action_outcome payload)."""

    outcome_id: str
    intent_id: str
    decision_id: str
    platform_run_id: str
    event_id: str
    action_type: str
    status: str
    effect: dict[str, Any]
    idempotency_key: str

    def canonical(self) -> dict[str, Any]:
        """Plain form."""
        return {"outcome_id": self.outcome_id, "intent_id": self.intent_id, "decision_id": self.decision_id,
                "platform_run_id": self.platform_run_id, "event_id": self.event_id, "action_type": self.action_type,
                "status": self.status, "effect": dict(self.effect), "idempotency_key": self.idempotency_key}


def effect_of(action_type: str, subject: Mapping[str, Any]) -> dict[str, Any]:
    """The simulated effect of an action on its subject (pure: same intent, same effect)."""
    if action_type == "approve":
        return {"authorization": "APPROVED", "flow_id": subject.get("flow_id")}
    if action_type == "decline":
        return {"authorization": "DECLINED", "flow_id": subject.get("flow_id")}
    if action_type == "block_card":
        return {"card_id": subject.get("card_id"), "card_status": "BLOCKED"}
    if action_type == "step_up_challenge":
        return {"customer_id": subject.get("customer_id"), "challenge": "OTP_SENT"}
    if action_type == "queue_for_review":
        return {"queue": REVIEW_QUEUE, "flow_id": subject.get("flow_id")}
    raise IntentInvalid(f"action type {action_type!r} is not one of {', '.join(ACTION_TYPES)}")


@dataclass
class AlCounters:
    """Intake, executed effects, duplicates prevented, refused intents."""

    intake: int = 0
    executed: int = 0
    duplicates_prevented: int = 0
    refused: int = 0


@dataclass
class ActionLayer:
    """In-memory AL state: outcomes by idempotency key, blocked cards, the review queue, counters.

    The Postgres store keeps the same outcome rows (append-only, unique on the idempotency key).
    """

    key_fields: Sequence[str] = DEFAULT_IDEMPOTENCY_FIELDS
    outcomes: dict[str, ActionOutcome] = field(default_factory=dict)
    blocked_cards: set[str] = field(default_factory=set)
    review_queue: list[str] = field(default_factory=list)
    counters: AlCounters = field(default_factory=AlCounters)

    def execute(self, intent: Mapping[str, Any]) -> tuple[ActionOutcome, bool]:
        """Execute one intent (an action_intent payload); returns (outcome, duplicate).

        A duplicate (the key already executed, same intent) returns the recorded outcome and acts on nothing.
        """
        self.counters.intake += 1
        try:
            outcome, key = self._check(intent)
        except (IntentInvalid, IntentConflict):
            self.counters.refused += 1
            raise
        held = self.outcomes.get(key)
        if held is not None:
            if held.intent_id != outcome.intent_id:
                self.counters.refused += 1
                raise IntentConflict(f"idempotency key {key} is held by intent {held.intent_id}, not {outcome.intent_id}")
            self.counters.duplicates_prevented += 1
            return held, True
        self.outcomes[key] = outcome
        self.counters.executed += 1
        if outcome.action_type == "block_card":
            self.blocked_cards.add(str(outcome.effect["card_id"]))
        elif outcome.action_type == "queue_for_review":
            self.review_queue.append(outcome.decision_id)
        return outcome, False

    def _check(self, intent: Mapping[str, Any]) -> tuple[ActionOutcome, str]:
        missing = [k for k in ("intent_id", "decision_id", "platform_run_id", "event_id", "action_type", "subject",
                               "idempotency_key") if not intent.get(k)]
        if missing:
            raise IntentInvalid(f"action intent lacks {', '.join(missing)}")
        action_type = str(intent["action_type"])
        effect = effect_of(action_type, intent["subject"])
        expected_intent = intent_id(str(intent["decision_id"]), action_type)
        if intent["intent_id"] != expected_intent:
            raise IntentInvalid(f"intent_id {intent['intent_id']} is not H(decision, action type) = {expected_intent}")
        try:
            key = idempotency_key(self.key_fields, intent)
        except KeyError as e:
            raise IntentInvalid(str(e)) from e
        if intent["idempotency_key"] != key:
            raise IntentInvalid(f"idempotency_key {intent['idempotency_key']} does not match its fields ({key})")
        outcome = ActionOutcome(outcome_id(expected_intent), expected_intent, str(intent["decision_id"]),
                                str(intent["platform_run_id"]), str(intent["event_id"]), action_type, "EXECUTED", effect, key)
        return outcome, key
