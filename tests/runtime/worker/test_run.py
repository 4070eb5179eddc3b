"""`python -m runtime <worker> run`: assembling a worker from settings, its health targets, the
start-up back-off and its refusals (unknown run, database down, bus down), and SIGTERM -> exit 0.

Real servers: the Tansu broker, the moto S3 API, PostgreSQL with the runtime role."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.substrate.processes import free_port
from runtime.bus.port import OutboundRecord
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.ig.summaries import event_topics
from runtime.paths import REPO_ROOT
from runtime.settings import load_settings
from runtime.worker import run as worker_run
from runtime.worker.cli import archive_writer_app
from runtime.worker.handler import StreamHandler
from runtime.worker.run import ComponentNotBuilt, build_handler, component_dir, health_targets, run_component
from tests.support.events import envelope, random_run_id
from tests.support.kafka_bus import RealKafkaAdmin, RealKafkaPublisher

REG = load_registry("local_parity")
runner = CliRunner()


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str) -> list[str]:
    """Every registry topic on the broker; the archive writer's input topics."""
    admin = RealKafkaAdmin(kafka_bootstrap)
    for topic in REG.topics():
        admin.ensure_topic(topic.name, topic.partitions, topic.retention_hours)
    return event_topics(REG)


@pytest.fixture
def pinned_run(s3_client) -> str:  # type: ignore[no-untyped-def]
    """A run whose run.json exists under its evidence prefix (what P1 writes)."""
    run_id = random_run_id()
    bucket = REG.text("S3_EVIDENCE_BUCKET")
    for name in {bucket, REG.text("S3_ARCHIVE_BUCKET")}:
        with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
            s3_client.create_bucket(Bucket=name)
    key = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id) + REG.text("EVIDENCE_RUN_JSON_KEY")
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"{}")
    return run_id


def worker_env(moto_endpoint: str, dsn: str, bootstrap: str, runs_root: Path | None = None) -> dict[str, str]:
    env = {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": dsn, "FP_BUS": "kafka",
           "FP_KAFKA_BOOTSTRAP": bootstrap, "REQUIRED_PLATFORM_RUN_ID": ""}
    if runs_root is not None:
        env["FP_RUNS_ROOT"] = str(runs_root)
    return env


def publish_run(bootstrap: str, run_id: str, n: int) -> None:
    """`n` traffic envelopes of the run on the traffic topic."""
    topic = REG.topic(REG.mapping("EVENT_CLASS_MAP")["traffic_fraud"]["topic"]).name
    results = RealKafkaPublisher(bootstrap).publish(
        [OutboundRecord(topic, f"k{i}", json.dumps(envelope(run_id, i)).encode()) for i in range(n)])
    assert all(not isinstance(r, Exception) for r in results), results


# --- pieces --------------------------------------------------------------------------------------

def test_component_dirs_follow_seed_001() -> None:
    assert [component_dir(c) for c in ("archive_writer", "ieg", "ofp", "csfb")] == [
        "archive_writer", "identity_entity_graph", "online_feature_plane", "context_store_flow_binding"]


def test_only_the_stores_df_reads_and_df_itself_ask_the_bus_promptly() -> None:
    prompt = set()
    for component, (module_name, _) in worker_run.WORKER_COMPONENTS.items():
        module = importlib.import_module(module_name)
        handlers = [c for c in vars(module).values()
                    if isinstance(c, type) and issubclass(c, StreamHandler) and c.__module__ == module_name]
        assert len(handlers) == 1, module_name
        if handlers[0].on_decision_path:
            prompt.add(component)
    assert prompt == {"ofp", "ieg", "csfb", "df"}


def test_health_goes_to_the_evidence_prefix_and_to_the_run_folder_when_the_runs_root_is_given(
        moto_endpoint: str, tmp_path: Path) -> None:
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    run_id = random_run_id()
    only_bucket = health_targets(settings, "ieg", run_id, {})
    assert [key for _, key in only_bucket] == [f"evidence/runs/{run_id}/identity_entity_graph/health/last_health.json"]
    both = health_targets(settings, "ieg", run_id, {"FP_RUNS_ROOT": str(tmp_path)})
    assert both[1][0].location == str(tmp_path / run_id) and both[1][1] == "identity_entity_graph/health/last_health.json"


def test_a_component_whose_handler_module_is_absent_fails_closed_naming_it(
        monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    monkeypatch.setitem(worker_run.WORKER_COMPONENTS, "ofp", ("runtime.rtdl.ofp.handler_not_here", "online_feature_plane"))
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    with pytest.raises(ComponentNotBuilt, match=r"runtime\.rtdl\.ofp\.handler_not_here"):
        build_handler("ofp", settings, random_run_id())


def test_the_archive_writers_build_reads_every_admitted_topic_into_the_run_prefix(moto_endpoint: str) -> None:
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    run_id = random_run_id()
    handler = build_handler("archive_writer", settings, run_id)
    assert handler.input_topics() == event_topics(REG)
    assert handler.prefix == f"archive/{run_id}/"  # type: ignore[attr-defined]


# --- bad input -----------------------------------------------------------------------------------

def test_a_malformed_run_id_is_refused_before_any_connection() -> None:
    r = runner.invoke(archive_writer_app, ["run", "--platform-run-id", "run-1"], env={"FP_ENV": "local_parity"})
    assert r.exit_code == 1 and "RUN_UNKNOWN" in r.output


def test_a_run_p1_never_pinned_is_refused(moto_endpoint: str, runtime_dsn: str, kafka_bootstrap: str, s3_client) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=REG.text("S3_EVIDENCE_BUCKET"))
    r = runner.invoke(archive_writer_app, ["run", "--platform-run-id", random_run_id(), "--startup-timeout", "0"],
                      env=worker_env(moto_endpoint, runtime_dsn, kafka_bootstrap))
    assert r.exit_code == 1 and "RUN_UNKNOWN" in r.output and "run.json" in r.output


