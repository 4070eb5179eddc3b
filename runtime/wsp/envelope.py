"""Rows of a stream view -> canonical envelopes, with a deterministic event_id.

The event_id is a pure function of the output id and the row's content, so a retry, a resumed
stream or a whole rerun carries exactly the same ids and IG's dedupe absorbs them.
"""

from __future__ import annotations

from typing import Any

from runtime.contracts.ids import event_id
from runtime.contracts.registry import Registry

PRODUCER = "wsp"
MODES = ("fraud", "baseline", "dual")


class OutputPlan:
    """Which outputs a mode streams and the event class of each."""

    def __init__(self, registry: Registry, mode: str):
        from runtime.errors import PlatformError

        if mode not in MODES:
            raise PlatformError(f"unknown mode {mode!r}; known: {', '.join(MODES)}", code="WSP_MODE_UNKNOWN",
                                next_step="use --mode fraud (default), baseline or dual")
        self.mode = mode
        class_map = registry.mapping("EVENT_CLASS_MAP")
        traffic = set(registry.names("ORACLE_TRAFFIC_OUTPUT_IDS"))
        context = set(registry.names("ORACLE_CONTEXT_OUTPUT_IDS"))
        self.class_of: dict[str, str] = {}
        for event_class, spec in class_map.items():
            output_id = spec["output_id"]
            if output_id not in traffic | context:
                continue
            if mode == "fraud" and "baseline" in event_class:
                continue
            if mode == "baseline" and "fraud" in event_class:
                continue
            if mode == "dual" and output_id in context and "baseline" in event_class:
                continue  # dual = both traffic channels over the fraud-mode context
            self.class_of[output_id] = event_class
        self.traffic = sorted(o for o in self.class_of if o in traffic)
        self.context = sorted(o for o in self.class_of if o in context)

    @property
    def outputs(self) -> list[str]:
        """Traffic outputs first, then context outputs."""
        return self.traffic + self.context


def to_envelope(row: dict[str, Any], *, output_id: str, event_class: str, platform_run_id: str,
                scenario_run_id: str) -> dict[str, Any]:
    """The envelope of one stream-view row; the whole row is the payload."""
    ts = row.get("ts_utc")
    event_type = row.get("event_type")
    return {
        "event_id": event_id(output_id, row),
        "event_class": event_class,
        "event_type": event_type if isinstance(event_type, str) and 0 < len(event_type) <= 64 else event_class,
        "schema_version": "v1",
        "platform_run_id": platform_run_id,
        "scenario_run_id": scenario_run_id,
        "ts_utc": ts,
        "producer": PRODUCER,
        "payload": row,
    }
