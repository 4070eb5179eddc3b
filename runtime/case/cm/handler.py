"""CM as a stream handler: case triggers (FP_BUS_CASE_TRIGGERS_V1) -> the append-only case timelines.

Each `case_trigger` record is read back with `read_trigger` (trigger and case ids recomputed from
its own fields; the envelope's event id must be the trigger id, the run the one CM serves) and
must be a trigger CaseTrigger published - its id and content as held in `case_triggers`, which
CaseTrigger writes in the transaction of the outbox row - else it is `CASE_TRIGGER_UNKNOWN` (a
trigger for a decision CaseTrigger never triggered: forged, or another writer on the topic). It is
then appended through CM's writer boundary (`runtime/case/cm/store.py` `append_triggers`): the first
trigger of a subject opens its case, every trigger attaches its evidence by reference, a replayed
trigger appends nothing. A refused trigger (`CASE_TRIGGER_INVALID`, or a timeline refusal such
as `CASE_TIMELINE_CONFLICT`) is dead-lettered by the worker and nothing of it is written. CM
publishes nothing: its output is the timeline.
"""

from __future__ import annotations

from typing import Any

from runtime.case.cm.store import append_triggers
from runtime.case.trigger.domain import CaseTrigger, CaseTriggerInvalid, read_trigger
from runtime.case.trigger.handler import CASE_TRIGGER
from runtime.case.trigger.store import published_triggers
from runtime.errors import PermanentError
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord


class TriggerUnknown(PermanentError):
    """A trigger on the case topic that CaseTrigger did not publish (no such trigger id, or other content)."""

    code = "CASE_TRIGGER_UNKNOWN"
    next_step = ("the trigger is dead-lettered and no case is touched; only CaseTrigger publishes to the case topic "
                 "(FP_BUS_CASE_TRIGGERS_V1): find the other writer, or the decision it claims to come from")


class CaseManagementHandler(StreamHandler):
    """Opens and joins cases from triggers; the timeline is the only thing it writes."""

    component = "cm"

    def __init__(self, case_topic: str, platform_run_id: str):
        self.case_topic = case_topic
        self.platform_run_id = platform_run_id
        self.figures = {"cm_triggers": 0, "cm_events_appended": 0, "cm_ignored_other_class": 0}

    def input_topics(self) -> list[str]:
        """FP_BUS_CASE_TRIGGERS_V1."""
        return [self.case_topic]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Append the batch's triggers to their cases' timelines; publishes nothing."""
        batch: list[CaseTrigger] = []
        ignored = 0
        for record in records:
            if record.event_class != CASE_TRIGGER:
                ignored += 1
                continue
            batch.append(self.read(record))
        published = published_triggers(conn, self.platform_run_id, [t.trigger_id for t in batch])
        for trigger in batch:
            held = published.get(trigger.trigger_id)
            if held is None:
                raise TriggerUnknown(f"trigger {trigger.trigger_id} (decision {trigger.decision_id}) was not published "
                                     f"by CaseTrigger for run {self.platform_run_id}")
            if held != trigger.payload():
                raise TriggerUnknown(f"trigger {trigger.trigger_id} differs from the one CaseTrigger published")
        appended = append_triggers(conn, self.platform_run_id, batch)
        self.figures["cm_triggers"] += len(batch)
        self.figures["cm_events_appended"] += len(appended)
        self.figures["cm_ignored_other_class"] += ignored
        return []

    def read(self, record: InputRecord) -> CaseTrigger:
        """The trigger of one record, or CASE_TRIGGER_INVALID."""
        trigger = read_trigger(record.payload)
        if record.event_id != trigger.trigger_id:
            raise CaseTriggerInvalid(f"envelope event_id {record.event_id} is not the trigger id {trigger.trigger_id}")
        if trigger.subject.platform_run_id != self.platform_run_id:
            raise CaseTriggerInvalid(f"trigger {trigger.trigger_id} is for run {trigger.subject.platform_run_id}, "
                                     f"CM serves {self.platform_run_id}")
        return trigger

    def counters(self) -> dict[str, int]:
        """This process's triggers read, timeline events appended, other records ignored (durable figures:
        `runtime.case.cm.store.case_summary`)."""
        return dict(self.figures)


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """CM of `platform_run_id`, reading the registry's case topic."""
    return CaseManagementHandler(settings.registry.topic("FP_BUS_CASE_TRIGGERS_V1").name, platform_run_id)
