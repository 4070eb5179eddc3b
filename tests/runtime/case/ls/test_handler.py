"""LS's label topic consumer under the stream-handler contract: assertions appended once through the
writer boundary; a bad assertion is dead-lettered with its code and nothing of it is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import assertion
from runtime.case.ls.handler import LABEL_ASSERTION, LabelStoreHandler, build
from runtime.case.ls.store import run_assertions
from runtime.decision.lane import lane_envelope
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from tests.runtime.case.lane import admit
from tests.runtime.case.records import hex32
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv

LABEL_TOPIC = "fp.bus.labels.events.v1"
EVENT_AT = "2026-01-05T10:00:00Z"


def _item(run: str, n: int, *, source: str = "dispute", value: str = "disputed") -> tuple[str, str, dict[str, Any]]:
    a = assertion(LabelSubjectKey(run, hex32(("event", n)), "fraud"), source=source, value=value,
                  observed_at=f"2026-01-06T{n % 24:02d}:00:00Z", effective_at=EVENT_AT, evidence={"ticket": f"t{n}"})
    envelope = lane_envelope(LABEL_ASSERTION, a.assertion_id, a.row(), platform_run_id=run, scenario_run_id=None,
                             ts_utc=a.observed_at_utc, producer="dispute_feed")
    return LABEL_TOPIC, a.subject.event_id, envelope


class TestLabelStoreContract(StreamHandlerContract):
    """Assertions on the label topic land in ls_label_assertions once each."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return LabelStoreHandler(LABEL_TOPIC, env.platform_run_id)

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        with env.db.transaction() as conn:
            admit(conn, env.platform_run_id, [hex32(("event", n)) for n in range(32)])
        return [_item(env.platform_run_id, n) for n in range(32)]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        return _item(env.platform_run_id, 999)  # an event this run never admitted

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            return run_assertions(conn, env.platform_run_id)

    def test_every_assertion_is_appended_once_and_a_replay_appends_nothing(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        held = self.state(env)
        self.drain(WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay"))
        assert len(held) == 32 and self.state(env) == held

    @pytest.mark.parametrize(("hostile", "code"), [
        ("unknown_subject", "LABEL_SUBJECT_UNKNOWN"), ("source_not_allowed", "LABEL_SOURCE_NOT_ALLOWED"),
        ("value_not_for_source", "LABEL_INVALID"), ("id_not_its_fields", "LABEL_INVALID"),
        ("observed_before_effective", "LABEL_INVALID"), ("missing_field", "LABEL_INVALID"),
        ("event_id_not_assertion", "LABEL_INVALID"), ("conflict", "LABEL_CONFLICT")])
    def test_a_bad_assertion_is_dead_lettered_with_its_code_and_nothing_is_written(self, env: WorkerEnv, hostile: str,
                                                                                   code: str) -> None:
        self.inputs(env)
        topic, key, envelope = _item(env.platform_run_id, 1)
        forged = json.loads(json.dumps(envelope))
        p = forged["payload"]
        before: list[Any] = []
        if hostile == "unknown_subject":
            topic, key, forged = _item(env.platform_run_id, 999)
        elif hostile == "source_not_allowed":
            p["source"] = "rumour"
        elif hostile == "value_not_for_source":
            p["label_value"] = "fraud"
        elif hostile == "id_not_its_fields":
            p["observed_at_utc"] = "2026-01-07T00:00:00.000000Z"
        elif hostile == "observed_before_effective":
            p["observed_at_utc"] = "2026-01-04T00:00:00.000000Z"
        elif hostile == "missing_field":
            del p["label_type"]
        elif hostile == "event_id_not_assertion":
            forged["event_id"] = "0" * 32
        elif hostile == "conflict":
            self.publish(env, [(topic, key, envelope)])
            self.drain(env)
            before = self.state(env)
            p["evidence"] = {"ticket": "forged"}
        self.publish(env, [(topic, key, forged)])
        worker = self.drain(env)
        with env.db.transaction() as conn:
            row = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert worker.counters.dead_lettered == 1 and row == (code,)
        assert self.state(env) == before


def test_build_reads_the_label_topic_from_the_registry() -> None:
    handler = build(load_settings(), "platform_20260105T000000Z")
    assert handler.input_topics() == [load_settings().registry.topic("FP_BUS_LABELS_EVENTS_V1").name]
