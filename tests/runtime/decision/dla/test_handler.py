"""DLA under the stream-handler contract: every lane record logged once in a verified hash chain, lineage resolved."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.contracts.canonical import canonical_json, sha256_hex
from runtime.contracts.schemas import compiled_validator
from runtime.decision.dla.domain import AuditLog
from runtime.decision.dla.handler import AuditHandler, build
from runtime.decision.dla.store import (
    batch_rows,
    decision_chain,
    lineage_breaks,
    lineage_unresolved_total,
    verify_stored_chain,
)
from runtime.decision.lane import KIND_OF_CLASS
from runtime.settings import load_settings
from runtime.store.s3 import S3Store
from runtime.worker.handler import StreamHandler
from tests.runtime.decision.lane_bus import AUDIT_TOPIC, RTDL_TOPIC, lane_items
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv

DECISIONS = 10


class TestAuditHandlerContract(StreamHandlerContract):
    """Decisions, intents and outcomes land once in hash-chained batch objects and the index."""

    partitions = 1

    @pytest.fixture(autouse=True)
    def _store(self, moto_endpoint: str, bucket: str) -> None:
        from runtime.store.s3 import s3_client

        self.store = S3Store(bucket, client=s3_client(moto_endpoint, "us-east-1"))

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return AuditHandler(RTDL_TOPIC, AUDIT_TOPIC, self.store, f"platform/{env.platform_run_id}/decision_lane/audit/",
                            env.platform_run_id, lineage_interval_s=0.0)

    def output_topics(self, env: WorkerEnv) -> list[str]:
        return [AUDIT_TOPIC]

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return lane_items(env.platform_run_id, DECISIONS)

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        topic, key, decision = self.inputs(env)[0]
        forged = json.loads(json.dumps(decision))
        forged["payload"]["policy"]["digest"] = "0" * 64  # the id no longer is H(run, class, event, policy)
        return topic, key, forged

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            rows = conn.execute("SELECT kind, record_id, record_sha256 FROM dla_audit_records WHERE platform_run_id = %s"
                                " ORDER BY batch_seq, batch_position", (env.platform_run_id,)).fetchall()
            verdict = verify_stored_chain(conn, self.store, env.platform_run_id)
        return [tuple(r) for r in rows], verdict.ok, verdict.problems

    def logged(self, env: WorkerEnv) -> list[tuple[str, str]]:
        return [(k, i) for k, i, _ in self.state(env)[0]]

    def expected(self, env: WorkerEnv) -> list[tuple[str, str]]:
        return [(KIND_OF_CLASS[e["event_class"]], e["event_id"]) for _, _, e in self.inputs(env)]

    def batches(self, env: WorkerEnv) -> list[Any]:
        with env.db.transaction() as conn:
            return batch_rows(conn, env.platform_run_id)

    def test_every_lane_record_is_logged_once_in_input_order_with_its_audit_event(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        assert self.logged(env) == self.expected(env)  # chain order = input order
        _, ok, problems = self.state(env)
        assert ok and problems == ()
        assert len(self.batches(env)) > 1  # the contract's small worker batches: several chained objects
        audit = [json.loads(r.value) for r in env.broker.records(AUDIT_TOPIC)]
        assert sorted(a["payload"]["record_id"] for a in audit) == sorted(i for _, i in self.expected(env))
        assert {a["event_class"] for a in audit} == {"audit_record"}
        validator = compiled_validator("events/payloads/audit_record.schema.json")
        assert all(list(validator.iter_errors(a["payload"])) == [] for a in audit)
        with env.db.transaction() as conn:
            assert lineage_unresolved_total(conn, env.platform_run_id) == 0

    def test_each_batch_object_names_the_sha256_of_the_one_before(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        previous = "0" * 64
        for row in self.batches(env):
            data = self.store.get(row.object_key)
            assert json.loads(data)["previous_sha256"] == previous == row.previous_sha256
            previous = sha256_hex(data)
            assert previous == row.sha256

    def test_a_replay_under_a_new_consumer_group_adds_no_batch_and_no_audit_event(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        state, batches, events = self.state(env), self.batches(env), len(env.broker.records(AUDIT_TOPIC))
        worker = self.drain(WorkerEnv(env.broker, env.db, env.platform_run_id, env.group + "-replay"))
        assert worker.handler.counters()["dla_duplicates"] == len(self.inputs(env))
        assert self.state(env) == state and self.batches(env) == batches
        assert len(env.broker.records(AUDIT_TOPIC)) == events

    @pytest.mark.parametrize("change", [
        lambda p: p.update(outcome="MAYBE"),
        lambda p: p.pop("reasons"),
        lambda p: p.update(score="high"),
        lambda p: p.update(unexpected_field=1),
    ])
    def test_a_decision_record_breaking_its_schema_is_dead_lettered_and_never_logged(self, env: WorkerEnv, change) -> None:
        items = self.inputs(env)
        topic, key, decision = items[0]
        broken = json.loads(json.dumps(decision))
        change(broken["payload"])  # the ids still are what the content implies: only the schema catches it
        self.publish(env, [(topic, key, broken), *items[1:]])
        assert self.drain(env).counters.dead_lettered == 1
        with env.db.transaction() as conn:
            code = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert code == ("AUDIT_RECORD_INVALID",)
        logged = self.logged(env)
        assert ("decision", decision["event_id"]) not in logged and len(logged) == len(items) - 1
        _, ok, _ = self.state(env)
        assert ok

    def test_children_before_parents_are_pending_then_resolved(self, env: WorkerEnv) -> None:
        items = self.inputs(env)
        by_class = {c: [i for i in items if i[2]["event_class"] == c] for c in ("decision_response", "action_intent",
                                                                                   "action_outcome")}
        self.publish(env, by_class["action_outcome"])
        first = self.drain(env)
        assert first.handler.counters()["dla_lineage_pending"] == len(by_class["action_outcome"])
        self.publish(env, by_class["action_intent"])
        second = self.drain(env)
        assert second.handler.counters()["dla_lineage_pending"] == len(by_class["action_intent"])
        self.publish(env, by_class["decision_response"])
        third = self.drain(env)
        assert third.handler.counters()["dla_lineage_pending"] == 0
        with env.db.transaction() as conn:
            assert lineage_unresolved_total(conn, env.platform_run_id) == 0

    def paced(self, env: WorkerEnv, interval_s: float, now: list[float], monkeypatch=None, counts_take_s: float = 0.0) -> AuditHandler:
        """A handler on the fake clock `now` whose lineage counts (the index scan) take `counts_take_s` of it."""
        if counts_take_s:
            from runtime.decision.dla.store import LineageCounter

            real = LineageCounter.read

            def slow_read(counter, conn, current):  # a full-cap index: the counts take seconds of the batch
                now[0] += counts_take_s
                return real(counter, conn, current)
            monkeypatch.setattr(LineageCounter, "read", slow_read)
        return AuditHandler(RTDL_TOPIC, AUDIT_TOPIC, self.store, f"platform/{env.platform_run_id}/decision_lane/audit/",
                            env.platform_run_id, lineage_interval_s=interval_s, clock=lambda: now[0])

    def feed(self, env: WorkerEnv, handler: AuditHandler, items: list, event_class: str) -> int:
        """Publish the items of one class, drain them through `handler`; its pending lineage count after."""
        self.publish(env, [i for i in items if i[2]["event_class"] == event_class])
        self.drain(env, handler=handler, batch_size=1000)
        return int(handler.counters()["dla_lineage_pending"])

    def test_the_lineage_counts_are_refreshed_at_most_once_per_interval(self, env: WorkerEnv) -> None:
        now = [0.0]
        handler, items = self.paced(env, 5.0, now), self.inputs(env)
        outcomes = sum(1 for i in items if i[2]["event_class"] == "action_outcome")
        assert self.feed(env, handler, items, "action_outcome") == outcomes
        assert self.feed(env, handler, items, "action_intent") == outcomes  # not refreshed yet
        now[0] = 5.0
        assert self.feed(env, handler, items, "decision_response") == 0

    def test_slow_lineage_counts_are_refreshed_less_often(self, env: WorkerEnv, monkeypatch) -> None:
        now = [0.0]
        handler, items = self.paced(env, 5.0, now, monkeypatch, counts_take_s=2.0), self.inputs(env)
        outcomes = sum(1 for i in items if i[2]["event_class"] == "action_outcome")
        assert self.feed(env, handler, items, "action_outcome") == outcomes and now[0] == 2.0
        # 2 s at a 5% duty: 38 s of pause after it ends, not the 5 s interval
        now[0] = 39.9
        assert self.feed(env, handler, items, "action_intent") == outcomes and now[0] == 39.9
        now[0] = 40.0
        assert self.feed(env, handler, items, "decision_response") == 0 and now[0] == 42.0

    def test_an_interval_of_zero_refreshes_the_lineage_counts_at_every_batch_however_slow(self, env: WorkerEnv,
                                                                                          monkeypatch) -> None:
        now = [0.0]
        handler, items = self.paced(env, 0.0, now, monkeypatch, counts_take_s=2.0), self.inputs(env)
        for event_class, pending in (("action_outcome", 12), ("action_intent", 12), ("decision_response", 0)):
            assert self.feed(env, handler, items, event_class) == pending

    def test_lineage_breaks_from_the_index_are_those_of_the_domain(self, env: WorkerEnv) -> None:
        items = self.inputs(env)
        kept = [i for n, i in enumerate(items) if n not in (0, 2, 7)]  # a decision, an intent, something else gone
        self.publish(env, kept)
        self.drain(env)
        log = AuditLog()
        for _, _, e in kept:
            log.append(KIND_OF_CLASS[e["event_class"]], e["payload"])
        with env.db.transaction() as conn:
            for final in (True, False):
                assert lineage_breaks(conn, env.platform_run_id, final=final) == sorted(
                    log.unresolved(final=final), key=lambda b: (b["kind"], b["record_id"], b["break"]))
            assert lineage_unresolved_total(conn, env.platform_run_id) == log.lineage_unresolved_total() > 0

    def test_a_decision_without_its_admitted_event_reference_stays_unresolved(self, env: WorkerEnv) -> None:
        topic, key, decision = self.inputs(env)[0]
        decision = json.loads(json.dumps(decision))
        decision["payload"]["provenance"]["receipt_id"] = None
        self.publish(env, [(topic, key, decision), *self.inputs(env)[1:]])
        worker = self.drain(env)
        assert worker.handler.counters()["dla_lineage_unresolvable"] == 1
        with env.db.transaction() as conn:
            assert [b["break"] for b in lineage_breaks(conn, env.platform_run_id)] == ["ADMITTED_EVENT_UNRESOLVED"]

    def test_the_same_id_with_other_content_is_dead_lettered_as_a_conflict(self, env: WorkerEnv) -> None:
        topic, key, decision = self.inputs(env)[0]
        changed = json.loads(json.dumps(decision))
        changed["payload"]["provenance"]["decided_at_utc"] = "2026-01-05T01:00:00Z"
        self.publish(env, [*self.inputs(env), (topic, key, changed)])
        worker = self.drain(env)
        assert worker.counters.dead_lettered == 1
        with env.db.transaction() as conn:
            code = conn.execute("SELECT reason_code FROM worker_dead_letters WHERE consumer_group = %s", (env.group,)).fetchone()
        assert code == ("AUDIT_RECORD_CONFLICT",)
        assert self.logged(env) == self.expected(env)

    def test_one_decisions_whole_chain_by_decision_id_or_event_id(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        declined = next(e["payload"] for _, _, e in self.inputs(env)
                        if e["event_class"] == "decision_response" and e["payload"]["outcome"] == "DECLINE")
        with env.db.transaction() as conn:
            by_id = decision_chain(conn, env.platform_run_id, decision_id=declined["decision_id"])
            by_event = decision_chain(conn, env.platform_run_id, event_id=declined["event_id"])
            assert decision_chain(conn, env.platform_run_id, decision_id="f" * 32) is None
        assert by_id is not None and by_id == by_event
        assert by_id["decision"] == declined
        assert by_id["admitted_event"]["receipt_id"] == declined["provenance"]["receipt_id"]
        assert by_id["reasons"] and all(r["values"] for r in by_id["reasons"])
        assert sorted(i["action_type"] for i in by_id["intents"]) == ["block_card", "decline"]
        assert {o["status"] for o in by_id["outcomes"]} == {"EXECUTED"} and len(by_id["outcomes"]) == 2
        assert len(by_id["audit"]) == 5 and all(a["object_key"].endswith(".json") for a in by_id["audit"])


def int_leaves(value: Any, path: tuple[str, ...] = ()) -> Any:
    """(path, integer) of every integer under objects of `value` (for an edit that keeps the value)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if type(item) is int:
                yield (*path, key), item
            yield from int_leaves(item, (*path, key))


