"""LS as a stream handler: label assertions published on FP_BUS_LABELS_EVENTS_V1 -> LS's writer boundary.

The label topic is LS's intake for label sources outside the platform's own jobs (a dispute feed,
an investigators' tool): each `label_assertion` record carries an assertion as LS stores it
(`LabelAssertion.row()`), its envelope event id is the assertion id. The record is read back
through the domain (id recomputed from its fields, source allowed, value allowed for the source,
observed not before effective) and appended with `append_assertions` (subject admitted in the run,
idempotent under the assertion id, a different assertion under a held id refused). Any refusal
(`LABEL_INVALID`, `LABEL_SOURCE_NOT_ALLOWED`, `LABEL_SUBJECT_UNKNOWN`, `LABEL_CONFLICT`) is
dead-lettered by the worker and nothing of it is written. LS publishes nothing.
"""

from __future__ import annotations

from typing import Any

from runtime.case.ls.domain import LabelAssertion, LabelInvalid, LabelSourceNotAllowed
from runtime.case.ls.store import append_assertions
from runtime.errors import PermanentError
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

#: Event class of a label assertion on the label topic.
LABEL_ASSERTION = "label_assertion"
_FIELDS = ("assertion_id", "platform_run_id", "event_id", "label_type", "source", "label_value", "observed_at_utc",
           "effective_at_utc")


def read_assertion(payload: Any) -> LabelAssertion:
    """A label_assertion payload as a checked LabelAssertion; LABEL_INVALID when it is malformed."""
    if not isinstance(payload, dict):
        raise LabelInvalid(f"label assertion is not an object: {type(payload).__name__}")
    missing = [f for f in _FIELDS if f not in payload]
    if missing:
        raise LabelInvalid(f"label assertion lacks {missing}")
    if not isinstance(payload.get("evidence", {}), dict):
        raise LabelInvalid("label assertion evidence is not an object")
    try:
        return LabelAssertion.from_row(payload)
    except (LabelInvalid, LabelSourceNotAllowed):
        raise
    except PermanentError as e:  # a malformed key field (run id, event id, label type)
        raise LabelInvalid(f"label assertion subject is malformed: {e.message}") from e


class LabelStoreHandler(StreamHandler):
    """Appends the label topic's assertions through LS's writer boundary."""

    component = "ls"

    def __init__(self, label_topic: str, platform_run_id: str):
        self.label_topic = label_topic
        self.platform_run_id = platform_run_id
        self.figures = {"ls_assertions": 0, "ls_appended": 0, "ls_ignored_other_class": 0}

    def input_topics(self) -> list[str]:
        """FP_BUS_LABELS_EVENTS_V1."""
        return [self.label_topic]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Append the batch's assertions (all or none: one refusal makes the worker redo them one by one)."""
        batch = []
        for record in records:
            if record.event_class != LABEL_ASSERTION:
                self.figures["ls_ignored_other_class"] += 1
                continue
            assertion = read_assertion(record.payload)
            if record.event_id != assertion.assertion_id:
                raise LabelInvalid(f"envelope event_id {record.event_id} is not the assertion id {assertion.assertion_id}")
            if assertion.subject.platform_run_id != self.platform_run_id:
                raise LabelInvalid(f"assertion {assertion.assertion_id} is about run {assertion.subject.platform_run_id}, "
                                   f"LS serves {self.platform_run_id}")
            batch.append(assertion)
        done = append_assertions(conn, batch)
        self.figures["ls_assertions"] += len(batch)
        self.figures["ls_appended"] += done.appended
        return []

    def counters(self) -> dict[str, int]:
        """This process's assertions read and appended, other records ignored (durable: `ls.store.label_summary`)."""
        return dict(self.figures)


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """LS's label topic consumer of `platform_run_id`."""
    return LabelStoreHandler(settings.registry.topic("FP_BUS_LABELS_EVENTS_V1").name, platform_run_id)
