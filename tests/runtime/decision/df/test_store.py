"""DF's store: inputs read from Postgres equal the in-memory ones, the decisions table is append-only,
and the reads P9 reports (counts, latency, digest, undecided admissions) come from durable state."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from runtime.db.postgres import Database
from runtime.decision.df import store
from runtime.decision.df.domain import Provenance, decide, decision_digest
from runtime.decision.df.replay import decide_stream, stream_order
from runtime.rtdl.events import TRAFFIC_CLASSES, admitted
from tests.runtime.decision.support import assert_truth_tables_refuse_change, habitual_world, policy
from tests.runtime.rtdl.envelopes import engine_run, traffic
from tests.runtime.rtdl.feeding import feed, with_run
from tests.support.events import random_run_id


def test_inputs_and_decisions_from_the_stores_equal_the_in_memory_ones_for_a_whole_engine_run(db: Database) -> None:
    run = random_run_id()
    records = [(c, with_run(e, run)) for c, e in engine_run()]
    feed(db, run, records, batch=200)  # the stores hold the WHOLE run: later records must not change an answer
    p = policy()
    memory = list(decide_stream(stream_order(e for _, e in records), p, pinned_digest=p.digest))
    assert len(memory) > 300
    stored = []
    with db.transaction() as conn:
        for start in range(0, len(memory), 50):  # read batch by batch, as DF does
            batch = memory[start:start + 50]
            events = [admitted(envelope, expect=TRAFFIC_CLASSES) for envelope, _, _ in batch]
            reader = store.BatchReader(conn, run, events)
            for (envelope, inputs, _), event in zip(batch, events, strict=True):
                answer = reader.inputs(event)
                assert (answer.features, answer.graph, answer.join) == (inputs.features, inputs.graph, inputs.join), event.event_id
                stored.append(decide(envelope, answer, p, "GREEN", pinned_digest=p.digest))
        one = memory[7]
        assert store.inputs_as_of(conn, run, admitted(one[0], expect=TRAFFIC_CLASSES)).graph == one[1].graph
    assert [r.core() for r in stored] == [r.core() for _, _, r in memory]
    assert decision_digest(stored) == decision_digest(r for _, _, r in memory)
    assert {r.outcome for r in stored} == {"APPROVE", "STEP_UP", "REVIEW", "DECLINE"}


def test_a_binding_or_arrival_later_than_the_event_does_not_count_for_its_join(db: Database) -> None:
    from tests.runtime.rtdl.envelopes import anchor, arrival

    run = random_run_id()
    event = with_run(traffic(30), run)
    feed(db, run, [("context_arrival_events", with_run(arrival(40), run)),
                   ("context_flow_anchor_fraud", with_run(anchor(50), run))])
    with db.transaction() as conn:
        join = store.inputs_as_of(conn, run, admitted(event, expect=TRAFFIC_CLASSES)).join
    assert join["status"] == "MISSING_CONTEXT" and join["missing"] == ["flow_anchor_missing", "arrival_missing"]


def _decisions(run: str, n: int) -> list[Any]:
    world = habitual_world()
    out = []
    for i in range(n):
        event = {**traffic(600 + 30 * i, seq=10 + i, amount=[20.0, 900.0][i % 2]), "platform_run_id": run}
        provenance = Provenance({"topic": "t", "partition": 0, "offset": i}, "r" * 32, f"2026-01-05T00:00:0{i}.000000Z")
        inputs = world.inputs(event, provenance)
        record = decide(event, inputs, policy(), "GREEN", pinned_digest=policy().digest,
                        decided_at_utc=f"2026-01-05T00:00:0{i}.{100_000 * (i + 1):06d}Z")
        out.append(record)
    return out


def test_decisions_are_appended_once_and_the_p9_reads_come_from_the_table(db: Database) -> None:
    run = random_run_id()
    records = _decisions(run, 4)
    refs = [r.provenance["eb_ref"] for r in records]
    with db.transaction() as conn:
        assert store.append_decisions(conn, records, refs) == {r.decision_id for r in records}
        assert store.append_decisions(conn, records, refs) == set()
        held = store.held_decisions(conn, [records[0].decision_id])
        assert held[records[0].decision_id] == json.loads(json.dumps(records[0].canonical()))
        counts = store.decision_counts(conn, run)
        latency = store.decision_latency(conn, run)
        digest = store.run_decision_digest(conn, run)
    assert counts.total == 4 and sum(counts.by_outcome.values()) == 4 and counts.by_posture == {"GREEN": 4}
    assert counts.by_outcome.get("REVIEW", 0) + counts.by_outcome.get("DECLINE", 0) == 2 and counts.by_reason
    assert latency["measured"] == 4 and latency["p50_ms"] == 250.0 and latency["max_ms"] == 400.0
    assert 390.0 <= latency["p99_ms"] <= 400.0
    assert digest == decision_digest(records)


def test_the_run_digest_streams_the_records_in_the_order_python_sorts_their_ids(db: Database) -> None:
    run = random_run_id()
    ids = ("a1", "B2", "\u00e93", "Z4")  # code point order: B2, Z4, a1, then the accented one
    records = [dataclasses.replace(r, event_id=i, decision_id=f"{run}-{9 - n}")  # decision ids in the reverse order
               for n, (r, i) in enumerate(zip(_decisions(run, 4), ids, strict=True))]
    with db.transaction() as conn:
        store.append_decisions(conn, records, [r.provenance["eb_ref"] for r in records])
        assert store.run_decision_digest(conn, run) == decision_digest(records)


def test_admitted_traffic_without_a_decision_is_listed(db: Database) -> None:
    run = random_run_id()
    records = _decisions(run, 2)
    missing = {**traffic(900, seq=99), "platform_run_id": run}
    with db.transaction() as conn:
        for r in [*[{"event_class": x.event_class, "event_id": x.event_id} for x in records], missing]:
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state)"
                         " VALUES (%s, %s, %s, 'h', 'ADMITTED')", (run, r["event_class"], r["event_id"]))
        store.append_decisions(conn, records, [r.provenance["eb_ref"] for r in records])
        assert store.admitted_without_decision(conn, run, TRAFFIC_CLASSES) == [("traffic_fraud", missing["event_id"])]


def test_the_posture_is_the_last_one_dl_recorded(db: Database) -> None:
    run = random_run_id()
    with db.transaction() as conn:
        assert store.current_posture(conn, run) is None
        for seq, posture in enumerate(("RED", "AMBER", "GREEN")):
            conn.execute("INSERT INTO dl_posture_history (platform_run_id, seq, posture, reasons, health, entry_sha256, at_utc)"
                         " VALUES (%s, %s, %s, '{}', '{}', 'x', now())", (run, seq, posture))
        assert store.current_posture(conn, run) == "GREEN"


def test_decisions_and_posture_history_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("df_decisions", "dl_posture_history"))

