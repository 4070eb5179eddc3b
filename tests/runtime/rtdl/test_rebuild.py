"""Replay: a run's OFP, IEG and CSFB state rebuilt from the archive equals the live state."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord
from runtime.db.migrate import prepare_database
from runtime.db.postgres import Database, with_credentials
from runtime.rtdl import store as progress
from runtime.rtdl.archive.handler import ArchiveHandler
from runtime.rtdl.cli import app
from runtime.rtdl.digest import state_digest
from runtime.rtdl.rebuild import RebuildTargetNotEmpty, RebuildUnknownComponent, handlers_for, rebuild_from_archive
from runtime.settings import load_settings
from runtime.store.local import FolderStore
from runtime.store.port import ObjectStore
from runtime.store.s3 import S3Store, s3_client
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore
from tests.runtime.rtdl import feeding
from tests.runtime.rtdl.envelopes import engine_run, traffic
from tests.runtime.rtdl.feeding import PARTITIONS, feed_memory, handlers, with_run
from tests.support.events import random_run_id


@pytest.fixture(scope="module")
def live_db(runtime_dsn: str) -> Iterator[Database]:
    database = Database(runtime_dsn, name="live", max_size=2)
    yield database
    database.close()


@pytest.fixture
def fresh_db(new_database: Callable[[], str], runtime_role: tuple[str, str]) -> Iterator[Database]:
    """An empty, migrated database of its own, reached as the runtime role."""
    owner = new_database()
    prepare_database(owner, *runtime_role)
    database = Database(with_credentials(owner, *runtime_role), name="rebuild target", max_size=2)
    yield database
    database.close()


def drain(broker: MemoryBroker, db: Database, run: str, handler: StreamHandler) -> None:
    """Run one component's worker over everything on its topics, as the daemon would."""
    consumer = broker.consumer(handler.input_topics(), f"fp-{handler.component}-{run}", run)
    worker = StreamWorker(handler, consumer, None, db.transaction, WorkerStore(f"fp-{handler.component}-{run}",
                          handler.component, run), config=WorkerConfig(batch_size=200, poll_timeout_s=0.01), sleep=lambda s: None)
    worker.run(threading.Event(), idle_exit_after=2)
    consumer.close()


def run_live(db: Database, store: ObjectStore, *, registry_topics: bool = False) -> str:
    """A live run on the in-memory bus: the engine's records (shuffled, one poison record) read by the
    ArchiveWriter (into `store`) and by OFP, IEG and CSFB workers (into `db`); returns the run id.
    With `registry_topics`, on the registry's topic names (what the CLI's handlers read)."""
    run = random_run_id()
    settings = load_settings({})
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")

    def topic_of(event_class: str) -> str:
        return settings.registry.topic(class_map[event_class]["topic"]).name if registry_topics else feeding.topic_of(event_class)

    def handlers(run: str) -> list[StreamHandler]:
        return handlers_for(settings, run, ["ofp", "ieg", "csfb"]) if registry_topics else feeding.handlers(run)

    broker = MemoryBroker()
    records = list(engine_run())
    random.Random(11).shuffle(records)
    poison = with_run(traffic(5), run)
    poison["payload"] = {**poison["payload"], "ts_utc": "2026-01-05T00:00:06Z"}  # disagrees with the envelope's time
    admin = broker.admin()
    classes = sorted(class_map)
    for event_class in classes:
        admin.ensure_topic(topic_of(event_class), PARTITIONS, 24)
    outbound = [OutboundRecord(topic_of(c), e["event_id"], json.dumps(with_run(e, run), sort_keys=True).encode())
                for c, e in records]
    outbound.insert(100, OutboundRecord(topic_of("traffic_fraud"), "poison", json.dumps(poison).encode()))
    assert all(not isinstance(r, Exception) for r in broker.publisher().publish(outbound))
    drain(broker, db, run, ArchiveHandler([topic_of(c) for c in classes], store, f"archive/{run}/", run))
    for handler in handlers(run):
        drain(broker, db, run, handler)
    return run


