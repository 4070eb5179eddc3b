"""Replay: a run's OFP, IEG and CSFB state rebuilt from the archive equals the live state."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord
from runtime.db.migrate import prepare_database
from runtime.db.postgres import Database, with_credentials
from runtime.rtdl import store as progress
from runtime.rtdl.archive.handler import ArchiveHandler
from runtime.rtdl.digest import state_digest
from runtime.rtdl.rebuild import RebuildTargetNotEmpty, RebuildUnknownComponent, handlers_for, rebuild_from_archive
from runtime.settings import load_settings
from runtime.store.local import FolderStore
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore
from tests.runtime.rtdl.envelopes import engine_run, traffic
from tests.runtime.rtdl.feeding import PARTITIONS, feed_memory, handlers, partition_of, topic_of, with_run
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


@pytest.fixture(scope="module")
def live_run(live_db: Database, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, FolderStore]:
    """A live run on the in-memory bus: the engine's records (shuffled, one poison record) read by the
    ArchiveWriter and by OFP, IEG and CSFB workers."""
    run = random_run_id()
    broker = MemoryBroker()
    records = list(engine_run())
    random.Random(11).shuffle(records)
    poison = with_run(traffic(5), run)
    poison["payload"] = {**poison["payload"], "ts_utc": "2026-01-05T00:00:06Z"}  # disagrees with the envelope's time
    admin = broker.admin()
    classes = sorted({t.rsplit(".", 1)[1] for h in handlers(run) for t in h.input_topics()})
    for event_class in classes:
        admin.ensure_topic(topic_of(event_class), PARTITIONS, 24)
    outbound = [OutboundRecord(topic_of(c), e["event_id"], json.dumps(with_run(e, run), sort_keys=True).encode())
                for c, e in records]
    outbound.insert(100, OutboundRecord(topic_of("traffic_fraud"), "poison", json.dumps(poison).encode()))
    assert all(not isinstance(r, Exception) for r in broker.publisher().publish(outbound))
    assert all(partition_of(e) in range(PARTITIONS) for _, e in records)
    store = FolderStore(tmp_path_factory.mktemp("archive"))
    drain(broker, live_db, run, ArchiveHandler([topic_of(c) for c in classes], store, f"archive/{run}/", run))
    for handler in handlers(run):
        drain(broker, live_db, run, handler)
    return run, store


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
