"""AL as a stream handler: action intents on FP_BUS_RTDL_V1 -> effects executed once -> action outcomes.

Each intent is checked (`check_intent`: ids are what its content implies, the key matches
ACTION_IDEMPOTENCY_KEY_FIELDS), then checked against the decision it names. AL cannot read every
decision (it does not consume decision_response), so an intent is *for an unknown decision* when
what it says about that decision cannot be true: another run than the one AL serves, an outcome
the pinned policy does not have, or an action type the policy does not ask for on that outcome.
Both are PermanentErrors: the worker dead-letters the intent and nothing is acted on.

The effect is recorded in the append-only `al_effects` table (ON CONFLICT DO NOTHING on the
idempotency key) inside the worker's transaction, and the outcome (id H(intent), bytes a function
of the intent) goes to the outbox. A duplicate intent executes nothing: it is recorded in
`al_duplicates` and its outcome is produced again with the same id (the outbox keeps the first).
Other event classes on the topic (decisions, outcomes) are ignored and counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.decision.al.domain import ActionOutcome, IntentInvalid, check_intent
from runtime.decision.al.store import record_effects
from runtime.decision.bundle import load_policy
from runtime.decision.df.domain import DEFAULT_IDEMPOTENCY_FIELDS
from runtime.decision.lane import ACTION_INTENT, ACTION_OUTCOME, lane_envelope, lane_output
from runtime.errors import PermanentError
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class IntentForUnknownDecision(PermanentError):
    """An intent whose claims about its decision cannot be true for this run and the pinned policy."""

    code = "ACTION_INTENT_UNKNOWN_DECISION"
    next_step = ("the intent is dead-lettered with its eb_ref and nothing is acted on; check the DF that produced it "
                 "(run id, policy bundle) or whether the record was forged")


class ActionHandler(StreamHandler):
    """Executes each intent's simulated effect once per idempotency key and publishes its outcome."""

    component = "action_layer"

    def __init__(self, topic: str, platform_run_id: str, actions_by_outcome: Mapping[str, Sequence[str]],
                 key_fields: Sequence[str] = DEFAULT_IDEMPOTENCY_FIELDS):
        self.topic = topic
        self.platform_run_id = platform_run_id
        self.actions_by_outcome = {k: tuple(v) for k, v in actions_by_outcome.items()}
        self.key_fields = tuple(key_fields)
        self.intake = 0
        self.executed = 0
        self.duplicates_prevented = 0
        self.ignored = 0

    def input_topics(self) -> list[str]:
        """FP_BUS_RTDL_V1 (intents share it with decisions and outcomes)."""
        return [self.topic]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Execute every new intent, record every duplicate, return one outcome per intent."""
        outputs: dict[str, OutputRecord] = {}
        intake = executed = duplicates = ignored = 0
        intents: list[tuple[InputRecord, ActionOutcome]] = []
        for record in records:
            if record.event_class != ACTION_INTENT:
                ignored += 1
                continue
            intents.append((record, self.check(record)))
        intake = len(intents)
        held_outcomes = record_effects(conn, [(outcome, record.eb_ref.to_dict()) for record, outcome in intents])
        for (record, outcome), held in zip(intents, held_outcomes, strict=True):
            if held is None:
                executed += 1
                payload = outcome.canonical()
            else:
                duplicates += 1
                payload = held
            envelope = lane_envelope(ACTION_OUTCOME, outcome.outcome_id, payload, platform_run_id=self.platform_run_id,
                                     scenario_run_id=record.envelope.get("scenario_run_id"),
                                     ts_utc=str(record.envelope["ts_utc"]), producer=self.component)
            outputs.setdefault(outcome.outcome_id, lane_output(self.topic, outcome.decision_id, envelope))
        self.intake += intake
        self.executed += executed
        self.duplicates_prevented += duplicates
        self.ignored += ignored
        return list(outputs.values())

    def check(self, record: InputRecord) -> ActionOutcome:
        """The outcome of one intent record, or the PermanentError that dead-letters it."""
        intent = record.payload
        outcome, _ = check_intent(intent, self.key_fields)
        if record.event_id != outcome.intent_id:
            raise IntentInvalid(f"envelope event_id {record.event_id} is not the intent's id {outcome.intent_id}")
        if not _HEX32.match(outcome.decision_id):
            raise IntentInvalid(f"decision_id {outcome.decision_id!r} is not a decision id (32 hex)")
        if outcome.platform_run_id != self.platform_run_id:
            raise IntentForUnknownDecision(f"intent {outcome.intent_id} names a decision of run {outcome.platform_run_id}, "
                                           f"AL serves {self.platform_run_id}")
        asked = self.actions_by_outcome.get(str(intent.get("outcome")))
        if asked is None:
            raise IntentForUnknownDecision(f"intent {outcome.intent_id} names decision outcome {intent.get('outcome')!r}, "
                                           f"not one of the policy's {', '.join(self.actions_by_outcome)}")
        if outcome.action_type not in asked:
            raise IntentForUnknownDecision(f"intent {outcome.intent_id}: the policy asks {', '.join(asked)} for a "
                                           f"{intent.get('outcome')} decision, not {outcome.action_type}")
        return outcome

    def counters(self) -> dict[str, int]:
        """This process's intake, effects executed, duplicates prevented, other records ignored.

        A batch the worker rolls back (a crash, a refused record redone one by one) may be counted
        again; the durable figures for evidence are `al.store.action_counts`.
        """
        return {"al_intake": self.intake, "al_executed": self.executed, "al_duplicates_prevented": self.duplicates_prevented,
                "al_ignored_other_class": self.ignored}


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The AL handler of `platform_run_id`: topic, key fields from the registry; actions from the shipped policy."""
    registry = settings.registry
    return ActionHandler(registry.topic("FP_BUS_RTDL_V1").name, platform_run_id, load_policy().actions,
                         [str(f) for f in registry.value("ACTION_IDEMPOTENCY_KEY_FIELDS")])
