"""Feeding envelopes through the RTDL handlers straight into Postgres, and the in-memory twin.

The handlers' `apply` is called the way the worker calls it (one transaction per batch, records
carrying eb_refs), without a bus, so store tests can shuffle, redeliver and compare with the pure
domain on exactly the same records.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.bus.port import EbRef
from runtime.db.postgres import Database
from runtime.rtdl import store as progress
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.csfb.handler import INPUT_CLASSES as CSFB_CLASSES
from runtime.rtdl.csfb.handler import CsfbHandler
from runtime.rtdl.digest import rows_digest
from runtime.rtdl.events import TRAFFIC_CLASSES, parse_ts_micros
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ieg.handler import INPUT_CLASSES as IEG_CLASSES
from runtime.rtdl.ieg.handler import IegHandler
from runtime.rtdl.ofp.domain import OfpState
from runtime.rtdl.ofp.handler import OfpHandler
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord

PARTITIONS = 2


def topic_of(event_class: str) -> str:
    """The test topic of an event class (one per class, like the registry's map)."""
    return f"rtdl.test.{event_class}"


def partition_of(envelope: dict[str, Any]) -> int:
    """A stable partition per event (as a keyed producer would give)."""
    return int(envelope["event_id"][:2], 16) % PARTITIONS


def with_run(envelope: dict[str, Any], platform_run_id: str) -> dict[str, Any]:
    """The envelope re-addressed to another run (the event id does not depend on the run)."""
    return {**envelope, "platform_run_id": platform_run_id}


def handlers(platform_run_id: str) -> list[StreamHandler]:
    """The three RTDL handlers of a run, on the test topics."""
    return [OfpHandler(platform_run_id, [topic_of(c) for c in TRAFFIC_CLASSES]),
            IegHandler(platform_run_id, [topic_of(c) for c in IEG_CLASSES]),
            CsfbHandler(platform_run_id, [topic_of(c) for c in CSFB_CLASSES])]


def as_inputs(records: list[tuple[str, dict[str, Any]]]) -> list[InputRecord]:
    """InputRecords with eb_refs: per (topic, partition) offsets in the given order."""
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for event_class, envelope in records:
        key = (topic_of(event_class), partition_of(envelope))
        offset = offsets.get(key, 0)
        offsets[key] = offset + 1
        raw = json.dumps(envelope, sort_keys=True).encode()
        out.append(InputRecord(EbRef("kafka_offset", key[0], key[1], offset), envelope["event_id"], envelope, raw))
    return out


def feed(db: Database, platform_run_id: str, records: list[tuple[str, dict[str, Any]]], *, batch: int = 64,
         components: list[StreamHandler] | None = None) -> list[StreamHandler]:
    """Apply `records` through the run's handlers, `batch` records per transaction; each handler
    gets the records of its topics, as its consumer would."""
    components = components if components is not None else handlers(platform_run_id)
    inputs = as_inputs(records)
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        with db.transaction() as conn:
            for handler in components:
                mine = [r for r in chunk if r.eb_ref.topic in handler.input_topics()]
                if mine:
                    handler.apply(conn, mine)
    return components


def feed_memory(records: list[tuple[str, dict[str, Any]]]) -> tuple[OfpState, IegState, CsfbState]:
    """The in-memory twin: the same records through the pure domains."""
    ofp, ieg, csfb = OfpState(), IegState(), CsfbState()
    for event_class, envelope in records:
        if event_class in TRAFFIC_CLASSES:
            ofp.apply(envelope, topic_of(event_class), partition_of(envelope))
        ieg.apply(envelope)
        if event_class in CSFB_CLASSES:
            csfb.apply(envelope)
    return ofp, ieg, csfb


def section_state(db: Database, platform_run_id: str, section: str) -> tuple[str, dict[str, int]]:
    """A component's durable state for the run, comparable with ==: its digest section and counters."""
    with db.connection() as conn:
        return (rows_digest({section: progress.section_rows(conn, platform_run_id, section)}),
                progress.counter_totals(conn, platform_run_id, section))


def order_key(envelope: dict[str, Any]) -> tuple[int, str]:
    """The event's (ts, event_id)."""
    return (parse_ts_micros(envelope["ts_utc"]), envelope["event_id"])
