"""What the RTDL drills share: the committed-offset sampler, the run's records read back from the
bus, and the pure-domain pass over them that live state must equal.

The sampler proves "no committed offset ahead of the durable position" while workers are killed
or their dependencies are down; the read-back + pure pass is the reference state of a run: the
in-memory domains (runtime/rtdl/*/domain.py) fed every record of the run that sits on the bus,
with no worker, batch, restart or outage in between.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.bus import factory
from runtime.components import consumer_group_id
from runtime.contracts.probes import is_ingest_probe
from runtime.contracts.registry import Registry, load_registry
from runtime.db.postgres import Database
from runtime.rtdl import store as rtdl_store
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.csfb.handler import INPUT_CLASSES as CSFB_CLASSES
from runtime.rtdl.digest import rows_digest
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ieg.handler import INPUT_CLASSES as IEG_CLASSES
from runtime.rtdl.ofp.domain import OfpState
from runtime.settings import Settings
from runtime.worker.records import InputRecord, decode
from tests.support.drills import OffsetSampler

PACK = "rtdl_core"


def drill_context() -> tuple[Registry, Settings, Path]:
    """Registry, runtime settings of the substrate that is up, and the runs root (cwd-relative)."""
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    return registry, settings_for(state, registry), Path.cwd() / registry.text("LOCAL_RUNS_ROOT")


def rtdl_sampler(settings: Settings, registry: Registry, run_id: str) -> OffsetSampler:
    """The drills' offset sampler over every rtdl_core group of the run and the admitted topics."""
    topics = sorted({registry.topic(s["topic"]).name for s in registry.mapping("EVENT_CLASS_MAP").values()})
    return OffsetSampler(settings, {consumer_group_id(registry, c, run_id): topics for c in registry.mapping("PACKS")[PACK]})


def read_back(settings: Settings, registry: Registry, run_id: str, *, idle_polls: int = 3) -> list[InputRecord]:
    """Every record of the run on the RTDL input topics, read from the beginning by a fresh group
    (the run-scoped consumer the workers use), P4's ingest probe left out as the handlers do."""
    classes = dict.fromkeys([*TRAFFIC_CLASSES, *IEG_CLASSES, *CSFB_CLASSES])
    class_map = registry.mapping("EVENT_CLASS_MAP")
    topics = list(dict.fromkeys(registry.topic(class_map[c]["topic"]).name for c in classes))
    consumer = factory.consumer(settings, topics, f"fp-drill-readback-{uuid.uuid4().hex[:8]}", run_id)
    out: list[InputRecord] = []
    try:
        idle = 0
        while idle < idle_polls:
            batch = consumer.poll(1000, 2.0)
            idle = 0 if batch else idle + 1
            out.extend(decode(r) for r in batch)
    finally:
        consumer.close()
    return [r for r in out if not is_ingest_probe(r.envelope)]


def pure_states(records: list[InputRecord]) -> tuple[OfpState, IegState, CsfbState]:
    """The in-memory domains fed `records` (one record once each, any order gives the same state)."""
    ofp, ieg, csfb = OfpState(), IegState(), CsfbState()
    for record in records:
        event_class = record.event_class
        if event_class in TRAFFIC_CLASSES:
            ofp.apply(record.envelope, record.eb_ref.topic, record.eb_ref.partition)
        if event_class in IEG_CLASSES:
            ieg.apply(record.envelope)
        if event_class in CSFB_CLASSES:
            csfb.apply(record.envelope)
    return ofp, ieg, csfb


def section_differences(live: list[dict[str, Any]], memory: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows only the live store has, rows only the pure pass has (as canonical rows)."""
    from runtime.contracts.canonical import canonical_json

    live_keys = Counter(canonical_json(r) for r in live)
    memory_keys = Counter(canonical_json(r) for r in memory)
    only_live = [r for r in live if live_keys[canonical_json(r)] > memory_keys[canonical_json(r)]]
    only_memory = [r for r in memory if memory_keys[canonical_json(r)] > live_keys[canonical_json(r)]]
    return only_live, only_memory


def live_against_pure(settings: Settings, registry: Registry, run_id: str) -> dict[str, Any]:
    """Per digest section: live rows vs the pure pass over the run's records read back from the
    bus (counts of rows only on either side and a few of them), and both digests."""
    records = read_back(settings, registry, run_id)
    ofp, ieg, csfb = pure_states(records)
    memory = {"ofp": list(ofp.canonical_rows()), "ieg": list(ieg.canonical_rows()), "csfb": list(csfb.canonical_rows())}
    with Database(str(settings.db_dsn), name="drill live state", max_size=1) as db, db.connection() as conn:
        live = {s: rtdl_store.section_rows(conn, run_id, s) for s in memory}
    report: dict[str, Any] = {"records": len(records), "by_class": dict(Counter(r.event_class for r in records)),
                              "live_digest": rows_digest(live), "pure_digest": rows_digest(memory), "sections": {}}
    for section in memory:
        only_live, only_memory = section_differences(live[section], memory[section])
        report["sections"][section] = {"live_rows": len(live[section]), "pure_rows": len(memory[section]),
                                       "only_live": len(only_live), "only_pure": len(only_memory),
                                       "examples_live": only_live[:3], "examples_pure": only_memory[:3]}
    return report
