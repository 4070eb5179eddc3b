"""CaseTrigger under the stream-handler contract: decisions joined with DLA's audit records become one
case trigger each, published once; replays publish nothing; bad input is dead-lettered whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.case.trigger.domain import read_trigger
from runtime.case.trigger.handler import CaseTriggerHandler, audit_id_of_decision, build
from runtime.case.trigger.store import trigger_counts, triggers
from runtime.contracts.schemas import compiled_validator
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.case.lane import AUDIT_TOPIC, CASE_TOPIC, RTDL_TOPIC, audit_envelope, decision_items, decisions
from tests.runtime.decision.lane_bus import lane_items
from tests.runtime.decision.support import assert_truth_tables_refuse_change
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv


def _handler(env: WorkerEnv) -> CaseTriggerHandler:
    return CaseTriggerHandler(RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC, env.platform_run_id)


class TestCaseTriggerContract(StreamHandlerContract):
    """REVIEW and DECLINE decisions recorded by DLA become triggers; APPROVE and STEP_UP do not."""

    partitions = 1

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return _handler(env)

    def output_topics(self, env: WorkerEnv) -> list[str]:
        return [CASE_TOPIC]

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return decision_items(env.platform_run_id, 16)

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        forged = json.loads(json.dumps(decisions(env.platform_run_id, 1, start=40)[0]))
        del forged["payload"]["provenance"]
        return RTDL_TOPIC, forged["event_id"], forged

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            return triggers(conn, env.platform_run_id), trigger_counts(conn, env.platform_run_id)

    def published(self, env: WorkerEnv) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in env.broker.records(CASE_TOPIC)]

    def test_each_review_or_decline_decision_publishes_one_trigger_with_its_audit_record(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        needing = [d for d in decisions(env.platform_run_id, 16) if d["payload"]["outcome"] in ("REVIEW", "DECLINE")]
        out = self.published(env)
        assert len(needing) == 8 and sorted(o["payload"]["decision_id"] for o in out) == sorted(d["event_id"] for d in needing)
        validator = compiled_validator("events/payloads/case_trigger.schema.json")
        for o in out:
            assert list(validator.iter_errors(o["payload"])) == []
            trigger = read_trigger(o["payload"])
            assert o["event_id"] == trigger.trigger_id and o["event_class"] == "case_trigger"
            assert trigger.audit_record_id == audit_id_of_decision(trigger.decision_id)
            assert trigger.receipt_id and trigger.eb_ref["topic"] == "fp.bus.traffic.fraud.v1"
        _, counts = self.state(env)
        assert (counts.decisions_needing_case, counts.audit_refs, counts.triggers_published, counts.awaiting_audit) == (8, 16, 8, 0)

    def test_a_decision_waits_for_its_audit_record_whichever_comes_first(self, env: WorkerEnv) -> None:
        items = self.inputs(env)
        rtdl = [i for i in items if i[0] == RTDL_TOPIC]
        audit = [i for i in items if i[0] == AUDIT_TOPIC]
        self.publish(env, rtdl)
        self.drain(env)
        assert self.published(env) == []
        assert self.state(env)[1].awaiting_audit == 8
        self.publish(env, audit)
        self.drain(env)
        assert len(self.published(env)) == 8 and self.state(env)[1].awaiting_audit == 0

    def test_a_replay_under_a_new_consumer_group_publishes_nothing_new(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        before = self.state(env)
        replay = WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay")
        worker = self.drain(replay)
        assert worker.counters.applied == len(self.inputs(env))
        assert len(self.published(env)) == 8 and self.state(env) == before

    def test_intents_outcomes_and_their_audit_records_are_ignored_and_counted(self, env: WorkerEnv) -> None:
        others = lane_items(env.platform_run_id, 4, classes=("action_intent", "action_outcome"))
        self.publish(env, others)
        worker = self.drain(env)
        assert worker.handler.counters()["case_trigger_ignored_other_class"] == len(others)
        assert self.state(env) == self.empty_state(env)

    @pytest.mark.parametrize("hostile", ["other_run_payload", "event_id_not_decision", "content_differs_from_audit",
                                         "audit_of_other_decision", "reasons_not_codes"])
    def test_hostile_input_is_dead_lettered_with_its_code_and_nothing_is_held(self, env: WorkerEnv, hostile: str) -> None:
        run = env.platform_run_id
        decision = json.loads(json.dumps(decisions(run, 3)[2]))  # a REVIEW
        audit = audit_envelope(run, decision)
        code = "CASE_TRIGGER_DECISION_INVALID"
        if hostile == "other_run_payload":
            decision["payload"]["platform_run_id"] = "platform_20000101T000000Z"
            code = "CASE_TRIGGER_DECISION_UNKNOWN"
        elif hostile == "event_id_not_decision":
            decision["event_id"] = "0" * 32
        elif hostile == "content_differs_from_audit":
            decision["payload"]["score"] = 0.99  # not what DLA recorded under this decision id
            code = "CASE_TRIGGER_DECISION_UNKNOWN"
        elif hostile == "audit_of_other_decision":
            audit["payload"]["record_id"] = "1" * 32
        elif hostile == "reasons_not_codes":
            decision["payload"]["reasons"] = [{"code": "lower case"}]
        self.publish(env, [(RTDL_TOPIC, "k", decision), (AUDIT_TOPIC, "k", audit)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert row == (code,)
        assert self.published(env) == [] and self.state(env)[0] == []

    def test_a_duplicate_decision_with_other_content_is_a_conflict(self, env: WorkerEnv) -> None:
        decision = decisions(env.platform_run_id, 3)[2]
        forged = json.loads(json.dumps(decision))
        forged["payload"]["score"] = 0.5
        self.publish(env, [(RTDL_TOPIC, "k", decision), (RTDL_TOPIC, "k", forged)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert row == ("CASE_TRIGGER_DECISION_CONFLICT",)


def test_build_reads_its_topics_from_the_registry() -> None:
    handler = build(load_settings(), "platform_20260105T000000Z")
    registry = load_settings().registry
    assert handler.input_topics() == [registry.topic("FP_BUS_RTDL_V1").name, registry.topic("FP_BUS_AUDIT_V1").name]
    assert handler.component == "case_trigger"


def test_trigger_tables_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("case_trigger_decisions", "case_trigger_audit_refs", "case_triggers"))