@pytest.fixture(scope="module")
def live_run(live_db: Database, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, FolderStore]:
    """A live run whose archive is a local folder."""
    store = FolderStore(tmp_path_factory.mktemp("archive"))
    return run_live(live_db, store), store


def test_a_rebuild_into_a_fresh_database_gives_the_live_state_digest(live_db, fresh_db, live_run):
    run, store = live_run
    with live_db.connection() as conn:
        live = progress.state_digest(conn, run)
        dead = conn.execute("SELECT component, count(*) FROM worker_dead_letters WHERE platform_run_id = %s GROUP BY 1"
                            " ORDER BY 1", (run,)).fetchall()
    assert live == state_digest(*feed_memory(list(engine_run())))
    assert dead == [("csfb", 1), ("ieg", 1), ("ofp", 1)]
    result = rebuild_from_archive(fresh_db, store, run, handlers(run), index_db=live_db, batch_size=300)
    assert result.state_digest == live
    assert result.records_read == len(engine_run()) + 1 and result.archive_objects > 0
    assert result.refused == {"ofp": 1, "ieg": 1, "csfb": 1}
    assert result.applied["ieg"] == len(engine_run())
    with fresh_db.connection() as conn:
        assert progress.counter_totals(conn, run, "ofp")["events_applied"] == 1091


def test_a_rebuild_refuses_to_write_over_state_the_run_already_has(live_db, live_run):
    run, store = live_run
    with pytest.raises(RebuildTargetNotEmpty, match=run) as refused:
        rebuild_from_archive(live_db, store, run, handlers(run))
    assert "fresh" in refused.value.next_step


def test_a_rebuild_of_one_component_gives_that_section_only(live_db, fresh_db, live_run):
    run, store = live_run
    ofp = [h for h in handlers(run) if h.component == "ofp"]
    result = rebuild_from_archive(fresh_db, store, run, ofp, index_db=live_db)
    with live_db.connection() as conn:
        assert result.state_digest == progress.state_digest(conn, run, ["ofp"])
    assert set(result.applied) == {"ofp"} and result.applied["ofp"] == 1091


def test_handlers_for_builds_the_named_components_from_the_registry(tmp_path: Path):
    settings = load_settings({})
    assert [h.component for h in handlers_for(settings, "platform_20260105T000000Z", ["ofp", "ieg", "csfb"])] == \
        ["ofp", "ieg", "csfb"]
    with pytest.raises(RebuildUnknownComponent):
        handlers_for(settings, "platform_20260105T000000Z", ["dl"])


def test_the_rebuild_command_replays_the_archive_bucket_into_a_fresh_database(live_db, owner_dsn, runtime_role,
                                                                             moto_endpoint, new_database):
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    client = s3_client(moto_endpoint, settings.aws_region)
    bucket = settings.registry.text("S3_ARCHIVE_BUCKET")
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    run = run_live(live_db, S3Store(bucket, client=client), registry_topics=True)
    with live_db.connection() as conn:
        live = progress.state_digest(conn, run)
    target = new_database()
    prepare_database(target, *runtime_role)
    env = {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint,
           "FP_DB_DSN": with_credentials(owner_dsn, *runtime_role), "REQUIRED_PLATFORM_RUN_ID": run}
    result = CliRunner().invoke(app, ["rebuild", "--from-archive", "--target-dsn", with_credentials(target, *runtime_role)],
                                env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["state_digest"] == live and document["refused"] == {"csfb": 1, "ieg": 1, "ofp": 1}
    again = CliRunner().invoke(app, ["rebuild", "--from-archive"], env=env)  # into the live database: refused
    assert again.exit_code == 1 and "RTDL_REBUILD_TARGET_NOT_EMPTY" in again.output
