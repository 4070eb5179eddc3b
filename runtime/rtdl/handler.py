"""What the three RTDL state handlers (OFP, IEG, CSFB) share: their run, topics and progress bookkeeping.

Each handler resolves its topics from the registry's EVENT_CLASS_MAP (`topics_for`), and ends every
batch the same way (`finish`): the batch's watermarks and counter increments go to the operational
tables in the worker's transaction, and this process's counts (for health) are added up.
"""

from __future__ import annotations

from typing import Any

from runtime.contracts.probes import is_ingest_probe
from runtime.rtdl import store as progress
from runtime.rtdl.events import Watermarks
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord


def topics_for(settings: Settings, event_classes: tuple[str, ...]) -> list[str]:
    """Topic names of `event_classes` (in class order, each once)."""
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")
    names = [settings.registry.topic(class_map[c]["topic"]).name for c in event_classes]
    return list(dict.fromkeys(names))


class RtdlHandler(StreamHandler):
    """A run's RTDL state handler on its topics; subclasses set `component` and write `apply`."""

    def __init__(self, platform_run_id: str, topics: list[str]):
        self.platform_run_id = platform_run_id
        self.topics = list(topics)
        self._counts: dict[str, int] = {}

    def input_topics(self) -> list[str]:
        """The topics this handler was built with (from the registry in `build`)."""
        return self.topics

    def without_probes(self, conn: Any, records: list[InputRecord]) -> list[InputRecord]:
        """The batch without P4's ingest probe (runtime/contracts/probes.py): it is counted per
        partition as `ingest_probes_skipped`, never applied, so state is the scenario's alone and
        equal across runs and buses."""
        kept = [r for r in records if not is_ingest_probe(r.envelope)]
        if len(kept) < len(records):
            deltas: progress.CounterDeltas = {}
            for record in records:
                if is_ingest_probe(record.envelope):
                    progress.bump(deltas, *progress.partition_of(record), "ingest_probes_skipped")
            progress.add_counters(conn, self.platform_run_id, self.component, deltas)
            self._counts["ingest_probes_skipped"] = self._counts.get("ingest_probes_skipped", 0) + len(records) - len(kept)
        return kept

    def finish(self, conn: Any, marks: Watermarks, deltas: progress.CounterDeltas) -> None:
        """Persist the batch's watermarks and counters; count them for this process (`<name>.<class>`
        counters are added up by name)."""
        progress.save_watermarks(conn, self.platform_run_id, self.component, marks)
        progress.add_counters(conn, self.platform_run_id, self.component, deltas)
        for (_, _, name), value in deltas.items():
            key = name.split(".", 1)[0]
            self._counts[key] = self._counts.get(key, 0) + value

    def counters(self) -> dict[str, int]:
        """What this process applied (durable totals: `runtime.rtdl.store.counter_totals`)."""
        return dict(sorted(self._counts.items()))
