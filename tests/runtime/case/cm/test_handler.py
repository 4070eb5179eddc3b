"""CM under the stream-handler contract: triggers open and join cases on an append-only timeline; a
replay appends nothing; a bad trigger is dead-lettered and nothing of it is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.case.cm.domain import case_state
from runtime.case.cm.handler import CaseManagementHandler, build
from runtime.case.cm.store import case_events, cases, run_events
from runtime.case.trigger.domain import read_trigger, trigger_for
from runtime.case.trigger.handler import CASE_TRIGGER
from runtime.case.trigger.store import record_triggers
from runtime.db.postgres import Database
from runtime.decision.lane import lane_envelope
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.case.lane import CASE_TOPIC, trigger_items
from tests.runtime.case.records import decision_record
from tests.runtime.decision.support import assert_truth_tables_refuse_change
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv


def _as_published(db: Database, items: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """Record `items` in case_triggers as CaseTrigger does when it publishes them (CM checks there)."""
    with db.transaction() as conn:
        for _, _, envelope in items:
            trigger = read_trigger(envelope["payload"])
            record_triggers(conn, trigger.subject.platform_run_id, [trigger])
    return items


def _trigger_item(run: str, n: int, *, event: int, reasons: list[Any] | None = None,
                  decided_at: str = "2026-01-05T10:00:00Z") -> tuple[str, str, dict[str, Any]]:
    trigger = trigger_for(decision_record(n, event=event, reasons=reasons, decided_at=decided_at, platform_run_id=run))
    assert trigger is not None
    envelope = lane_envelope(CASE_TRIGGER, trigger.trigger_id, trigger.payload(), platform_run_id=run,
                             scenario_run_id=None, ts_utc=trigger.event_ts_utc, producer="case_trigger")
    return CASE_TOPIC, trigger.case_id, envelope


class TestCaseManagementContract(StreamHandlerContract):
    """Each trigger of a real REVIEW/DECLINE decision opens its case and attaches its evidence."""

    partitions = 1

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return CaseManagementHandler(CASE_TOPIC, env.platform_run_id)

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return _as_published(env.db, trigger_items(env.platform_run_id, 64))

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        topic, key, trigger = trigger_items(env.platform_run_id, 4, start=80)[0]
        forged = json.loads(json.dumps(trigger))
        forged["payload"]["queue"] = "velocity" if forged["payload"]["queue"] != "velocity" else "degraded"
        forged["payload"]["case_id"] = "0" * 32  # ids that do not add up
        return topic, key, forged

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            return sorted(e.row()["timeline_event_id"] for e in run_events(conn, env.platform_run_id))

    def test_every_trigger_opens_one_case_with_its_evidence_by_reference(self, env: WorkerEnv) -> None:
        items = self.inputs(env)
        self.publish(env, items)
        self.drain(env)
        with env.db.transaction() as conn:
            view = cases(conn, env.platform_run_id)
            one = case_events(conn, env.platform_run_id, view[0].case_id)
        assert len(items) == 32 and len(view) == 32
        assert all(c.status == "open" and len(c.trigger_ids) == 1 for c in view)
        assert [e.kind for e in one] == ["case_opened", "evidence_attached"]
        refs = one[1].details["evidence_refs"]
        assert set(refs) == {"receipt_id", "eb_ref", "decision_id", "audit_record_id"} and refs["audit_record_id"]
        assert "payload" not in json.dumps(one[1].details)  # references, never a copy of the traffic

    def test_several_triggers_for_one_subject_join_one_case_in_its_highest_priority_queue(self, env: WorkerEnv) -> None:
        run = env.platform_run_id
        first = _trigger_item(run, 1, event=7, reasons=[{"code": "VELOCITY_CARD_10M"}])
        second = _trigger_item(run, 2, event=7, reasons=[{"code": "MULE_COLLECTOR"}], decided_at="2026-01-05T10:05:00Z")
        self.publish(env, _as_published(env.db, [first, second, first]))
        self.drain(env)
        with env.db.transaction() as conn:
            view = cases(conn, run)
            events = case_events(conn, run, view[0].case_id)
        assert len(view) == 1 and len(view[0].trigger_ids) == 2 and view[0].queue == "mule_transfer"
        assert [e.kind for e in events] == ["case_opened", "evidence_attached", "evidence_attached"]
        assert case_state(events) == view[0]

    def test_a_replay_under_a_new_consumer_group_appends_nothing(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        before = self.state(env)
        worker = self.drain(WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay"))
        assert worker.counters.applied == len(self.inputs(env)) and worker.handler.counters()["cm_events_appended"] == 0
        assert self.state(env) == before

    def test_a_trigger_case_trigger_never_published_is_dead_lettered_as_unknown(self, env: WorkerEnv) -> None:
        unpublished = _trigger_item(env.platform_run_id, 900, event=900)
        self.publish(env, [unpublished])
        worker = self.drain(env)
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert worker.counters.dead_lettered == 1 and row == ("CASE_TRIGGER_UNKNOWN",)
        assert self.state(env) == []

    @pytest.mark.parametrize("hostile", ["other_run", "event_id_not_trigger", "missing_field", "not_a_trigger_id",
                                         "evidence_other_decision"])
    def test_a_hostile_trigger_is_dead_lettered_as_invalid_and_nothing_is_written(self, env: WorkerEnv, hostile: str) -> None:
        topic, key, trigger = self.inputs(env)[0]
        forged = json.loads(json.dumps(trigger))
        p = forged["payload"]
        if hostile == "other_run":
            other = _trigger_item("platform_20000101T000000Z", 1, event=1)[2]
            forged["payload"] = other["payload"]
            forged["event_id"] = other["event_id"]
        elif hostile == "event_id_not_trigger":
            forged["event_id"] = "0" * 32
        elif hostile == "missing_field":
            del p["evidence_refs"]
        elif hostile == "not_a_trigger_id":
            p["trigger_id"] = forged["event_id"] = "1" * 32
        elif hostile == "evidence_other_decision":
            p["evidence_refs"]["decision_id"] = "2" * 32
        self.publish(env, [(topic, key, forged)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert row == ("CASE_TRIGGER_INVALID",)
        assert self.state(env) == []

    def test_a_trigger_whose_evidence_differs_from_the_published_one_is_dead_lettered_and_nothing_rewritten(
            self, env: WorkerEnv) -> None:
        topic, key, trigger = self.inputs(env)[0]
        self.publish(env, [(topic, key, trigger)])
        self.drain(env)
        before = self.state(env)
        forged = json.loads(json.dumps(trigger))
        forged["payload"]["evidence_refs"]["receipt_id"] = "3" * 32  # same trigger id, other evidence
        self.publish(env, [(topic, key, forged)])
        worker = self.drain(env)
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert worker.counters.dead_lettered == 1 and row == ("CASE_TRIGGER_UNKNOWN",)
        assert self.state(env) == before


def test_build_reads_the_case_topic_from_the_registry() -> None:
    handler = build(load_settings(), "platform_20260105T000000Z")
    assert handler.input_topics() == [load_settings().registry.topic("FP_BUS_CASE_TRIGGERS_V1").name]


def test_the_timeline_refuses_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("cm_case_timeline",))
