"""Replay anchors: built from the run's ranges, consistent with P7 and P8 snapshots, and an edited
snapshot is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from runtime.obs.anchors import AnchorRange, Snapshot, replay_anchors

AT = "2026-11-29T07:26:49Z"
P7_PATH, P8_PATH = "ingest/kafka_offsets_snapshot.json", "rtdl_core/offsets_snapshot.json"


def _p7() -> dict[str, Any]:
    return {"offset_ranges": [
        {"topic": "fp.bus.traffic.fraud.v1", "partition": "0", "start_offset": "0", "end_offset": "103"},
        {"topic": "fp.bus.traffic.fraud.v1", "partition": "1", "start_offset": "0", "end_offset": "95"},
        {"topic": "fp.bus.context.arrival_events.v1", "partition": "0", "start_offset": "0", "end_offset": "200"}],
        "empty_partitions": [{"topic": "fp.bus.traffic.baseline.v1", "partition": "0"}]}


def _p8() -> dict[str, Any]:
    return {"partitions": [
        {"topic": "fp.bus.traffic.fraud.v1", "partition": "0", "start_offset": 0, "end_offset": 103,
         "consumer_group_id": "fp-ofp-r", "committed_offset": 104, "lag": 0},
        {"topic": "fp.bus.traffic.baseline.v1", "partition": "0", "start_offset": None, "end_offset": None,
         "consumer_group_id": "fp-ofp-r", "committed_offset": None, "lag": 0}]}


def _anchors() -> list[AnchorRange]:
    return [AnchorRange("fp.bus.traffic.fraud.v1", "0", "0", "103", 104, ("traffic_fraud",)),
            AnchorRange("fp.bus.traffic.fraud.v1", "1", "0", "95", 96, ("traffic_fraud",)),
            AnchorRange("fp.bus.context.arrival_events.v1", "0", "0", "200", 201),
            AnchorRange("fp.bus.rtdl.v1", "0", "0", "629", 630)]


def _build(p7: dict[str, Any], p8: dict[str, Any]) -> dict[str, Any]:
    body = replay_anchors(_anchors(), [Snapshot(P7_PATH, p7, "offset_ranges"), Snapshot(P8_PATH, p8, "partitions")],
                          offset_kind="kafka_offset", captured_at_utc=AT)
    return {"phase_id": "P11", "platform_run_id": "platform_20261129T000000Z", "scenario_run_id": "a" * 32,
            "written_at_utc": AT, "source_handles": ["REPLAY_ANCHORS_PATH_PATTERN"], **body}


def test_anchors_consistent_with_both_snapshots_validate_and_keep_their_promises() -> None:
    doc = _build(_p7(), _p8())
    assert [c["consistent"] for c in doc["consistent_with"]] == [True, True]
    assert schema_violations("evidence/replay_anchors.schema.json", doc) == []
    documents = {P7_PATH: _p7(), P8_PATH: _p8()}
    assert promises.FILE_PROMISES["replay_anchors"]("replay_anchors.json", doc, documents, load_registry("local_parity")) == []
    assert doc["topics"] == ["fp.bus.context.arrival_events.v1", "fp.bus.rtdl.v1", "fp.bus.traffic.fraud.v1"]


def test_an_edited_p7_snapshot_is_named_as_inconsistent() -> None:
    p7 = _p7()
    p7["offset_ranges"][1]["end_offset"] = "94"
    doc = _build(p7, _p8())
    p7_check = doc["consistent_with"][0]
    assert not p7_check["consistent"]
    assert "fp.bus.traffic.fraud.v1[1]" in p7_check["detail"]
    assert doc["consistent_with"][1]["consistent"]


def test_the_snapshot_digest_changes_when_the_snapshot_does() -> None:
    edited = copy.deepcopy(_p8())
    edited["partitions"][0]["lag"] = 1
    assert _build(_p7(), _p8())["consistent_with"][1]["sha256"] != _build(_p7(), edited)["consistent_with"][1]["sha256"]


def test_no_ranges_or_a_partition_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        replay_anchors([], [], offset_kind="kafka_offset", captured_at_utc=AT)
    with pytest.raises(ValueError):
        replay_anchors(_anchors() * 2, [], offset_kind="kafka_offset", captured_at_utc=AT)
