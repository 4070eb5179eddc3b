"""The reporter's gatherer on a real Postgres with a small run seeded through every plane's tables:
the hops reconcile on the sound run, and each planted break (a receipt missing from the index, a
decision missing, an offset snapshot edited) fails the hop or snapshot it breaks, by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord
from runtime.components import consumer_group_id
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.obs import gather
from runtime.obs.anchors import replay_anchors
from runtime.obs.reconcile import reconciliation
from runtime.obs.spine_hops import spine_hops
from tests.runtime.case.lane import trigger_envelope
from tests.runtime.case.records import hex32
from tests.runtime.decision.lane_bus import lane_envelope_of
from tests.runtime.decision.support import lane_records
from tests.support.events import random_run_id

REG = load_registry("local_parity")
TRAFFIC = "fp.bus.traffic.fraud.v1"
RTDL = "fp.bus.rtdl.v1"
DECISIONS = 8


def _ref(topic: str, offset: int) -> dict[str, Any]:
    return {"offset_kind": "kafka_offset", "topic": topic, "partition": 0, "offset": str(offset)}


def seed(conn: Any, run: str, *, drop_receipt: bool = False, drop_decision: bool = False) -> int:
    """A small run through every plane: DECISIONS admitted traffic events, DF's decisions and intents
    (published), AL's outcomes, DLA's audit records, CaseTrigger's triggers, CM's attached evidence,
    DF's tally. Returns the traffic events admitted."""
    records = lane_records(run, DECISIONS)
    decisions = [p for c, p in records if c == "decision_response"]
    cur = conn.cursor()
    for i, d in enumerate(decisions):
        ref = _ref(TRAFFIC, i)
        cur.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, receipt_id, eb_ref)"
                    " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s, %s)", (run, d["event_id"], hex32(("r", run, i)), Jsonb(ref)))
        if not (drop_receipt and i == 0):
            cur.execute("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, eb_ref, batch_key,"
                        " batch_index, receipt) VALUES (%s, %s, 'traffic_fraud', %s, 'ADMIT', %s, 'b', %s, '{}')",
                        (hex32(("r", run, i)), run, d["event_id"], Jsonb(ref), i))
        if not (drop_decision and i == 0):
            cur.execute("INSERT INTO df_decisions (decision_id, platform_run_id, event_class, event_id, event_ts_utc, outcome,"
                        " posture, reason_codes, degrade_codes, policy_digest, core_sha256, record, eb_ref, decided_at)"
                        " VALUES (%s, %s, 'traffic_fraud', %s, %s, %s, 'GREEN', '{}', '{}', 'p', 'c', %s, %s, now())",
                        (d["decision_id"], run, d["event_id"], d["event_ts_utc"], d["outcome"], Jsonb(d), Jsonb(ref)))
    offset = 0
    for cls, payload in records:
        if cls == "action_intent":
            envelope = lane_envelope_of(run, cls, payload)
            cur.execute("INSERT INTO worker_outbox (component, record_id, platform_run_id, topic, key, value, published_at, eb_ref)"
                        " VALUES ('df', %s, %s, %s, 'k', %s, now(), %s)",
                        (envelope["event_id"], run, RTDL, json.dumps(envelope).encode(), Jsonb(_ref(RTDL, offset))))
            offset += 1
        if cls == "action_outcome":
            cur.execute("INSERT INTO al_effects (platform_run_id, idempotency_key, intent_id, outcome_id, decision_id, event_id,"
                        " action_type, outcome, intent_eb_ref) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '{}')",
                        (run, payload["idempotency_key"], payload["intent_id"], payload["outcome_id"], payload["decision_id"],
                         payload["event_id"], payload["action_type"], Jsonb(payload)))
    kinds = {"decision_response": "decision", "action_intent": "intent", "action_outcome": "outcome"}
    for n, (cls, _payload) in enumerate(records):
        cur.execute("INSERT INTO dla_audit_records (platform_run_id, audit_id, kind, record_id, record_sha256, batch_seq,"
                    " batch_position, eb_ref, record) VALUES (%s, %s, %s, %s, 's', 0, %s, '{}', '{}')",
                    (run, hex32(("a", run, n)), kinds[cls], hex32(("rec", run, n)), n))
    for d in decisions:
        trigger = trigger_envelope(run, lane_envelope_of(run, "decision_response", d))
        if trigger is None:
            continue
        t = trigger["payload"]
        cur.execute("INSERT INTO case_triggers (platform_run_id, trigger_id, case_id, decision_id, payload) VALUES (%s, %s, %s, %s, %s)",
                    (run, t["trigger_id"], t["case_id"], d["decision_id"], Jsonb(t)))
        cur.execute("INSERT INTO cm_case_timeline (platform_run_id, timeline_event_id, case_id, kind, actor, at_utc, details)"
                    " VALUES (%s, %s, %s, 'evidence_attached', 'cm', 'now', %s)",
                    (run, hex32(("ev", t["trigger_id"])), t["case_id"], Jsonb({"trigger_id": t["trigger_id"]})))
    cur.execute("INSERT INTO worker_tallies (consumer_group, platform_run_id, component, processed, dead_lettered)"
                " VALUES (%s, %s, 'df', %s, 0)", (consumer_group_id(REG, "df", run), run, DECISIONS))
    return DECISIONS


