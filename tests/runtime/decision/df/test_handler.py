"""DF under the stream-handler contract and its own rules: one decision per admitted traffic event,
bounded waits that end in explicit degrade reasons, the recorded posture, held decisions re-emitted
byte for byte, bad records refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runtime.bus.port import EbRef
from runtime.db.postgres import Database
from runtime.decision.df import store
from runtime.decision.df.domain import action_intents
from runtime.decision.df.handler import CHECK_PAUSE_FACTOR, FIRST_WAIT_CAP, POLL_S, DecisionFabricHandler, DecisionInputsPending
from runtime.errors import PermanentError
from runtime.ig.store import run_last_offsets
from runtime.rtdl.csfb.handler import CsfbHandler
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord
from tests.runtime.decision.lane_bus import RTDL_TOPIC
from tests.runtime.decision.support import decide_one, habitual_world, policy
from tests.runtime.rtdl.envelopes import anchor, arrival, traffic
from tests.runtime.rtdl.feeding import feed, topic_of, with_run
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv
from tests.support.events import random_run_id

TRAFFIC_TOPIC = "fp.bus.traffic.fraud.v1"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _upstreams(run: str, topics: tuple[str, ...] = (TRAFFIC_TOPIC,)) -> list[store.Upstream]:
    return [store.Upstream(name, f"fp-{name}-{run}", topics) for name in ("ofp", "ieg", "csfb")]


def _handler(run: str, *, wait_ms: int = 0, clock: Clock | None = None, topics: tuple[str, ...] = (TRAFFIC_TOPIC,)
             ) -> DecisionFabricHandler:
    p = policy()
    return DecisionFabricHandler(run, [TRAFFIC_TOPIC], RTDL_TOPIC, p, p.digest, _upstreams(run, topics), wait_ms=wait_ms,
                                 clock=clock or Clock())


def _traffic(run: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = [{"amount": 20.0}, {"amount": 1.0, "device": "dev_9"}, {"amount": 900.0},
                                    {"amount": 900.0, "device": "dev_9"}]
    return [with_run(traffic(600 + 30 * i, seq=10 + i, **shapes[i % 4]), run) for i in range(start, start + n)]


def _record(envelope: dict[str, Any], offset: int, topic: str = TRAFFIC_TOPIC) -> InputRecord:
    raw = json.dumps(envelope, sort_keys=True).encode()
    return InputRecord(EbRef("kafka_offset", topic, 0, offset), envelope["event_id"], envelope, raw)


def _posture(conn: Any, run: str, posture: str) -> None:
    seq = conn.execute("SELECT count(*) FROM dl_posture_history WHERE platform_run_id = %s", (run,)).fetchone()[0]
    conn.execute("INSERT INTO dl_posture_history (platform_run_id, seq, posture, reasons, health, entry_sha256, at_utc)"
                 " VALUES (%s, %s, %s, '{}', '{}', 'x', now())", (run, seq, posture))


def _receipt(conn: Any, run: str, envelope: dict[str, Any], receipt_id: str) -> None:
    conn.execute("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key, batch_index,"
                 " receipt) VALUES (%s, %s, %s, %s, 'ADMIT', 'k', 0, '{}')",
                 (receipt_id, run, envelope["event_class"], envelope["event_id"]))


class TestDecisionFabricContract(StreamHandlerContract):
    """Every traffic event decided once; its decision and intents published once."""

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return _handler(env.platform_run_id)

    def output_topics(self, env: WorkerEnv) -> list[str]:
        return [RTDL_TOPIC]

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return [(TRAFFIC_TOPIC, e["payload"]["flow_id"], e) for e in _traffic(env.platform_run_id, 32)]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        broken = _traffic(env.platform_run_id, 1, start=40)[0]
        del broken["payload"]["card_id"]
        return TRAFFIC_TOPIC, "k", broken

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            return list(store.run_decision_records(conn, env.platform_run_id))

    def lane(self, env: WorkerEnv) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in env.broker.records(RTDL_TOPIC)]

    def test_every_event_has_one_decision_and_its_intents_on_the_rtdl_bus(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        lane = self.lane(env)
        decisions = [d for d in lane if d["event_class"] == "decision_response"]
        intents = [d for d in lane if d["event_class"] == "action_intent"]
        assert len(decisions) == 32 == len({d["payload"]["event_id"] for d in decisions})
        assert len(intents) == sum(len(d["payload"]["actions"]) for d in decisions)
        assert all(d["event_id"] == d["payload"]["decision_id"] for d in decisions)
        # no posture recorded and DF_INPUT_WAIT_MS = 0: decided at once under RED (nothing approved)
        assert {d["payload"]["posture"] for d in decisions} == {"RED"}
        assert "APPROVE" not in {d["payload"]["outcome"] for d in decisions}

    def test_a_replay_under_a_new_group_decides_nothing_again_and_publishes_nothing_new(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        before = [r.value for r in env.broker.records(RTDL_TOPIC)]
        state = self.state(env)
        replay = self.drain(WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay"))
        counts = replay.handler.counters()
        assert counts["df_decided"] == 0 and counts["df_redelivered"] == 32
        assert [r.value for r in env.broker.records(RTDL_TOPIC)] == before
        assert self.state(env) == state


def test_with_complete_inputs_the_decision_is_the_in_memory_one_with_its_receipt(db: Database) -> None:
    run = random_run_id()
    world = habitual_world()
    context = [("context_arrival_events", arrival(0)), ("context_flow_anchor_fraud", anchor(1))]
    history = [("traffic_fraud", traffic(60 * (i + 1), amount=20.0, seq=i)) for i in range(4)]
    feed(db, run, [(c, with_run(e, run)) for c, e in context + history])
    event = with_run(traffic(700, seq=50, amount=900.0), run)
    handler = _handler(run, wait_ms=60_000, topics=tuple(topic_of(c) for c in ("traffic_fraud", "context_arrival_events")))
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _receipt(conn, run, event, "c" * 32)
        outputs = handler.apply(conn, [_record(event, 7)])
    expected = decide_one(event, world.inputs(with_run(event, run)))
    decision = json.loads(outputs[0].value)["payload"]
    assert {k: v for k, v in decision.items() if k != "provenance"} == json.loads(json.dumps(expected.core()))
    assert decision["provenance"]["receipt_id"] == "c" * 32 and decision["provenance"]["admitted_at_utc"]
    assert decision["provenance"]["eb_ref"]["offset"] == 7 and not decision["degrade_reasons"]
    assert [json.loads(o.value)["event_id"] for o in outputs[1:]] == [i.intent_id for i in action_intents(expected)]


def test_a_store_behind_the_event_holds_the_batch_then_decides_under_explicit_degrade_reasons(db: Database) -> None:
    run = random_run_id()
    clock = Clock()
    handler = _handler(run, wait_ms=2000, clock=clock)
    event = _traffic(run, 1)[0]
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _receipt(conn, run, event, "d" * 32)
        # IG admitted record 9 on partition 0 of the traffic topic; no store has read anything yet
        conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref)"
                     " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s)",
                     (run, "e" * 32, json.dumps({"topic": TRAFFIC_TOPIC, "partition": 0, "offset": 9})))
    for at in (0.0, 1.5):
        clock.now = at
        with pytest.raises(DecisionInputsPending), db.transaction() as conn:
            handler.apply(conn, [_record(event, 3)])
        assert len(handler._first_wait) == 1  # the first wait is kept across attempts
    clock.now = 2.0
    with db.transaction() as conn:
        outputs = handler.apply(conn, [_record(event, 3)])
    assert handler._first_wait == {}  # dropped once decided
    decision = json.loads(outputs[0].value)["payload"]
    assert [d["code"] for d in decision["degrade_reasons"]] == ["FEATURES_LATE", "GRAPH_LATE", "CONTEXT_MISSING"]
    assert decision["outcome"] != "APPROVE" and decision["outcome_floor"] == "DEGRADED_INPUTS"
    assert handler.counters()["df_waits"] == 2 and handler.counters()["df_waited_out"] == 1


def test_first_waits_of_batches_no_longer_held_are_forgotten_at_the_cap_keeping_the_batch_in_hand() -> None:
    clock = Clock()
    handler = _handler(random_run_id(), wait_ms=2000, clock=clock)
    batch = 2000
    for n in range(0, 3 * FIRST_WAIT_CAP, batch):  # batches abandoned while waiting (a rebalance took them)
        handler.waited_out([f"{i:032x}" for i in range(n, n + batch)])
        assert len(handler._first_wait) <= FIRST_WAIT_CAP
    clock.now = 1.0
    in_hand = [f"{i:032x}" for i in range(3 * FIRST_WAIT_CAP - batch, 3 * FIRST_WAIT_CAP)]
    handler._first_wait.update({f"x{i}": 0.0 for i in range(FIRST_WAIT_CAP)})  # over the cap: the next wait trims
    assert handler.waited_out(in_hand) is False and set(handler._first_wait) == set(in_hand)
    clock.now = 2.0
    assert handler.waited_out(in_hand) is True  # the batch in hand kept its first wait (at 0.0)


def _admission(conn: Any, run: str, offset: int, ts_micros: int | None, *, partition: int = 0) -> None:
    conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref, event_ts_micros)"
                 " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s, %s)",
                 (run, f"{partition:04x}{offset:028x}", json.dumps({"topic": TRAFFIC_TOPIC, "partition": partition,
                                                                    "offset": offset}), ts_micros))


def _applied(conn: Any, group: str, position: int, *, partition: int = 0) -> None:
    conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET position = excluded.position",
                 (group, TRAFFIC_TOPIC, str(partition), position))


def test_a_store_is_complete_for_an_event_once_it_applied_every_admission_at_or_before_the_event_time(db: Database) -> None:
    # the cut is the event's time, not the moment IG admitted anything: records admitted in any
    # interleaving give the same answer
    run = random_run_id()
    ofp = _upstreams(run)[0]
    with db.transaction() as conn:
        assert store.upstream_complete(conn, run, ofp, 10**18, {})  # nothing admitted: nothing to wait for
        _admission(conn, run, 5, 100)
        _admission(conn, run, 6, 300)  # after the event's time: never waited for
        _admission(conn, run, 7, 400, partition=1)
        _admission(conn, run, 8, 150, partition=1)  # out of order on its partition: still waited for
        last = run_last_offsets(conn, run, [TRAFFIC_TOPIC])
        assert last == {(TRAFFIC_TOPIC, "0"): 6, (TRAFFIC_TOPIC, "1"): 8}
        assert not store.upstream_complete(conn, run, ofp, 200, last)
        _applied(conn, ofp.consumer_group, 5)
        _applied(conn, ofp.consumer_group, 7, partition=1)  # its watermark (400) is past the event: not enough
        assert not store.upstream_complete(conn, run, ofp, 200, last)
        assert store.upstream_complete(conn, run, ofp, 120, last)  # but everything up to 120 is applied
        _applied(conn, ofp.consumer_group, 8, partition=1)
        assert store.upstream_complete(conn, run, ofp, 200, last)
        assert store.upstream_complete(conn, run, ofp, 299, last)
        assert not store.upstream_complete(conn, run, ofp, 300, last)  # at the event's time counts
        _admission(conn, run, 9, None)  # claimed before event times were kept: waited for
        last = run_last_offsets(conn, run, [TRAFFIC_TOPIC])
        _applied(conn, ofp.consumer_group, 8, partition=1)
        _applied(conn, ofp.consumer_group, 6)
        assert not store.upstream_complete(conn, run, ofp, 200, last)
        assert store.stores_complete_at(conn, run, [ofp], (1, 200), last, {}) == {1: {"ofp": False}, 200: {"ofp": False}}


def test_one_inputs_view_and_one_probe_answer_what_the_reads_one_by_one_answer(db: Database) -> None:
    # what a waiting batch re-checks in one statement (plus one probe for every store) is what
    # frontiers, run_last, positions, posture, receipts and upstream_complete say one by one
    run = random_run_id()
    upstreams = [*_upstreams(run)[:2], store.Upstream("csfb", f"fp-csfb-{run}", (TRAFFIC_TOPIC,),
                                                      ("s3_event_stream_with_fraud_6B",))]
    ofp, ieg, _ = upstreams
    with db.transaction() as conn:
        conn.execute("INSERT INTO wsp_output_progress (platform_run_id, scenario_run_id, output_id, frontier_ts_micros)"
                     " VALUES (%s, 's1', 's3_event_stream_with_fraud_6B', 250)", (run,))
        for offset, ts, partition in ((5, 100, 0), (6, 300, 0), (7, 400, 1), (8, 150, 1)):
            _admission(conn, run, offset, ts, partition=partition)
        _applied(conn, ofp.consumer_group, 6)
        _applied(conn, ofp.consumer_group, 7, partition=1)
        _applied(conn, ieg.consumer_group, 8, partition=1)
        _posture(conn, run, "AMBER")
        ids = [("traffic_fraud", f"{0:04x}{5:028x}"), ("traffic_fraud", f"{0:04x}{6:028x}"), ("traffic_fraud", "unknown")]
        conn.execute("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key,"
                     " batch_index, receipt, recorded_at) VALUES ('q', %s, %s, %s, 'QUARANTINE', 'k', 0, '{}', now() - interval '1 s'),"
                     " ('a2', %s, %s, %s, 'ADMIT', 'k', 1, '{}', now()), ('a1', %s, %s, %s, 'ADMIT', 'k', 0, '{}',"
                     " now() - interval '1 ms')", (run, *ids[0], run, *ids[0], run, *ids[1]))
        view = store.inputs_view(conn, run, upstreams, ids)
        last = run_last_offsets(conn, run, [TRAFFIC_TOPIC])
        assert view.run_last == last == {(TRAFFIC_TOPIC, "0"): 6, (TRAFFIC_TOPIC, "1"): 8}
        assert view.frontiers == store.stream_frontiers(conn, run)
        assert view.posture == store.current_posture(conn, run) == "AMBER"
        assert view.positions == {u.consumer_group: store.group_positions(conn, u.consumer_group) for u in upstreams}
        assert view.receipts == store.admissions(conn, run, ids)
        assert {k: v[0] for k, v in view.receipts.items()} == {ids[0]: "a2", ids[1]: "a1"}  # the ADMIT, never the quarantine
        for ts in (50, 99, 100, 149, 150, 200, 249, 250, 299, 300, 10**18):
            one_by_one = {u.component: store.upstream_complete(conn, run, u, ts, last, view.frontiers) for u in upstreams}
            assert store.stores_complete(conn, run, upstreams, ts, view.run_last, view.frontiers, view.positions) == one_by_one, ts
        times = (50, 99, 100, 149, 150, 200, 249, 250, 299, 300, 10**18)
        at_once = store.stores_complete_at(conn, run, upstreams, times, view.run_last, view.frontiers, view.positions)
        assert at_once == {ts: store.stores_complete(conn, run, upstreams, ts, last, view.frontiers, view.positions)
                           for ts in times}  # many event times in one statement answer what one probe each answers
        assert store.stores_complete(conn, run, upstreams, 200, last, view.frontiers, view.positions) == {
            "ofp": False, "ieg": False, "csfb": False}  # ofp misses 8 at 150; ieg 5 at 100; csfb's stream is at 250
        assert store.stores_complete(conn, run, upstreams, 120, last, view.frontiers, view.positions) == {
            "ofp": True, "ieg": False, "csfb": False}


def test_a_store_is_not_complete_while_an_output_feeding_it_may_still_send_a_record_before_the_event(db: Database) -> None:
    run = random_run_id()
    ofp = store.Upstream("ofp", f"fp-ofp-{run}", (TRAFFIC_TOPIC,), ("s3_event_stream_with_fraud_6B",))
    output = "s3_event_stream_with_fraud_6B"
    with db.transaction() as conn:
        conn.execute("INSERT INTO wsp_output_progress (platform_run_id, scenario_run_id, output_id) VALUES (%s, 's1', %s)",
                     (run, output))
        assert not store.upstream_complete(conn, run, ofp, 100, {}, store.stream_frontiers(conn, run))  # sent nothing yet
        conn.execute("UPDATE wsp_output_progress SET frontier_ts_micros = 100 WHERE platform_run_id = %s", (run,))
        assert not store.upstream_complete(conn, run, ofp, 100, {}, store.stream_frontiers(conn, run))  # a row at 100 may come
        assert store.upstream_complete(conn, run, ofp, 99, {}, store.stream_frontiers(conn, run))
        conn.execute("UPDATE wsp_output_progress SET ended = true WHERE platform_run_id = %s", (run,))
        assert store.upstream_complete(conn, run, ofp, 10**18, {}, store.stream_frontiers(conn, run))
        # an output this run does not stream has no progress row: it holds nothing back
        other = store.Upstream("ofp", ofp.consumer_group, ofp.topics, ("s2_event_stream_baseline_6B",))
        assert store.upstream_complete(conn, run, other, 10**18, {}, store.stream_frontiers(conn, run))


def test_a_batch_whose_stores_catch_up_within_the_hold_is_decided_in_that_attempt_with_full_inputs(db: Database) -> None:
    run = random_run_id()
    clock = Clock()
    checks: list[float] = []

    def sleep(seconds: float) -> None:  # the stores catch up while DF re-checks
        checks.append(seconds)
        clock.now += seconds
        if len(checks) == 3:
            with db.transaction() as conn:
                for name in ("ofp", "ieg", "csfb"):
                    conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position)"
                                 " VALUES (%s, %s, '0', 9)", (f"fp-{name}-{run}", TRAFFIC_TOPIC))

    p = policy()
    handler = DecisionFabricHandler(run, [TRAFFIC_TOPIC], RTDL_TOPIC, p, p.digest, _upstreams(run), wait_ms=2000,
                                    hold_ms=1000, clock=clock, sleep=sleep)
    event = _traffic(run, 1)[0]
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _receipt(conn, run, event, uuid.uuid4().hex)
        _admission(conn, run, 9, 0)
    with db.transaction() as conn:
        outputs = handler.apply(conn, [_record(event, 9)])
    decision = json.loads(outputs[0].value)["payload"]
    # the stores answered (no FEATURES_LATE / GRAPH_LATE); the flow's context is simply not in CSFB's store
    assert [(d["code"], d["detail"]) for d in decision["degrade_reasons"]] == [("CONTEXT_MISSING",
                                                                                 "flow_anchor_missing,arrival_missing")]
    assert decision["posture"] == "GREEN" and len(checks) == 3
    assert handler.counters()["df_waits"] == 0 and handler.counters()["df_waited_out"] == 0


def test_a_slow_check_of_pending_inputs_is_followed_by_a_longer_pause(db: Database) -> None:
    # far behind (a full-cap backlog) a check scans many admissions: DF must not re-check back to back
    run = random_run_id()
    slept: list[float] = []

    class SlowChecks(Clock):
        def __call__(self) -> float:
            self.now += 0.1  # each look at the clock is 0.1 s later: the checks take time
            return self.now

    clock = SlowChecks()

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    p = policy()
    handler = DecisionFabricHandler(run, [TRAFFIC_TOPIC], RTDL_TOPIC, p, p.digest, _upstreams(run), wait_ms=60_000,
                                    hold_ms=3000, clock=clock, sleep=sleep)
    event = _traffic(run, 1)[0]
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _receipt(conn, run, event, uuid.uuid4().hex)
        _admission(conn, run, 9, 0)  # no store ever applies it
    with pytest.raises(DecisionInputsPending), db.transaction() as conn:
        handler.apply(conn, [_record(event, 9)])
    assert slept and all(s >= CHECK_PAUSE_FACTOR * 0.1 > POLL_S for s in slept)


def test_the_decision_takes_the_posture_dl_last_recorded(db: Database) -> None:
    run = random_run_id()
    handler = _handler(run)
    first, second = _traffic(run, 2)
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _posture(conn, run, "AMBER")
        one = json.loads(handler.apply(conn, [_record(first, 0)])[0].value)["payload"]
        _posture(conn, run, "RED")
        two = json.loads(handler.apply(conn, [_record(second, 1)])[0].value)["payload"]
    assert (one["posture"], one["posture_mark"]) == ("AMBER", "DECIDED_UNDER_AMBER")
    assert (two["posture"], two["outcome"] != "APPROVE") == ("RED", True)


@pytest.mark.parametrize("change, code", [
    (lambda e: {**e, "platform_run_id": random_run_id()}, "DF_RECORD_REFUSED"),
    (lambda e: {**e, "event_class": "context_arrival_events"}, "DF_RECORD_REFUSED"),
    (lambda e: {**e, "payload": {**e["payload"], "amount": "lots"}}, "RTDL_PAYLOAD_INVALID"),
    (lambda e: {**e, "ts_utc": "yesterday"}, "RTDL_PAYLOAD_INVALID"),
])
def test_a_record_df_must_not_decide_is_refused_with_its_code_and_nothing_is_written(db: Database, change, code) -> None:
    run = random_run_id()
    bad = change(_traffic(run, 1)[0])
    with pytest.raises(PermanentError) as info, db.transaction() as conn:
        _handler(run).apply(conn, [_record(bad, 0)])
    assert info.value.code == code
    with db.transaction() as conn:
        assert list(store.run_decision_records(conn, run)) == []


def test_a_duplicate_in_one_batch_gets_one_decision_and_one_set_of_outputs(db: Database) -> None:
    run = random_run_id()
    event = _traffic(run, 1, start=2)[0]
    with db.transaction() as conn:
        outputs = _handler(run).apply(conn, [_record(event, 0), _record(event, 1)])
        assert len(list(store.run_decision_records(conn, run))) == 1
    assert len({o.record_id for o in outputs}) == len(outputs) == 1 + len(json.loads(outputs[0].value)["payload"]["actions"])


@pytest.fixture
def settings(moto_endpoint: str, runtime_dsn: str, s3_client: Any) -> Any:
    import contextlib

    from runtime.settings import load_settings

    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn,
                              "FP_BUS": "kafka"})
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=settings.registry.text("S3_EVIDENCE_BUCKET"))
    return settings


def _pin(settings: Any, run: str, config: dict[str, Any]) -> None:
    registry = settings.registry
    key = (registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run) + registry.text("EVIDENCE_RUN_JSON_KEY"))
    settings.bucket("S3_EVIDENCE_BUCKET").put(key, json.dumps({"config": config}).encode())


def test_build_decides_with_the_bundle_p1_pinned_and_refuses_another_or_none(settings: Any) -> None:
    from runtime.decision.df.handler import build

    run = random_run_id()
    _pin(settings, run, {"policy": policy().ref()})
    handler = build(settings, run)
    assert isinstance(handler, DecisionFabricHandler) and handler.wait_s == 2.0
    assert set(handler.input_topics()) == {"fp.bus.traffic.fraud.v1", "fp.bus.traffic.baseline.v1"}
    assert [u.component for u in handler.upstreams] == ["ofp", "ieg", "csfb"]
    assert handler.upstreams[0].consumer_group == f"fp-ofp-{run}" and handler.output_topic == "fp.bus.rtdl.v1"
    for config, code in (({"policy": {**policy().ref(), "digest": "0" * 64}}, "POLICY_DRIFT"), ({}, "POLICY_NOT_PINNED")):
        _pin(settings, run, config)
        with pytest.raises(PermanentError) as info:
            build(settings, run)
        assert info.value.code == code


def test_a_batch_redone_record_by_record_does_not_start_its_wait_over(db: Database) -> None:
    run = random_run_id()
    clock = Clock()
    handler = _handler(run, wait_ms=2000, clock=clock)
    first, second = _traffic(run, 2)
    with pytest.raises(DecisionInputsPending), db.transaction() as conn:
        handler.apply(conn, [_record(first, 0), _record(second, 1)])  # no posture yet: the batch waits
    clock.now = 2.0
    with db.transaction() as conn:
        one = json.loads(handler.apply(conn, [_record(second, 1)])[0].value)["payload"]
    assert one["posture"] == "RED" and handler.counters()["df_decided_without_posture"] == 1


def test_context_admitted_after_the_event_but_before_it_in_event_time_is_waited_for_and_joined(db: Database) -> None:
    # the defect this cut mends: CSFB's context admitted a moment after the traffic event (WSP's
    # outputs interleave differently on each bus) must still be in the decision
    run = random_run_id()
    anchor_output, anchor_topic = "s3_flow_anchor_with_fraud_6B", topic_of("context_flow_anchor_fraud")
    arrival_output, arrival_topic = "arrival_events_5B", topic_of("context_arrival_events")
    csfb_group = f"fp-csfb-{run}"
    upstreams = [store.Upstream("ofp", f"fp-ofp-{run}", (TRAFFIC_TOPIC,)), store.Upstream("ieg", f"fp-ieg-{run}", (TRAFFIC_TOPIC,)),
                 store.Upstream("csfb", csfb_group, (arrival_topic, anchor_topic), (arrival_output, anchor_output))]
    p = policy()
    handler = DecisionFabricHandler(run, [TRAFFIC_TOPIC], RTDL_TOPIC, p, p.digest, upstreams, wait_ms=60_000, clock=Clock())
    event = with_run(traffic(700, seq=50, amount=20.0), run)
    context = [("context_arrival_events", with_run(arrival(0), run)), ("context_flow_anchor_fraud", with_run(anchor(1), run))]
    with db.transaction() as conn:
        _posture(conn, run, "GREEN")
        _receipt(conn, run, event, "f" * 32)
        for output in (anchor_output, arrival_output):  # WSP has taken up READY; the context outputs sent nothing yet
            conn.execute("INSERT INTO wsp_output_progress (platform_run_id, scenario_run_id, output_id) VALUES (%s, 's', %s)",
                         (run, output))
    with pytest.raises(DecisionInputsPending, match="csfb"), db.transaction() as conn:
        handler.apply(conn, [_record(event, 0)])
    feed(db, run, context, components=[CsfbHandler(run, [arrival_topic, anchor_topic])])
    with db.transaction() as conn:  # IG admitted the context, CSFB applied it, WSP's context outputs ended
        for offset, (event_class, envelope) in enumerate(context):
            topic = topic_of(event_class)
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref,"
                         " event_ts_micros) VALUES (%s, %s, %s, 'h', 'ADMITTED', %s, %s)",
                         (run, event_class, envelope["event_id"], json.dumps({"topic": topic, "partition": 0, "offset": offset}),
                          offset * 1_000_000))
            conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES (%s, %s, '0', %s)",
                         (csfb_group, topic, offset))
        conn.execute("UPDATE wsp_output_progress SET ended = true WHERE platform_run_id = %s", (run,))
    with db.transaction() as conn:
        decision = json.loads(handler.apply(conn, [_record(event, 0)])[0].value)["payload"]
    assert decision["degrade_reasons"] == [] and handler.counters()["df_waited_out"] == 0
