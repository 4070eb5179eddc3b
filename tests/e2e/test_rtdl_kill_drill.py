"""Kill drill of the RTDL core (issue 12 acceptance).

While WSP streams and while P8 waits for the catch-up, every rtdl_core worker is SIGKILLed at
random moments (only our own pack's children, by pid) and its pack restarts it. Afterwards P8 must
pass with no dead letters and with the state digest of an uninterrupted run of the same seed and gate on the same
substrate (state digests leave run ids out), and a
sampler that ran the whole time must never have seen a committed offset ahead of the durable
position of its group. Sizes: FP_DRILL_RTDL_KILLS kills per worker (default 3; `make drills`: 20)
and FP_DRILL_RTDL_GATE events per output (default 300; `make drills`: 5000, i.e. 20k events).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.components import consumer_group_id
from runtime.contracts.registry import Registry, load_registry
from runtime.db.postgres import Database
from runtime.settings import Settings
from tests.support.pack_killer import Killer

runner = CliRunner()
KILLS = int(os.environ.get("FP_DRILL_RTDL_KILLS", "3"))
GATE = int(os.environ.get("FP_DRILL_RTDL_GATE", "300"))
PACK = "rtdl_core"


def _ctx() -> tuple[Registry, Settings, Path]:
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    return registry, settings_for(state, registry), Path.cwd() / registry.text("LOCAL_RUNS_ROOT")


class OffsetSampler:
    """Samples, for every rtdl_core group and partition, the committed offset on the bus and then the
    durable position in PostgreSQL: committed - 1 must never exceed the position."""

    def __init__(self, settings: Settings, registry: Registry, run_id: str):
        self.settings, self.registry, self.run_id = settings, registry, run_id
        self.violations: list[str] = []
        self.samples = 0
        #: Set once any worker made a position durable: records are flowing, the killer may start.
        self.flowing = threading.Event()

    def run(self, stop: threading.Event) -> None:
        topics = sorted({self.registry.topic(s["topic"]).name for s in self.registry.mapping("EVENT_CLASS_MAP").values()})
        parts: list[TopicPartition] | None = None
        with Database(str(self.settings.db_dsn), name="drill sampler", max_size=1) as db:
            while not stop.is_set():
                for component in self.registry.mapping("PACKS")[PACK]:
                    group = consumer_group_id(self.registry, component, self.run_id)
                    committed = self._committed(group, topics, parts)
                    with db.connection() as conn:
                        rows = conn.execute("SELECT topic, partition, position FROM worker_positions WHERE consumer_group = %s",
                                            (group,)).fetchall()
                    durable = {(r[0], int(r[1])): int(r[2]) for r in rows}
                    if any(v >= 0 for v in durable.values()):
                        self.flowing.set()
                    for key, offset in committed.items():
                        if offset > 0 and offset - 1 > durable.get(key, -1):
                            self.violations.append(f"{group} {key}: committed {offset} but durable {durable.get(key)}")
                self.samples += 1
                stop.wait(0.3)

    def _committed(self, group: str, topics: list[str], parts: list[TopicPartition] | None) -> dict[tuple[str, int], int]:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            if parts is None:
                md = consumer.list_topics(timeout=5)
                parts = [TopicPartition(t, p) for t in topics for p in md.topics[t].partitions]
            return {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=5) if tp.offset >= 0}
        finally:
            consumer.close()


def _p8_digest(root: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((root / run_id / "evidence" / "rtdl_core" / "caught_up.json").read_text()))


@pytest.mark.slow
def test_sigkilled_rtdl_workers_lose_nothing_double_nothing_and_never_commit_ahead(spine_workdir: Path) -> None:
    # The drill first, on topics that hold only this run's records (a later run's consumers commit
    # past the earlier run's records without a durable write, by design, which the sampler would flag).
    up = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert up.exit_code == 0, up.output
    registry, settings, root = _ctx()
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    stop = threading.Event()
    sampler = OffsetSampler(settings, registry, run_id)
    killer = Killer(root, registry, run_id, sampler.flowing, pack=PACK, kills=KILLS)
    threads = [threading.Thread(target=killer.run, args=(stop,)), threading.Thread(target=sampler.run, args=(stop,))]
    for t in threads:
        t.start()
    try:
        result = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert result.exit_code == 0, result.output
    assert all(killer.kills[c] >= KILLS for c in killer.components), killer.kills
    assert sampler.samples > 0 and not sampler.violations, sampler.violations[:5]
    # The reference: an uninterrupted run of the same seed, gate and bus on the same substrate.
    again = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert again.exit_code == 0, again.output
    reference_run = (root / "ACTIVE_RUN_ID").read_text().strip()
    assert reference_run != run_id
    reference = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    assert reference.exit_code == 0, reference.output
    drilled, expected = _p8_digest(root, run_id), _p8_digest(root, reference_run)
    assert drilled["state_digest"] == expected["state_digest"]
    assert drilled["dead_letters"]["total"] == 0
