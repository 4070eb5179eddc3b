"""CSFB as a stream handler: flow anchors and arrivals -> the FlowBinding index and session context;
traffic -> join readiness (hits, misses, late joins), all in the worker's transaction.

The batch's slice of state is loaded into a domain `CsfbState`, the domain applies the records in
batch order, and the store writes back what changed; counters are the domain's, attributed to the
partition of the record that moved them.
"""

from __future__ import annotations

from typing import Any

from runtime.rtdl import store as progress
from runtime.rtdl.csfb import store
from runtime.rtdl.csfb.domain import arrival_of, binding_of
from runtime.rtdl.events import ANCHOR_CLASSES, ARRIVAL_EVENTS, TRAFFIC_CLASSES, Admitted, admitted
from runtime.rtdl.handler import RtdlHandler, topics_for
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

COMPONENT = store.COMPONENT
#: The classes CSFB reads: flow anchors and arrivals (context), traffic (join readiness).
INPUT_CLASSES = (*ANCHOR_CLASSES, ARRIVAL_EVENTS, *TRAFFIC_CLASSES)


class CsfbHandler(RtdlHandler):
    """Keeps the context and judges joins; emits nothing (DF asks for the join frame)."""

    component = COMPONENT
    on_decision_path = True

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Load the state the batch touches, apply it with the domain, write back what changed."""
        records = self.without_probes(conn, records)
        if not records:
            return []
        flows: set[str] = set()
        sessions: set[str] = set()
        traffic_ids: set[str] = set()
        events: list[Admitted] = []
        for record in records:  # parse everything first: a bad record is refused before any SQL
            event = admitted(record.envelope, expect=INPUT_CLASSES)
            events.append(event)
            if event.event_class in TRAFFIC_CLASSES:
                flows.add(event.text("flow_id"))
                sessions.add(event.text("session_id"))
                traffic_ids.add(event.event_id)
            elif event.event_class == ARRIVAL_EVENTS:
                sessions.add(arrival_of(event).session_id)
            else:
                binding = binding_of(event)
                flows.add(binding.flow_id)
                sessions.add(binding.session_id)
        state, loaded = store.load(conn, self.platform_run_id, flows, sessions, traffic_ids)
        marks = progress.load_watermarks(conn, self.platform_run_id, COMPONENT, (progress.partition_of(r) for r in records))
        deltas: progress.CounterDeltas = {}
        for record, event in zip(records, events, strict=True):
            before = dict(state.counters.__dict__)
            state.apply_event(event)
            topic, partition = progress.partition_of(record)
            for name, value in state.counters.__dict__.items():
                if value != before[name]:
                    progress.bump(deltas, topic, partition, name, value - before[name])
            if marks.observe(topic, partition, event.ts_micros):
                progress.bump(deltas, topic, partition, "late_events")
        store.save(conn, self.platform_run_id, state, loaded)
        self.finish(conn, marks, deltas)
        return []


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The CSFB handler of a run, reading the topics of its classes named in the registry."""
    return CsfbHandler(platform_run_id, topics_for(settings, INPUT_CLASSES))
