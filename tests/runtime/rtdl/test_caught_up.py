"""P8's job (`rtdl caught-up`): caught up only from durable positions, GREEN health and no dead
letters, with the counters and IEG reconciliation from the stores; otherwise it fails with a code
and the reasons and writes nothing PASS-looking.

Real PostgreSQL (runtime role) and the moto S3 API; the P7 snapshot, IG admissions, worker
positions and health documents are put where the real components put them."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.rtdl import caught_up
from runtime.rtdl.caught_up import RtdlNotCaughtUp, RtdlStateMissing, write_caught_up
from runtime.rtdl.cli import app
from runtime.rtdl.digest import rows_digest
from runtime.settings import Settings, load_settings
from runtime.worker.run import component_dir
from tests.support.events import random_run_id

REG = load_registry("local_parity")
COMPONENTS = ["archive_writer", "ieg", "ofp", "csfb"]
TOPIC = "fp.bus.traffic.fraud.v1"
runner = CliRunner()


@pytest.fixture
def settings(moto_endpoint: str, runtime_dsn: str, s3_client) -> Settings:  # type: ignore[no-untyped-def]
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=REG.text("S3_EVIDENCE_BUCKET"))
    return load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn,
                          "FP_BUS": "kafka"})


@pytest.fixture
def stores() -> None:
    """The OFP, IEG and CSFB stores of this build (runtime/rtdl/<c>/store.py), over the run's (empty) state."""


def put(settings: Settings, run_id: str, relative: str, doc: dict[str, Any]) -> None:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id)
    settings.bucket("S3_EVIDENCE_BUCKET").put(prefix + relative, json.dumps(doc).encode())


def stage(settings: Settings, run_id: str, *, position: int, health: str = "GREEN", dead: int = 0) -> None:
    """P7 says partition 0 holds offsets 0..9 and 1 holds 0..4; the run admitted 3..9 and 0..4;
    every group made durable up to `position` on partition 0 and 4 on partition 1."""
    put(settings, run_id, REG.text("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"), {"offset_ranges": [
        {"topic": TOPIC, "partition": 0, "start_offset": 0, "end_offset": 9},
        {"topic": TOPIC, "partition": 1, "start_offset": 0, "end_offset": 4},
        {"topic": TOPIC, "partition": 2, "start_offset": 0, "end_offset": 7}]})  # no records of the run
    assert settings.db_dsn
    with connect(settings.db_dsn) as conn:
        for partition, offsets in ((0, range(3, 10)), (1, range(0, 5))):
            for offset in offsets:
                conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref)"
                             " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s)",
                             (run_id, f"{partition}-{offset}", json.dumps({"topic": TOPIC, "partition": partition,
                                                                           "offset": offset, "offset_kind": "kafka_offset"})))
        for component, counter, value in (("ofp", "late_events", 1), ("csfb", "late_events", 1), ("csfb", "join_misses", 4)):
            conn.execute("INSERT INTO rtdl_counters (platform_run_id, component, topic, partition, counter, value)"
                         " VALUES (%s, %s, %s, '0', %s, %s)", (run_id, component, TOPIC, counter, value))
        for component in COMPONENTS:
            group = f"fp-{component}-{run_id}"
            conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES"
                         " (%s, %s, '0', %s), (%s, %s, '1', 4)", (group, TOPIC, position, group, TOPIC))
        conn.commit()
    for component in COMPONENTS:
        put(settings, run_id, REG.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=component_dir(component)),
            {"health_state": health, "reasons": [] if health == "GREEN" else ["BUS_UNAVAILABLE: down"],
             "counters": {"dead_letters_total": dead, "late_events": 2, "join_misses": 1}})


def written(settings: Settings, run_id: str) -> list[str]:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id) + "rtdl_core/"
    return [o.key for o in settings.bucket("S3_EVIDENCE_BUCKET").list(prefix)]