def bundle(run: str, emitted: int, snapshot_end: int | None = None) -> gather.Bundle:
    """The bundle documents the gatherer reads: WSP's summary, IG's probe, P7's snapshot."""
    end = DECISIONS - 1 if snapshot_end is None else snapshot_end
    return gather.Bundle({
        "wsp/wsp_summary.json": {"scenario_run_id": "s", "per_output": [{"output_id": "o", "emitted": emitted, "retries": 0}]},
        "ingest/kafka_offsets_snapshot.json": {"offset_ranges": [
            {"topic": TRAFFIC, "partition": 0, "start_offset": "0", "end_offset": str(end)}]},
    }, {})


@pytest.fixture
def conn(runtime_dsn: str) -> Iterator[Any]:
    with connect(runtime_dsn) as c:
        yield c
        c.rollback()  # nothing seeded outlives the test


def _recon(conn: Any, run: str, b: gather.Bundle) -> dict[str, Any]:
    counts = gather.spine_counts(conn, REG, b, run, {"df": {TRAFFIC}})
    return reconciliation(spine_hops(counts))


def test_a_sound_run_reconciles_at_every_hop(conn: Any) -> None:
    run = random_run_id()
    n = seed(conn, run)
    doc = _recon(conn, run, bundle(run, n))
    assert doc["status"] == "PASS", [(h["hop"], h["intended"], h["terms"]) for h in doc["hops"] if not h["ok"]]
    hops = {h["hop"]: h for h in doc["hops"]}
    assert hops["consumer_to_decisions"]["observed"] == n
    assert hops[f"topic_to_consumer:{consumer_group_id(REG, 'df', run)}"]["terms"] == {
        "processed": n, "skipped": 0, "dead_lettered": 0}
    assert hops["audit_to_case_triggers"]["intended"] > 0  # REVIEW and DECLINE decisions need a human


def test_a_receipt_missing_from_the_index_fails_wsp_to_ig_and_ig_to_topics(conn: Any) -> None:
    run = random_run_id()
    n = seed(conn, run, drop_receipt=True)
    doc = _recon(conn, run, bundle(run, n))
    assert doc["status"] == "FAIL" and doc["failed_hops"][:2] == ["wsp_to_ig", "ig_to_topics"]


def test_a_decision_missing_fails_consumer_to_decisions(conn: Any) -> None:
    run = random_run_id()
    n = seed(conn, run, drop_decision=True)
    doc = _recon(conn, run, bundle(run, n))
    assert doc["status"] == "FAIL" and "consumer_to_decisions" in doc["failed_hops"]
    assert "wsp_to_ig" not in doc["failed_hops"]


@pytest.mark.parametrize("edited", [False, True])
def test_an_edited_offset_snapshot_is_named_among_the_replay_anchors(conn: Any, edited: bool) -> None:
    run = random_run_id()
    n = seed(conn, run)
    broker = MemoryBroker()
    broker.admin().ensure_topic(TRAFFIC, 1, 24)
    broker.admin().ensure_topic(RTDL, 1, 24)
    broker.publisher().publish([OutboundRecord(t, "k", b"{}") for t in (TRAFFIC, RTDL) for _ in range(n)])
    anchors = gather.anchor_ranges(broker.admin(), gather.run_partitions(conn, run))
    b = bundle(run, n, snapshot_end=n - 3 if edited else None)
    doc = replay_anchors(anchors, gather.snapshots(REG, b), offset_kind="kafka_offset", captured_at_utc="2026-11-29T12:00:00Z")
    ranges = {(r["topic"], r["partition"]): (r["start_offset"], r["end_offset"], r["records"]) for r in doc["offset_ranges"]}
    assert ranges[(TRAFFIC, "0")] == ("0", str(n - 1), n)
    [p7] = doc["consistent_with"]
    assert p7["consistent"] is not edited
    if edited:
        assert f"{TRAFFIC}[0]" in p7["detail"]


def test_stage_times_count_each_stage_from_its_own_durable_times(conn: Any) -> None:
    run = random_run_id()
    n = seed(conn, run, drop_decision=True)
    b = bundle(run, n)
    times = {t.stage: t for t in gather.stage_times(conn, REG, b, gather.spine_counts(conn, REG, b, run, {}), run)}
    ig = times["ig admitted"]
    assert (ig.events, ig.busiest_minute_events, ig.lag_at_end) == (n, n, 0)
    # one decision never made: at the end of streaming DF still owed it
    assert (times["df decided"].events, times["df decided"].lag_at_end) == (n - 1, 1)
    assert times["ofp processed"].events == 0 and times["ofp processed"].last is None  # no tally: nothing processed
    assert times["wsp emitted"].events == n and times["case triggers"].events > 0


