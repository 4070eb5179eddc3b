"""P9's job (`decision committed`) and the operator commands (`decision show|verify`) over a real lane.

A whole lane runs in process: traffic on the in-memory bus, the real DF, AL and DLA handlers in
stream workers over the test PostgreSQL (runtime role) and the moto S3 API, IG's admissions and
receipts and DL's posture where the real components put them. The job writes the three P9
summaries only when the chain is committed; otherwise it fails with a code naming what broke.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.bus.memory import MemoryBroker
from runtime.contracts.registry import load_registry
from runtime.db.postgres import Database, connect
from runtime.decision.al.handler import ActionHandler
from runtime.decision.bundle import load_policy
from runtime.decision.cli import app
from runtime.decision.committed import DecisionChainNotCommitted, write_committed
from runtime.decision.df.handler import DecisionFabricHandler
from runtime.decision.dla.handler import AuditHandler
from runtime.evidence.writer import schema_violations
from runtime.settings import Settings, load_settings
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.run import component_dir
from runtime.worker.store import WorkerStore
from tests.runtime.rtdl.envelopes import traffic
from tests.runtime.rtdl.feeding import with_run
from tests.support.events import random_run_id

REG = load_registry("local_parity")
TRAFFIC = "fp.bus.traffic.fraud.v1"
RTDL = REG.topic("FP_BUS_RTDL_V1").name
AUDIT = REG.topic("FP_BUS_AUDIT_V1").name
EVENTS = 6
runner = CliRunner()


@pytest.fixture
def settings(moto_endpoint: str, runtime_dsn: str, s3_client: Any) -> Settings:
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn,
                              "FP_BUS": "kafka"})
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=REG.text("S3_EVIDENCE_BUCKET"))
    return settings


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, runtime_dsn: str) -> None:
    for key, value in {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn,
                       "FP_BUS": "kafka"}.items():
        monkeypatch.setenv(key, value)


def _put(settings: Settings, run: str, relative: str, doc: dict[str, Any]) -> None:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run)
    settings.bucket("S3_EVIDENCE_BUCKET").put(prefix + relative, json.dumps(doc).encode())


def _health(settings: Settings, run: str, state: str = "GREEN", components: tuple[str, ...] = ("dl", "df", "al", "dla")) -> None:
    for c in components:
        _put(settings, run, REG.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=component_dir(c)),
             {"health_state": state, "reasons": [] if state == "GREEN" else ["BUS_UNAVAILABLE: down"],
              **({"posture": "GREEN"} if c == "dl" else {})})


def _drain(broker: MemoryBroker, db: Database, handler: StreamHandler, run: str) -> None:
    group = f"fp-{handler.component}-{run}"
    worker = StreamWorker(handler, broker.consumer(handler.input_topics(), group, run), broker.publisher(), db.transaction,
                          WorkerStore(group, handler.component, run), admin=broker.admin(),
                          config=WorkerConfig(batch_size=4, poll_timeout_s=0.01, backoff_initial_s=0.0))
    worker.run(threading.Event(), idle_exit_after=2)
    worker.consumer.close()


def _lane(settings: Settings, run: str, *, events: int = EVENTS, undecided: int = 0) -> list[dict[str, Any]]:
    """Pin the run, admit `events` traffic events (+ `undecided` the lane never sees), run DF, AL, DLA over them."""
    policy = load_policy()
    _put(settings, run, REG.text("EVIDENCE_RUN_JSON_KEY"), {"config": {"policy": policy.ref()}})
    envelopes = [with_run(traffic(600 + 30 * i, seq=10 + i, amount=[20.0, 900.0][i % 2]), run) for i in range(events + undecided)]
    broker = MemoryBroker()
    admin = broker.admin()
    for topic in (TRAFFIC, RTDL, AUDIT):
        admin.ensure_topic(topic, 1, 24)
    assert settings.db_dsn
    with connect(settings.db_dsn) as conn:
        conn.execute("INSERT INTO dl_posture_history (platform_run_id, seq, posture, reasons, health, entry_sha256, at_utc)"
                     " VALUES (%s, 0, 'GREEN', '{}', '{}', 'x', now())", (run,))
        for i, e in enumerate(envelopes):
            ref = {"topic": TRAFFIC, "partition": 0, "offset": i, "offset_kind": "kafka_offset"}
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, receipt_id, eb_ref)"
                         " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s, %s)", (run, e["event_id"], f"r{i}", json.dumps(ref)))
            conn.execute("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key,"
                         " batch_index, receipt) VALUES (%s, %s, 'traffic_fraud', %s, 'ADMIT', 'k', %s, '{}')",
                         (f"{run}-r{i}", run, e["event_id"], i))
        conn.commit()
    broker.publisher().publish([_outbound(e) for e in envelopes[:events]])
    with Database(settings.db_dsn, name="p9 lane test", max_size=2) as db:
        _drain(broker, db, DecisionFabricHandler(run, [TRAFFIC], RTDL, policy, policy.digest, [], wait_ms=0), run)
        _drain(broker, db, ActionHandler(RTDL, run, policy.actions), run)
        store = settings.bucket("S3_EVIDENCE_BUCKET")
        _drain(broker, db, AuditHandler(RTDL, AUDIT, store, REG.render("DLA_AUDIT_PREFIX_PATTERN", platform_run_id=run), run,
                                        lineage_interval_s=0.0), run)
    return envelopes


def _edit_first_outcome(batch: bytes) -> bytes:
    """The batch with its first record's outcome changed: every audit record (decision, intent,
    outcome) carries one, whichever records the batch happens to hold (their order follows ids
    derived from the random run id, so a fixed word such as APPROVE is not always there)."""
    found = re.search(rb'"outcome":"([A-Z_]+)"', batch)
    assert found is not None, batch[:500]
    other = b"REVIEW" if found.group(1) != b"REVIEW" else b"DECLINE"
    return batch[:found.start(1)] + other + batch[found.end(1):]


def _outbound(envelope: dict[str, Any]) -> Any:
    from runtime.bus.port import OutboundRecord

    return OutboundRecord(TRAFFIC, envelope["payload"]["flow_id"], json.dumps(envelope, sort_keys=True).encode())


def _read(settings: Settings, run: str, key: str) -> dict[str, Any] | None:
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    path = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run) + REG.text(key)
    return dict(json.loads(store.get(path))) if store.exists(path) else None


def test_a_committed_lane_writes_three_valid_summaries_that_add_up(settings: Settings) -> None:
    run = random_run_id()
    _lane(settings, run)
    _health(settings, run)
    written = write_committed(settings, run, wait_s=5, poll_s=0.1, progress=lambda _: None)
    assert [w.relative_path for w in written] == [REG.text(k) for k in (
        "DECISION_LANE_EVIDENCE_PATH_PATTERN", "ACTION_SUMMARY_PATH_PATTERN", "DLA_EVIDENCE_PATH_PATTERN")]
    decision = _read(settings, run, "DECISION_LANE_EVIDENCE_PATH_PATTERN")
    action = _read(settings, run, "ACTION_SUMMARY_PATH_PATTERN")
    audit = _read(settings, run, "DLA_EVIDENCE_PATH_PATTERN")
    assert decision and action and audit
    for schema, doc in (("decision_summary", decision), ("action_summary", action), ("audit_summary", audit)):
        assert schema_violations(f"evidence/{schema}.schema.json", doc) == []
    counts = decision["counts"]
    assert counts["admitted_traffic_events"] == counts["decisions"] == EVENTS and decision["all_admitted_decided"]
    assert sum(counts["by_outcome"].values()) == sum(counts["by_posture"].values()) == EVENTS
    assert counts["by_posture"]["GREEN"] == EVENTS and decision["policy"] == load_policy().ref()
    assert decision["latency_ms"]["samples"] == EVENTS and decision["latency_ms"]["admission_to_decision_p99"] is not None
    assert action["intake_equals_outcomes"] and action["counts"]["intents"] == action["counts"]["outcomes"]
    assert sum(action["counts"]["by_action_type"].values()) == action["counts"]["outcomes"] >= EVENTS
    assert audit["lineage_unresolved_total"] == 0 and audit["chain"]["verified"] and audit["chain"]["problems"] == []
    assert audit["counts"]["decisions"] == EVENTS and audit["counts"]["outcomes"] == action["counts"]["outcomes"]
    assert audit["counts"]["records"] == EVENTS + 2 * action["counts"]["outcomes"] and len(audit["slices"]) == audit["counts"]["batches"]
    from runtime.evidence.promises import FILE_PROMISES

    run_json = _read(settings, run, "EVIDENCE_RUN_JSON_KEY")
    docs = {REG.text(k): d for k, d in (("DECISION_LANE_EVIDENCE_PATH_PATTERN", decision), ("ACTION_SUMMARY_PATH_PATTERN", action),
                                         ("DLA_EVIDENCE_PATH_PATTERN", audit), ("EVIDENCE_RUN_JSON_KEY", run_json))}
    for schema, doc in (("decision_summary", decision), ("action_summary", action), ("audit_summary", audit)):
        assert FILE_PROMISES[schema](schema, doc, docs, REG) == []
    edited = {**audit, "counts": {**audit["counts"], "decisions": EVENTS + 1}}
    assert FILE_PROMISES["audit_summary"]("u", edited, docs, REG)  # an edited count breaks a promise


def test_an_admitted_event_without_a_decision_fails_naming_it_and_writes_nothing(settings: Settings) -> None:
    run = random_run_id()
    envelopes = _lane(settings, run, undecided=1)
    _health(settings, run)
    lines: list[str] = []
    with pytest.raises(DecisionChainNotCommitted) as info:
        write_committed(settings, run, wait_s=0.3, poll_s=0.1, progress=lines.append)
    # DF never read the last admission (it never reached the bus): the cheap look says so while the
    # wait lasts, and the failure carries the whole look's reasons.
    assert lines and all("df has not read 1 admitted traffic record(s) on 1 partition(s)" in line for line in lines)
    assert info.value.code == "DECISION_CHAIN_NOT_COMMITTED"
    assert "1 admitted traffic event(s) without a decision" in info.value.message
    assert envelopes[-1]["event_id"] in info.value.message
    assert _read(settings, run, "DECISION_LANE_EVIDENCE_PATH_PATTERN") is None


def test_once_df_has_read_everything_a_slow_whole_look_is_followed_by_a_short_pause(settings: Settings, monkeypatch) -> None:
    import time

    import runtime.decision.committed as committed

    run = random_run_id()
    _lane(settings, run)  # DF read every admission; no health documents, so never committed
    real = committed.observe
    looks: list[float] = []

    def slow_observe(*args: Any) -> Any:  # a full-cap whole look: 0.2 s and more here
        began = time.monotonic()
        time.sleep(0.2)
        seen = real(*args)
        looks.append(time.monotonic() - began)
        return seen
    monkeypatch.setattr(committed, "observe", slow_observe)
    pauses: list[float] = []
    with pytest.raises(DecisionChainNotCommitted):
        write_committed(settings, run, wait_s=3.0, poll_s=0.01, progress=lambda _: None, sleep=pauses.append)
    # at CLOSING_LOOK_DUTY (0.5) about as long as the look; at LOOK_DUTY (0.1) 9x as long
    assert len(pauses) >= 2 and looks[0] <= pauses[0] < 3 * looks[0], (looks, pauses)


def test_the_lineage_walk_waits_until_every_count_adds_up() -> None:
    from runtime.decision.committed import LaneObservation

    def lane(logged_outcomes: int, lineage: int | None) -> LaneObservation:
        return LaneObservation(admitted=4, undecided=[], decisions=4, intents_expected=5, executed=5,
                               logged={"decision": 4, "intent": 5, "outcome": logged_outcomes}, lineage_unresolved=lineage,
                               health={c: {"health_state": "GREEN"} for c in ("dl", "df", "al", "dla")}, dead_letters={})

    short = lane(4, None)
    assert not short.counts_add_up() and not short.judge()
    assert short.reasons == ["dla: logged 4 outcome(s) of 5", "dla: lineage not walked yet (the counts above do not add up)"]
    assert lane(5, None).counts_add_up()
    assert lane(5, 0).judge() and not lane(5, 2).judge()


def test_a_worker_not_green_or_without_health_fails_the_gate(settings: Settings) -> None:
    run = random_run_id()
    _lane(settings, run)
    _health(settings, run, components=("dl", "df", "al"))
    _health(settings, run, state="RED", components=("al",))
    with pytest.raises(DecisionChainNotCommitted) as info:
        write_committed(settings, run, wait_s=0.2, poll_s=0.1, progress=lambda _: None)
    assert "al: health RED" in info.value.message and "dla: health MISSING" in info.value.message


def test_an_edited_audit_batch_fails_the_gate_and_verify_names_it(settings: Settings, cli_env: None) -> None:
    run = random_run_id()
    _lane(settings, run)
    _health(settings, run)
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    assert settings.db_dsn
    with connect(settings.db_dsn) as conn:
        key = conn.execute("SELECT object_key FROM dla_audit_batches WHERE platform_run_id = %s ORDER BY batch_seq LIMIT 1",
                           (run,)).fetchone()[0]
    ok = runner.invoke(app, ["verify", "--platform-run-id", run])
    assert ok.exit_code == 0 and "verified" in ok.output
    store.put(key, _edit_first_outcome(store.get(key)))
    broken = runner.invoke(app, ["verify", "--platform-run-id", run])
    assert broken.exit_code == 1 and "BATCH_EDITED" in broken.output
    with pytest.raises(Exception) as info:
        write_committed(settings, run, wait_s=1, poll_s=0.1, progress=lambda _: None)
    assert getattr(info.value, "code", None) == "AUDIT_CHAIN_BROKEN"


def test_another_policy_than_the_pinned_one_is_policy_drift(settings: Settings) -> None:
    run = random_run_id()
    _lane(settings, run)
    _health(settings, run)
    _put(settings, run, REG.text("EVIDENCE_RUN_JSON_KEY"), {"config": {"policy": {**load_policy().ref(), "digest": "0" * 64}}})
    with pytest.raises(Exception) as info:
        write_committed(settings, run, wait_s=1, poll_s=0.1, progress=lambda _: None)
    assert getattr(info.value, "code", None) == "POLICY_DRIFT"


def test_show_prints_one_decisions_chain_by_event_or_decision_id_within_80_columns(settings: Settings, cli_env: None) -> None:
    run = random_run_id()
    envelopes = _lane(settings, run)
    by_event = runner.invoke(app, ["show", "--platform-run-id", run, "--event-id", envelopes[1]["event_id"]])
    assert by_event.exit_code == 0, by_event.output
    lines = by_event.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = by_event.output
    for part in ("admitted event", f"eb_ref {TRAFFIC}[0] @ 1", f"receipt {run}-r1 ADMIT", "reasons that fired",
                 "intents (", "outcomes (", "audit records (", "object platform/"):
        assert part in text, part
    decision_id = lines[0].split()[1]
    as_json = runner.invoke(app, ["show", "--platform-run-id", run, "--decision-id", decision_id, "--json"])
    chain = json.loads(as_json.output)
    assert chain["decision"]["event_id"] == envelopes[1]["event_id"] and chain["receipt"]["outcome"] == "ADMIT"
    assert len(chain["outcomes"]) == len(chain["intents"]) == len(chain["decision"]["actions"])


def test_show_and_verify_refuse_an_unknown_decision_or_run_with_a_code(settings: Settings, cli_env: None) -> None:
    run = random_run_id()
    _lane(settings, run, events=1)
    unknown = runner.invoke(app, ["show", "--platform-run-id", run, "--decision-id", "f" * 32])
    assert unknown.exit_code == 1 and "DECISION_UNKNOWN" in unknown.output
    both = runner.invoke(app, ["show", "--platform-run-id", run])
    assert both.exit_code == 1 and "DECISION_ID_MISSING" in both.output
    other = random_run_id()
    for argv in (["show", "--platform-run-id", other, "--event-id", "x"], ["verify", "--platform-run-id", other],
                 ["committed", "--platform-run-id", other, "--wait", "0"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1 and "RUN_UNKNOWN" in result.output, argv


def test_help_of_every_command_fits_80_columns() -> None:
    for argv in ([], ["committed"], ["show"], ["verify"]):
        result = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
        assert result.exit_code == 0
        assert max(len(line) for line in result.output.splitlines()) <= 80