def test_caught_up_writes_the_snapshot_and_the_summary_with_a_state_digest(settings: Settings, stores: None) -> None:
    run_id = random_run_id()
    stage(settings, run_id, position=9)
    done = write_caught_up(settings, run_id, wait_s=0, progress=lambda line: None)
    assert [w.relative_path for w in done] == ["rtdl_core/offsets_snapshot.json", "rtdl_core/caught_up.json"]
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id)
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    summary = json.loads(store.get(prefix + "rtdl_core/caught_up.json"))
    snapshot = json.loads(store.get(prefix + "rtdl_core/offsets_snapshot.json"))
    assert summary["caught_up"] is True and summary["lag"]["total"] == 0
    assert summary["partitions_expected"] == summary["partitions_covered"] == 8  # 4 groups x 2 partitions of the run
    assert summary["late_events"] == 2 and summary["join"]["misses"] == 4  # durable counters, not this process's
    assert summary["reconciliation_present"] is True
    assert json.loads(store.get(prefix + "identity_entity_graph/reconciliation/reconciliation.json"))["status"] == "PASS"
    assert summary["state_digest"] == rows_digest({})  # no OFP, IEG or CSFB rows for this run
    assert {(r["partition"], r["start_offset"], r["end_offset"]) for r in snapshot["partitions"]} == {("0", 0, 9), ("1", 0, 4)}


def test_a_group_behind_the_runs_last_record_is_not_caught_up_and_writes_nothing(settings: Settings, stores: None) -> None:
    run_id = random_run_id()
    stage(settings, run_id, position=6)
    lines: list[str] = []
    with pytest.raises(RtdlNotCaughtUp) as e:
        write_caught_up(settings, run_id, wait_s=0.5, poll_s=0.1, progress=lines.append, sleep=lambda s: None)
    assert "archive_writer: lag 3 record(s)" in e.value.message and lines
    assert written(settings, run_id) == []


def test_red_health_or_dead_letters_are_not_caught_up(settings: Settings, stores: None) -> None:
    run_id = random_run_id()
    stage(settings, run_id, position=9, health="RED")
    with pytest.raises(RtdlNotCaughtUp, match="health RED"):
        write_caught_up(settings, run_id, wait_s=0, progress=lambda line: None)
    assert written(settings, run_id) == []


def test_without_the_ofp_ieg_and_csfb_stores_it_fails_closed_naming_them(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caught_up, "STATE_STORES", {"ofp": "runtime.rtdl.ofp.store_absent", "ieg": "runtime.rtdl.ieg.store_absent",
                                                    "csfb": "runtime.rtdl.csfb.store_absent"})
    run_id = random_run_id()
    stage(settings, run_id, position=9)
    with pytest.raises(RtdlStateMissing, match=r"runtime\.rtdl\.ofp\.store_absent"):
        write_caught_up(settings, run_id, wait_s=0, progress=lambda line: None)
    assert written(settings, run_id) == []


def test_without_the_p7_snapshot_it_says_to_run_p7(settings: Settings, stores: None) -> None:
    with pytest.raises(RtdlNotCaughtUp, match="P7 offsets snapshot"):
        write_caught_up(settings, random_run_id(), wait_s=0, progress=lambda line: None)


def test_the_cli_refuses_a_malformed_run_id() -> None:
    r = runner.invoke(app, ["caught-up", "--platform-run-id", "run-1"], env={"FP_ENV": "local_parity"})
    assert r.exit_code == 1 and "RUN_ID_INVALID" in r.output


def test_each_group_covers_only_the_topics_its_component_reads(settings: Settings, stores: None) -> None:
    run_id = random_run_id()
    stage(settings, run_id, position=9)
    arrivals = REG.topic(REG.mapping("EVENT_CLASS_MAP")["context_arrival_events"]["topic"]).name
    snapshot_key = REG.text("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN")
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id)
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    p7 = json.loads(store.get(prefix + snapshot_key))
    p7["offset_ranges"].append({"topic": arrivals, "partition": 0, "start_offset": 0, "end_offset": 1})
    put(settings, run_id, snapshot_key, p7)
    assert settings.db_dsn
    with connect(settings.db_dsn) as conn:
        for offset in (0, 1):
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref)"
                         " VALUES (%s, 'context_arrival_events', %s, 'h', 'ADMITTED', %s)",
                         (run_id, f"a-{offset}", json.dumps({"topic": arrivals, "partition": 0, "offset": offset})))
        for component in ("archive_writer", "ieg", "csfb"):  # OFP does not read arrivals: it has no position there
            conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES (%s, %s, '0', 1)",
                         (f"fp-{component}-{run_id}", arrivals))
        conn.commit()
    write_caught_up(settings, run_id, wait_s=0, progress=lambda line: None)
    snapshot = json.loads(store.get(prefix + "rtdl_core/offsets_snapshot.json"))
    on_arrivals = sorted(r["consumer_group_id"].split("-")[1] for r in snapshot["partitions"] if r["topic"] == arrivals)
    assert on_arrivals == ["archive_writer", "csfb", "ieg"]