class TestStoredChainVerification:
    """verify_stored_chain finds an edited, removed or reordered batch, and an edited last batch."""

    @pytest.fixture
    def chained(self, moto_endpoint: str, bucket: str, runtime_dsn: str) -> Any:
        from runtime.bus.memory import MemoryBroker
        from runtime.db.postgres import Database
        from runtime.store.s3 import s3_client
        from tests.support.events import random_run_id

        suite = TestAuditHandlerContract()
        suite.store = S3Store(bucket, client=s3_client(moto_endpoint, "us-east-1"))
        db = Database(runtime_dsn, name="verify", max_size=2)
        env = WorkerEnv(MemoryBroker(), db, random_run_id(), "fp-verify-" + bucket)
        for topic in (RTDL_TOPIC, AUDIT_TOPIC):
            env.broker.admin().ensure_topic(topic, 1, 24)
        suite.publish(env, suite.inputs(env))
        suite.drain(env)
        rows = suite.batches(env)
        assert len(rows) >= 3
        yield suite.store, db, env.platform_run_id, rows
        db.close()

    def verdict(self, store: S3Store, db: Any, run: str) -> set[str]:
        with db.transaction() as conn:
            result = verify_stored_chain(conn, store, run)
        return {p["code"] for p in result.problems}

    def test_an_untouched_chain_verifies(self, chained: Any) -> None:
        store, db, run, _ = chained
        assert self.verdict(store, db, run) == set()

    def test_batch_objects_are_read_one_at_a_time_not_all_held(self, chained: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        import runtime.decision.dla.store as dla_store

        store, db, run, rows = chained
        live, most = [0], [0]

        class Held(dict[str, Any]):
            def __init__(self, batch: dict[str, Any]) -> None:
                super().__init__(batch)
                live[0] += 1
                most[0] = max(most[0], live[0])

            def __del__(self) -> None:
                live[0] -= 1

        read = dla_store.read_batch
        monkeypatch.setattr(dla_store, "read_batch", lambda data: (lambda b: Held(b) if isinstance(b, dict) else b)(read(data)))
        assert self.verdict(store, db, run) == set()
        assert len(rows) >= 3 and most[0] <= 2  # the one in hand and the one before it, whatever the run's size

    def test_an_edited_batch_is_found(self, chained: Any) -> None:
        store, db, run, rows = chained
        batch = json.loads(store.get(rows[1].object_key))
        batch["records"][0]["record"]["outcome"] = "APPROVE"
        store.put(rows[1].object_key, canonical_json(batch))
        assert "BATCH_EDITED" in self.verdict(store, db, run)

    def test_a_removed_batch_is_found(self, chained: Any) -> None:
        store, db, run, rows = chained
        store.delete(rows[1].object_key)
        assert "BATCH_REMOVED" in self.verdict(store, db, run)

    def test_reordered_batches_are_found(self, chained: Any) -> None:
        store, db, run, rows = chained
        first, second = store.get(rows[0].object_key), store.get(rows[1].object_key)
        store.put(rows[0].object_key, second)
        store.put(rows[1].object_key, first)
        assert "BATCH_REORDERED" in self.verdict(store, db, run)

    def test_an_edited_last_batch_with_a_recomputed_digest_is_found(self, chained: Any) -> None:
        from runtime.decision.dla.domain import seal_batch

        store, db, run, rows = chained
        last = json.loads(store.get(rows[-1].object_key))
        data, _ = seal_batch(run, last["batch_seq"], last["previous_sha256"], last["records"][:1])  # a consistent forgery
        store.put(rows[-1].object_key, data)
        assert {"HEAD_MISMATCH", "BATCH_EDITED"} <= self.verdict(store, db, run)

    # An index row whose record was edited in the database (as its owner, past the append-only
    # trigger) is found, also when only a number's written form changed, and by the Python path too.

    def edit_index_record(self, owner_dsn: str, run: str, change: str) -> None:
        from runtime.db.postgres import connect

        with connect(owner_dsn) as conn:
            conn.execute("SET session_replication_role = replica")  # the owner's bypass, not the runtime's
            target = conn.execute("SELECT audit_id FROM dla_audit_records WHERE platform_run_id = %s AND kind = 'decision'"
                                  " ORDER BY batch_seq DESC, batch_position LIMIT 1", (run,)).fetchone()
            assert target is not None
            conn.execute(f"UPDATE dla_audit_records SET record = {change} WHERE platform_run_id = %s AND audit_id = %s",
                         (run, target[0]))
            conn.commit()

    @pytest.mark.parametrize("change", ["jsonb_set(record, '{outcome}', '\"EDITED\"')",
                                        "record || '{\"added\": 1}'::jsonb"])
    def test_an_edited_index_record_is_found(self, chained: Any, owner_dsn: str, change: str) -> None:
        store, db, run, _ = chained
        self.edit_index_record(owner_dsn, run, change)
        assert self.verdict(store, db, run) == {"INDEX_RECORD_MISMATCH"}

    def test_a_number_written_with_another_scale_is_found(self, chained: Any, owner_dsn: str) -> None:
        store, db, run, _ = chained
        self.edit_index_record(owner_dsn, run, "jsonb_set(record, '{scale_probe}', '1') ")
        assert self.verdict(store, db, run) == {"INDEX_RECORD_MISMATCH"}  # a key the object does not have
        with db.transaction() as conn:
            record = conn.execute("SELECT record FROM dla_audit_records WHERE platform_run_id = %s AND kind = 'decision'"
                                  " ORDER BY batch_seq DESC, batch_position LIMIT 1", (run,)).fetchone()[0]
        path, value = next(int_leaves(record))
        self.edit_index_record(owner_dsn, run, f"jsonb_set(record - 'scale_probe', '{{{','.join(path)}}}',"
                                               f" to_jsonb(({value})::numeric(30, 1)))")  # 5 -> 5.0
        assert self.verdict(store, db, run) == {"INDEX_RECORD_MISMATCH"}

    def test_an_object_record_jsonb_refuses_is_reported_not_raised(self, chained: Any, owner_dsn: str) -> None:
        store, db, run, rows = chained
        batch = json.loads(store.get(rows[1].object_key))
        batch["records"][0]["record"]["outcome"] = "NUL\x00"  # \u0000: PostgreSQL's jsonb refuses it
        store.put(rows[1].object_key, canonical_json(batch))
        assert "BATCH_EDITED" in self.verdict(store, db, run)  # and the check's transaction stayed usable
        self.edit_index_record(owner_dsn, run, "jsonb_set(record, '{outcome}', '\"EDITED\"')")
        assert "INDEX_RECORD_MISMATCH" in self.verdict(store, db, run)

    def test_records_orjson_cannot_write_are_compared_in_python(self, chained: Any, owner_dsn: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        import runtime.decision.dla.store as dla_store

        def refuse(value: Any) -> bytes:
            raise TypeError("Integer exceeds 64-bit range")

        monkeypatch.setattr(dla_store.orjson, "dumps", refuse)
        store, db, run, _ = chained
        assert self.verdict(store, db, run) == set()
        self.edit_index_record(owner_dsn, run, "jsonb_set(record, '{outcome}', '\"EDITED\"')")
        assert self.verdict(store, db, run) == {"INDEX_RECORD_MISMATCH"}


def test_build_reads_topics_bucket_and_audit_prefix_from_the_registry() -> None:
    handler = build(load_settings({}, environment="local_parity"), "platform_20260105T000000Z")
    assert isinstance(handler, AuditHandler)
    assert handler.input_topics() == ["fp.bus.rtdl.v1"] and handler.audit_topic == "fp.bus.audit.v1"
    assert handler.prefix == "platform/platform_20260105T000000Z/decision_lane/audit/"
    assert handler.store.bucket == "fp-local-platform"
