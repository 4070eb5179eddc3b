"""IEG as a stream handler: every RTDL input class -> entities and edges, in the worker's transaction.

The batch is applied to a fresh in-memory `IegState` (the domain does all parsing and merging),
whose entities and edges are then written with one min/max upsert per table; the per-class
reconciliation counts, watermarks and late counts go to the operational tables beside them.
"""

from __future__ import annotations

from typing import Any

from runtime.rtdl import store as progress
from runtime.rtdl.events import ANCHOR_CLASSES, ARRIVAL_ENTITIES, ARRIVAL_EVENTS, TRAFFIC_CLASSES
from runtime.rtdl.handler import RtdlHandler, topics_for
from runtime.rtdl.ieg import store
from runtime.rtdl.ieg.domain import IegState
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

COMPONENT = store.COMPONENT
#: The classes IEG reads: traffic, arrivals, arrival entities and flow anchors.
INPUT_CLASSES = (*TRAFFIC_CLASSES, ARRIVAL_EVENTS, ARRIVAL_ENTITIES, *ANCHOR_CLASSES)


class IegHandler(RtdlHandler):
    """Merges the batch into the graph; emits nothing (DF queries the graph as of its event)."""

    component = COMPONENT
    on_decision_path = True

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Merge the batch (one upsert per table) and count what each record implied."""
        records = self.without_probes(conn, records)
        if not records:
            return []
        batch = IegState(track_adjacency=False)
        marks = progress.load_watermarks(conn, self.platform_run_id, COMPONENT, (progress.partition_of(r) for r in records))
        deltas: progress.CounterDeltas = {}
        for record in records:
            obs = batch.apply(record.envelope)
            topic, partition = progress.partition_of(record)
            progress.bump(deltas, topic, partition, f"records_in.{obs.event_class}")
            progress.bump(deltas, topic, partition, f"entity_writes.{obs.event_class}", len(obs.entities))
            progress.bump(deltas, topic, partition, f"edge_writes.{obs.event_class}", len(obs.edges))
            if marks.observe(topic, partition, obs.at[0]):
                progress.bump(deltas, topic, partition, "late_events")
        store.merge_entities(conn, self.platform_run_id, batch.entities)
        store.merge_edges(conn, self.platform_run_id, batch.edges)
        self.finish(conn, marks, deltas)
        return []


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The IEG handler of a run, reading the topics of its classes named in the registry."""
    return IegHandler(platform_run_id, topics_for(settings, INPUT_CLASSES))