def test_at_full_cap_only_the_streamed_outputs_are_owed_never_the_truth_outputs() -> None:
    summary = {"outputs": [{"output_id": "s3_event_stream_with_fraud_6B", "row_count": 500},
                           {"output_id": "arrival_events_5B", "row_count": 900},
                           {"output_id": "s4_event_labels_6B", "row_count": 500}]}
    owed = gather._stream_view_rows(gather.Bundle({REG.text("STREAM_SORT_SUMMARY_PATH_PATTERN"): summary}, {}), REG)
    assert owed == {"s3_event_stream_with_fraud_6B": 500, "arrival_events_5B": 900}


def test_the_registry_pin_holds_when_the_reporter_loaded_the_file_p1_pinned_and_fails_naming_both_otherwise(
        tmp_path: Any) -> None:
    run = {"config": {"registry_sha256": REG.source_sha256}}
    check = gather.registry_pin_check(run, REG)
    assert check.ok and check.name == gather.REGISTRY_PIN_CHECK and check.category == "pinned_versions_in_use"
    edited = tmp_path / "handles.registry.yaml"
    edited.write_text(REG.source.read_text() + "# edited after P1\n")
    other = load_registry("local_parity", edited)
    drift = gather.registry_pin_check(run, other)
    assert not drift.ok and f"pinned {REG.source_sha256}, in use {other.source_sha256}" in drift.detail
    assert not gather.registry_pin_check({"config": {}}, REG).ok  # a run.json that pins no registry proves nothing


def test_the_image_pin_is_checked_only_where_p1_pinned_an_image_and_is_pending_until_p11_observes_the_task_definitions() -> None:
    from runtime.obs.live import pending

    digest = "sha256:" + "b" * 64
    run = {"config": {"code": {"image_digest": digest}}}
    assert gather.image_pin_check({"config": {"code": {"image_digest": None}}, "image_digest": None}, None) is None  # local
    waiting = gather.image_pin_check(run, None)
    assert waiting is not None and not waiting.ok and pending(waiting)  # during the run: not observed yet
    ok = gather.image_pin_check(run, {"task_definitions": [{"images": [f"repo/fp@{digest}"]}, {"images": [f"repo/fp@{digest}"]}]})
    assert ok is not None and ok.ok
    other = gather.image_pin_check(run, {"task_definitions": [{"images": [f"repo/fp@{digest}"]}, {"images": ["repo/fp:git-abc"]}]})
    assert other is not None and not other.ok and not pending(other)
    assert f"pinned {digest}, in use repo/fp:git-abc, {digest}" in other.detail


def _judged_one_by_one(conn: Any, run: str, policy: Any) -> int:
    from runtime.case.trigger.domain import trigger_for
    from runtime.case.trigger.handler import decision_fields

    rows = conn.execute("SELECT record, event_ts_utc FROM df_decisions WHERE platform_run_id = %s", (run,)).fetchall()
    return sum(1 for record, ts in rows if trigger_for(decision_fields(record, str(ts)), policy) is not None)


def test_triggers_expected_counts_what_the_trigger_policy_judges_record_by_record(conn: Any) -> None:
    from runtime.case.trigger.domain import TriggerPolicy

    run = random_run_id()
    seed(conn, run)
    records = [r for (r,) in conn.execute("SELECT record FROM df_decisions WHERE platform_run_id = %s", (run,)).fetchall()]
    approved = next(r for r in records if r["outcome"] == "APPROVE")
    for i, extra in enumerate([{"case_required": True}, {"case_required": False}, {}]):  # APPROVE, judged by the flag
        d = {**approved, **extra, "decision_id": hex32(("extra", run, i)), "event_id": hex32(("event", run, i))}
        conn.execute("INSERT INTO df_decisions (decision_id, platform_run_id, event_class, event_id, event_ts_utc, outcome,"
                     " posture, reason_codes, degrade_codes, policy_digest, core_sha256, record, eb_ref, decided_at)"
                     " VALUES (%s, %s, 'traffic_fraud', %s, %s, 'APPROVE', 'GREEN', '{}', '{}', 'p', 'c', %s, %s, now())",
                     (d["decision_id"], run, d["event_id"], d["event_ts_utc"], Jsonb(d), Jsonb(_ref(TRAFFIC, 100 + i))))
    codes = sorted({str(c.get("code") if isinstance(c, dict) else c) for r in records for c in r.get("reasons") or []})
    policies = [TriggerPolicy(), TriggerPolicy(outcomes=frozenset({"DECLINE"})), TriggerPolicy(marked_reasons=frozenset(codes[:1]))]
    counts = [gather.triggers_expected(conn, run, p) for p in policies]
    assert counts == [_judged_one_by_one(conn, run, p) for p in policies]
    assert counts[0] > counts[1] > 0 and codes  # the policies differ on this run, so the filter is exercised
