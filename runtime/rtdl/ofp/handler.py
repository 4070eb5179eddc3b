"""OFP as a stream handler: traffic records -> event facts, watermarks and counters, in the worker's transaction.

All logic is the domain's (`facts_of`, `Watermarks`); this module only orders it around the SQL of
runtime/rtdl/ofp/store.py and runtime/rtdl/store.py. A payload that breaks its contract raises
`RtdlPayloadInvalid` before anything is written, and the worker dead-letters it.
"""

from __future__ import annotations

from typing import Any

from runtime.rtdl import store as progress
from runtime.rtdl.events import ENTITY_KINDS, TRAFFIC_CLASSES, admitted
from runtime.rtdl.handler import RtdlHandler, topics_for
from runtime.rtdl.ofp import store
from runtime.rtdl.ofp.domain import DEFAULT_GRACE_MICROS, EventFact, facts_of
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

COMPONENT = "ofp"
#: Evict facts past the horizon each time the newest event time has moved on this much.
EVICT_EVERY_MICROS = 3600 * 1_000_000


class OfpHandler(RtdlHandler):
    """Writes one fact per (entity, traffic event); emits nothing (DF reads features point-in-time)."""

    component = COMPONENT
    on_decision_path = True

    def __init__(self, platform_run_id: str, topics: list[str], *, grace_micros: int = DEFAULT_GRACE_MICROS):
        super().__init__(platform_run_id, topics)
        self.grace_micros = grace_micros
        self._evicted_at: int | None = None

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Insert the batch's facts in one statement; count applied, duplicate and late events per partition."""
        records = self.without_probes(conn, records)
        if not records:
            return []
        events = [(record, admitted(record.envelope, expect=TRAFFIC_CLASSES)) for record in records]
        facts: list[EventFact] = [fact for _, event in events for fact in facts_of(event)]
        new_events = store.insert_facts(conn, self.platform_run_id, facts)
        marks = progress.load_watermarks(conn, self.platform_run_id, COMPONENT, (progress.partition_of(r) for r in records))
        deltas: progress.CounterDeltas = {}
        counted: set[str] = set()
        for record, event in events:
            topic, partition = progress.partition_of(record)
            if event.event_id in new_events and event.event_id not in counted:
                counted.add(event.event_id)
                progress.bump(deltas, topic, partition, "events_applied")
                progress.bump(deltas, topic, partition, "facts_written", len(ENTITY_KINDS))
                if marks.observe(topic, partition, event.ts_micros):
                    progress.bump(deltas, topic, partition, "late_events")
            else:
                progress.bump(deltas, topic, partition, "duplicates")
        newest = max((event.ts_micros for _, event in events), default=None)
        if newest is not None and (self._evicted_at is None or newest - self._evicted_at >= EVICT_EVERY_MICROS):
            progress.bump(deltas, events[0][0].eb_ref.topic, str(events[0][0].eb_ref.partition), "facts_evicted",
                  store.evict(conn, self.platform_run_id, self.grace_micros))
            self._evicted_at = newest
        self.finish(conn, marks, deltas)
        return []


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The OFP handler of a run, reading both traffic topics named in the registry."""
    return OfpHandler(platform_run_id, topics_for(settings, TRAFFIC_CLASSES))

