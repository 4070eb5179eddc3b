"""The P8 evidence schemas (caught_up, offsets_snapshot, last_health) accept what their writers produce and refuse gaps."""

from __future__ import annotations

import copy

import pytest

from runtime.errors import BusUnavailable, DatabaseUnavailable
from runtime.evidence.writer import schema_violations
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.digest import state_digest
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ofp.domain import OfpState
from runtime.worker.health import Dependencies


def _dependencies() -> dict:
    """The `dependencies` section as health.py writes it: the database had one outage, the bus is down now."""
    deps = Dependencies()
    deps.down("db", DatabaseUnavailable("connection refused"))
    deps.up("db")
    deps.down("bus", BusUnavailable("offset commit has not returned for 5.2s"))
    return deps.document()


BASE = {"platform_run_id": "platform_20260105T000000Z", "written_at_utc": "2026-01-05T00:10:00.000000Z", "phase_id": "P8",
        "source_handles": ["RTDL_CORE_EVIDENCE_PATH_PATTERN"]}

HEALTH = {  # the shape runtime/worker/health.py health_document writes
    **BASE, "phase_id": "P9", "component": "ofp", "consumer_group": "fp-ofp-platform_20260105T000000Z", "health_state": "AMBER",
    "reasons": ["DEAD_LETTERS: 1 record(s) refused; see worker_dead_letters"],
    "counters": {"polled": 10, "applied": 9, "dead_lettered": 1, "late_events": 2, "dead_letters_total": 1},
    "lag": [{"topic": "fp.bus.traffic.fraud.v1", "partition": 0, "end_offset": 41, "committed": 42, "lag": 0},
            {"topic": "fp.bus.traffic.fraud.v1", "partition": 1, "end_offset": None, "committed": None, "lag": 0}],
    "lag_total": 0,
    "committed_offsets": [{"topic": "fp.bus.traffic.fraud.v1", "partition": 0, "position": 42}],
    "last_error": {"code": "RTDL_PAYLOAD_INVALID", "message": "payload.amount must be a number >= 0"},
    "dependencies": _dependencies(),
}

SNAPSHOT = {
    **BASE, "captured_at_utc": "2026-01-05T00:10:00Z", "offset_kind": "kinesis_sequence",
    "consumer_groups": ["fp-ieg-platform_20260105T000000Z"],
    "partitions": [{"topic": "fp.bus.context.arrival_events.v1", "partition": "shardId-000000000000",
                    "start_offset": "4960", "end_offset": "4990", "consumer_group_id": "fp-ieg-platform_20260105T000000Z",
                    "committed_offset": "4990", "lag": 0}],
}


def _caught_up() -> dict:
    return {**BASE, "caught_up": True, "lag": {"max": 0, "total": 0, "lag_max_allowed": 0}, "partitions_covered": 8,
            "partitions_expected": 8, "consumer_groups": ["fp-ofp-platform_20260105T000000Z"],
            "health": {"ofp": "GREEN", "ieg": "GREEN", "csfb": "GREEN", "archive_writer": "GREEN"},
            "dead_letters": {"total": 0, "explained": 0}, "late_events": 3,
            "degrade_counts": {"flow_anchor_missing": 1}, "join": {"hits": 190, "misses": 1, "late_joins": 1, "unresolved": 0},
            "reconciliation_present": True,
            "dependency_outages": {"ofp": {"db": {"outages": 1, "unavailable_seconds": 10.4},
                                           "bus": {"outages": 0, "unavailable_seconds": 0.0}}},
            "state_digest": state_digest(OfpState(), IegState(), CsfbState()), "reasons": []}


@pytest.mark.parametrize("schema, document", [("last_health", HEALTH), ("offsets_snapshot", SNAPSHOT), ("caught_up", _caught_up())])
def test_a_complete_document_is_valid(schema, document):
    assert schema_violations(f"evidence/{schema}.schema.json", document) == []


@pytest.mark.parametrize("schema, document, path, value", [
    ("last_health", HEALTH, "health_state", "YELLOW"),
    ("last_health", HEALTH, "last_error", "boom"),
    ("last_health", HEALTH, "counters", {"polled": -1}),
    ("last_health", HEALTH, "dependencies", {**_dependencies(), "db": {**_dependencies()["db"], "state": "FLAKY"}}),
    ("last_health", HEALTH, "dependencies", {"db": _dependencies()["db"]}),
    ("caught_up", _caught_up(), "dependency_outages", {"ofp": {"db": {"outages": -1, "unavailable_seconds": 0}}}),
    ("offsets_snapshot", SNAPSHOT, "partitions", []),
    ("offsets_snapshot", SNAPSHOT, "offset_kind", "wall_clock"),
    ("caught_up", _caught_up(), "state_digest", "not-a-digest"),
    ("caught_up", _caught_up(), "join", {"hits": 1}),
])
def test_a_wrong_value_is_refused(schema, document, path, value):
    broken = copy.deepcopy(document)
    broken[path] = value
    assert schema_violations(f"evidence/{schema}.schema.json", broken)


@pytest.mark.parametrize("schema, document, field", [
    ("last_health", HEALTH, "lag"), ("last_health", HEALTH, "last_error"), ("last_health", HEALTH, "dependencies"),
    ("caught_up", _caught_up(), "dependency_outages"),
    ("offsets_snapshot", SNAPSHOT, "consumer_groups"),
    ("caught_up", _caught_up(), "state_digest"), ("caught_up", _caught_up(), "late_events"),
    ("caught_up", _caught_up(), "degrade_counts"),
])
def test_a_missing_required_field_is_refused(schema, document, field):
    broken = copy.deepcopy(document)
    del broken[field]
    assert any(field in v for v in schema_violations(f"evidence/{schema}.schema.json", broken))
