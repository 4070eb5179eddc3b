"""AL under the stream-handler contract: each intent's effect once, its outcome published, duplicates counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.contracts.canonical import canonical_json
from runtime.contracts.schemas import compiled_validator
from runtime.decision.al.handler import ActionHandler, build
from runtime.decision.al.store import action_counts, effects
from runtime.decision.bundle import load_policy
from runtime.decision.ids import outcome_id
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.decision.lane_bus import AUDIT_TOPIC, RTDL_TOPIC, lane_items
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv


def _handler(env: WorkerEnv) -> ActionHandler:
    return ActionHandler(RTDL_TOPIC, env.platform_run_id, load_policy().actions)


class TestActionHandlerContract(StreamHandlerContract):
    """Intents become effects exactly once; decisions on the same topic are ignored."""

    partitions = 1

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return _handler(env)

    def output_topics(self, env: WorkerEnv) -> list[str]:
        return [RTDL_TOPIC, AUDIT_TOPIC]

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return lane_items(env.platform_run_id, 24, classes=("decision_response", "action_intent"))

    def applied_for(self, env: WorkerEnv, published: list[tuple[str, str, dict[str, Any]]]) -> int:
        # AL reads fp.bus.rtdl.v1, where it publishes its outcomes: each is read back and ignored.
        return len(published) + sum(1 for _, _, e in published if e["event_class"] == "action_intent")

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        topic, key, intent = next(i for i in self.inputs(env) if i[2]["event_class"] == "action_intent")
        forged = json.loads(json.dumps(intent))
        forged["payload"]["intent_id"] = "0" * 32
        return topic, key, forged

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            return effects(conn, env.platform_run_id), action_counts(conn, env.platform_run_id)

    def intents(self, env: WorkerEnv) -> list[dict[str, Any]]:
        return [e for _, _, e in self.inputs(env) if e["event_class"] == "action_intent"]

    def outcomes_on_bus(self, env: WorkerEnv) -> list[dict[str, Any]]:
        docs = [json.loads(r.value) for r in env.broker.records(RTDL_TOPIC)]
        return [d for d in docs if d["event_class"] == "action_outcome"]

    def test_every_intent_executes_once_and_publishes_its_outcome(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        worker = self.drain(env)
        intents = self.intents(env)
        done, counts = self.state(env)
        assert counts.executed == len(intents) == len(done) and counts.duplicates_prevented == 0
        outcomes = self.outcomes_on_bus(env)
        assert sorted(o["event_id"] for o in outcomes) == sorted(outcome_id(i["event_id"]) for i in intents)
        assert {o["payload"]["action_type"] for o in outcomes} >= {"approve", "decline", "block_card"}
        validator = compiled_validator("events/payloads/action_outcome.schema.json")
        assert all(list(validator.iter_errors(o["payload"])) == [] for o in outcomes)
        # decisions and the outcomes AL reads back are ignored
        assert worker.handler.counters()["al_ignored_other_class"] == len(self.inputs(env)) - len(intents) + len(outcomes)

    def test_a_replay_under_a_new_consumer_group_executes_nothing_and_counts_every_intent_as_a_duplicate(
            self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        before, _ = self.state(env)
        published = len(env.broker.records(RTDL_TOPIC))
        replay = WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay")
        worker = self.drain(replay)
        after, counts = self.state(env)
        assert after == before
        assert counts.executed == len(before) and counts.duplicates_prevented == len(self.intents(env))
        assert worker.handler.counters()["al_duplicates_prevented"] == len(self.intents(env))
        assert len(env.broker.records(RTDL_TOPIC)) == published  # the same outcome ids: nothing re-published

    def test_duplicates_prevented_survive_a_restart(self, env: WorkerEnv) -> None:
        items = self.inputs(env)
        intent = next(i for i in items if i[2]["event_class"] == "action_intent")
        self.publish(env, [*items, intent, intent])
        self.drain(env)
        first = self.state(env)[1]
        assert first.duplicates_prevented == 2
        self.drain(env)  # a new process on the same group: nothing new, the count is still there
        assert self.state(env)[1] == first

    @pytest.mark.parametrize("change", [
        lambda p: p.update(platform_run_id="platform_20200101T000000Z"),
        lambda p: p.update(outcome="MAYBE"),
        lambda p: p.update(outcome="APPROVE", action_type="block_card"),
    ])
    def test_an_intent_for_an_unknown_decision_is_dead_lettered_and_nothing_is_acted_on(self, env: WorkerEnv, change) -> None:
        from runtime.decision.ids import idempotency_key, intent_id

        topic, key, intent = next(i for i in self.inputs(env) if i[2]["event_class"] == "action_intent")
        forged = json.loads(json.dumps(intent))
        payload = forged["payload"]
        change(payload)
        payload["intent_id"] = forged["event_id"] = intent_id(payload["decision_id"], payload["action_type"])
        payload["idempotency_key"] = idempotency_key(("platform_run_id", "decision_id", "action_type"), payload)
        self.publish(env, [(topic, key, forged)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        assert self.state(env) == self.empty_state(env)
        with env.db.transaction() as conn:
            code = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert code == ("ACTION_INTENT_UNKNOWN_DECISION",)

    @pytest.mark.parametrize("change", [
        lambda p: p.pop("subject"),
        lambda p: p.update(action_type="launch_missiles"),
        lambda p: p.update(idempotency_key="f" * 32),
        lambda p: p.update(subject="card crd_1"),
    ])
    def test_a_malformed_intent_is_dead_lettered_as_invalid(self, env: WorkerEnv, change) -> None:
        topic, key, intent = next(i for i in self.inputs(env) if i[2]["event_class"] == "action_intent")
        broken = json.loads(json.dumps(intent))
        change(broken["payload"])
        self.publish(env, [(topic, key, broken)])
        assert self.drain(env).counters.dead_lettered == 1
        with env.db.transaction() as conn:
            code = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert code == ("ACTION_INTENT_INVALID",)

    def test_outcomes_on_the_bus_are_byte_identical_to_the_pure_action_layer(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        expected = sorted(canonical_json(e) for _, _, e in lane_items(env.platform_run_id, 24, classes=("action_outcome",)))
        assert sorted(canonical_json(o) for o in self.outcomes_on_bus(env)) == expected


def test_build_reads_the_topic_and_key_fields_from_the_registry() -> None:
    handler = build(load_settings({}, environment="local_parity"), "platform_20260105T000000Z")
    assert handler.input_topics() == ["fp.bus.rtdl.v1"] and handler.component == "action_layer"