def test_a_database_down_at_start_is_retried_with_progress_then_exits_1(
        moto_endpoint: str, kafka_bootstrap: str, pinned_run: str) -> None:
    dead_dsn = f"postgresql://fp:fp@127.0.0.1:{free_port()}/fp?connect_timeout=1"
    started = time.monotonic()
    r = runner.invoke(archive_writer_app, ["run", "--platform-run-id", pinned_run, "--startup-timeout", "2"],
                      env=worker_env(moto_endpoint, dead_dsn, kafka_bootstrap))
    assert r.exit_code == 1 and "DB_UNAVAILABLE" in r.output
    assert "start-up attempt 1 failed" in r.output and time.monotonic() - started >= 2


def test_a_bus_down_at_start_is_retried_with_progress_then_exits_1(
        moto_endpoint: str, runtime_dsn: str, pinned_run: str) -> None:
    r = runner.invoke(archive_writer_app, ["run", "--platform-run-id", pinned_run, "--startup-timeout", "1"],
                      env=worker_env(moto_endpoint, runtime_dsn, f"127.0.0.1:{free_port()}"))
    assert r.exit_code == 1 and "BUS_UNAVAILABLE" in r.output and "start-up attempt 1 failed" in r.output


# --- running -------------------------------------------------------------------------------------

def test_the_archive_writer_consumes_the_runs_records_and_writes_health_to_both_targets(
        moto_endpoint: str, runtime_dsn: str, kafka_bootstrap: str, topics: list[str], pinned_run: str,
        tmp_path: Path, s3_client) -> None:  # type: ignore[no-untyped-def]
    publish_run(kafka_bootstrap, pinned_run, 12)
    env = worker_env(moto_endpoint, runtime_dsn, kafka_bootstrap, tmp_path)
    settings = load_settings(env)
    stop = threading.Event()
    result: dict[str, dict[str, int]] = {}
    worker = threading.Thread(target=lambda: result.update(counters=run_component(
        settings, "archive_writer", pinned_run, environ=env, progress=lambda line: None, stop=stop)))
    collector_off: list[bool] = []  # the daemon's loop paces the cycle collector by batches (runtime/worker/garbage.py)
    worker.start()
    try:
        deadline = time.monotonic() + 90
        while _archived(runtime_dsn, pinned_run) < 12 and time.monotonic() < deadline:
            collector_off.append(not gc.isenabled())
            time.sleep(0.3)
    finally:
        stop.set()
        worker.join(timeout=60)
    counters = result["counters"]
    assert counters["applied"] == 12 and counters["dead_lettered"] == 0
    assert any(collector_off) and gc.isenabled() and gc.get_freeze_count() == 0
    local = json.loads((tmp_path / pinned_run / "archive_writer/health/last_health.json").read_text())
    assert local["health_state"] == "GREEN" and local["consumer_group"] == f"fp-archive_writer-{pinned_run}"
    key = f"evidence/runs/{pinned_run}/archive_writer/health/last_health.json"
    remote = json.loads(s3_client.get_object(Bucket=REG.text("S3_EVIDENCE_BUCKET"), Key=key)["Body"].read())
    assert remote["counters"]["archive_records"] == 12
    assert _archived(runtime_dsn, pinned_run) == 12


def _archived(dsn: str, run_id: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(record_count), 0) FROM rtdl_archive_batches WHERE platform_run_id = %s",
                           (run_id,)).fetchone()
    return int(row[0]) if row else 0


def test_sigterm_finishes_the_batch_commits_and_exits_0(
        moto_endpoint: str, runtime_dsn: str, kafka_bootstrap: str, topics: list[str], pinned_run: str,
        tmp_path: Path) -> None:
    publish_run(kafka_bootstrap, pinned_run, 5)
    env = {**os.environ, **worker_env(moto_endpoint, runtime_dsn, kafka_bootstrap, tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "runtime", "archive_writer", "run", "--platform-run-id", pinned_run],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    health = tmp_path / pinned_run / "archive_writer/health/last_health.json"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if health.is_file() and json.loads(health.read_text())["counters"].get("applied", 0) >= 5:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "archive_writer stopped: applied 5" in err
    with connect(runtime_dsn) as conn:
        rows = conn.execute("SELECT count(*) FROM worker_positions WHERE consumer_group = %s",
                            (f"fp-archive_writer-{pinned_run}",)).fetchone()
    assert rows is not None and int(rows[0]) >= 1


def test_a_stop_during_the_start_up_back_off_returns_without_running(moto_endpoint: str, pinned_run: str) -> None:
    env = worker_env(moto_endpoint, f"postgresql://fp:fp@127.0.0.1:{free_port()}/fp?connect_timeout=1",
                     f"127.0.0.1:{free_port()}")
    stop = threading.Event()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        stop.set()

    assert run_component(load_settings(env), "archive_writer", pinned_run, environ=env, progress=progress, stop=stop,
                         startup_timeout_s=60) == {}
    assert len(lines) == 1
