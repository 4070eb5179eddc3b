"""AL: each intent's effect executed once per idempotency key; duplicates prevented; forged or unknown intents refused."""

from __future__ import annotations

import pytest

from runtime.contracts.schemas import compiled_validator
from runtime.decision.al.domain import ActionLayer, IntentConflict, IntentInvalid
from runtime.decision.df.domain import action_intents
from runtime.decision.ids import outcome_id
from tests.runtime.decision.support import World, decide_one
from tests.runtime.rtdl.envelopes import anchor, arrival, traffic


def _declined_intents() -> list[dict]:
    w = World()
    w.feed(arrival(0, device="dev_new"), anchor(0, device="dev_new"))
    for i in range(3):
        w.feed(traffic(30 * i + 1, amount=1.5, device="dev_new", merchant=f"mer_{i}", flow=f"flw_{i}"))
    probe = traffic(100, amount=1.2, device="dev_new", merchant="mer_9")
    return [i.canonical() for i in action_intents(decide_one(probe, w.inputs(probe)))]


def test_each_intent_is_executed_once_with_outcome_id_h_of_intent():
    al = ActionLayer()
    decline, block = _declined_intents()
    outcome, duplicate = al.execute(decline)
    assert not duplicate and outcome.outcome_id == outcome_id(decline["intent_id"]) and outcome.effect["authorization"] == "DECLINED"
    outcome, _ = al.execute(block)
    assert outcome.effect == {"card_id": "crd_1", "card_status": "BLOCKED"} and al.blocked_cards == {"crd_1"}
    assert compiled_validator("events/payloads/action_outcome.schema.json").is_valid(outcome.canonical())


def test_a_redelivered_intent_is_a_duplicate_prevented_and_acts_on_nothing():
    al = ActionLayer()
    intents = _declined_intents()
    first = [al.execute(i)[0] for i in intents]
    again = [al.execute(dict(i)) for i in intents]
    assert [o for o, _ in again] == first and all(dup for _, dup in again)
    assert (al.counters.intake, al.counters.executed, al.counters.duplicates_prevented) == (4, 2, 2)
    assert len(al.outcomes) == 2


def test_an_intent_whose_id_is_not_h_of_decision_and_action_is_refused():
    al = ActionLayer()
    intent = {**_declined_intents()[0], "intent_id": "f" * 32}
    with pytest.raises(IntentInvalid, match="intent_id"):
        al.execute(intent)
    assert al.counters.refused == 1 and al.counters.executed == 0


def test_an_intent_with_a_wrong_idempotency_key_is_refused():
    with pytest.raises(IntentInvalid, match="idempotency_key"):
        ActionLayer().execute({**_declined_intents()[0], "idempotency_key": "0" * 32})


def test_an_unknown_action_type_or_a_missing_field_is_refused():
    intent = _declined_intents()[0]
    with pytest.raises(IntentInvalid, match="action type"):
        ActionLayer().execute({**intent, "action_type": "refund"})
    with pytest.raises(IntentInvalid, match="decision_id"):
        ActionLayer().execute({k: v for k, v in intent.items() if k != "decision_id"})


def test_two_intents_holding_one_key_is_a_conflict_not_a_second_effect():
    al = ActionLayer(key_fields=("platform_run_id", "event_id"))  # a coarser key: both intents of a decision collide
    decline, block = _declined_intents()
    from runtime.decision.ids import idempotency_key

    al.execute({**decline, "idempotency_key": idempotency_key(al.key_fields, decline)})
    with pytest.raises(IntentConflict):
        al.execute({**block, "idempotency_key": idempotency_key(al.key_fields, block)})
    assert al.counters.executed == 1 and al.blocked_cards == set()
