"""Envelope reading and watermarks shared by the RTDL domains."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from runtime.errors import PermanentError
from runtime.rtdl.events import RtdlPayloadInvalid, Watermarks, admitted, micros_to_iso, parse_ts_micros
from tests.runtime.rtdl.envelopes import T0, traffic


def test_timestamps_parse_to_exact_microseconds_and_back():
    assert parse_ts_micros("2026-01-05T00:00:00Z") == T0
    assert parse_ts_micros("2026-01-05T01:00:00.000001+01:00") == T0 + 1
    assert micros_to_iso(T0 + 1) == "2026-01-05T00:00:00.000001Z"


@pytest.mark.parametrize("value", ["", "yesterday", "2026-01-05T00:00:00", 17, None])
def test_a_timestamp_without_zone_or_shape_is_a_permanent_payload_error(value):
    with pytest.raises(RtdlPayloadInvalid) as e:
        parse_ts_micros(value)
    assert e.value.code == "RTDL_PAYLOAD_INVALID" and isinstance(e.value, PermanentError) and "dead-lettered" in e.value.next_step


@pytest.mark.parametrize("mutate, fragment", [
    (lambda e: e.update(event_class="decision_response"), "event_class"),
    (lambda e: e.update(event_id="XYZ"), "event_id"),
    (lambda e: e.update(payload=[1, 2]), "payload is not an object"),
    (lambda e: e["payload"].update(ts_utc="2026-01-06T00:00:00Z"), "differs"),
    (lambda e: e.pop("ts_utc"), "ts_utc"),
])
def test_malformed_envelopes_are_refused_with_a_reason(mutate, fragment):
    env = traffic(1)
    mutate(env)
    with pytest.raises(RtdlPayloadInvalid, match=fragment):
        admitted(env)


def test_a_non_object_envelope_is_refused():
    with pytest.raises(RtdlPayloadInvalid, match="not an object"):
        admitted("garbage")


def test_an_event_older_than_its_partition_watermark_is_late_and_the_store_is_complete_up_to_the_slowest_partition():
    marks = Watermarks()
    assert not marks.observe("t", 0, 100)
    assert not marks.observe("t", 0, 200)
    assert marks.observe("t", 0, 150)  # out of order on partition 0
    assert not marks.observe("t", 1, 120)  # another partition has its own watermark
    assert marks.late_total == 1
    assert marks.watermark("t", 0) == 200
    assert marks.complete_up_to() == 120
    assert marks.complete_up_to([("t", 0), ("t", 1), ("t", 2)]) is None  # partition 2 has delivered nothing


def test_allowed_lateness_moves_the_watermark_back_and_tolerates_small_disorder():
    marks = Watermarks(allowed_lateness_micros=60)
    marks.observe("t", 0, 200)
    assert not marks.observe("t", 0, 150)
    assert marks.observe("t", 0, 139)
    assert marks.watermark("t", 0) == 140
    assert marks.rows() == [{"topic": "t", "partition": "0", "max_event_ts_micros": 200, "late_events": 1}]


def test_the_canonical_time_form_is_what_datetime_writes_over_its_whole_range() -> None:
    rng = random.Random(16)
    first, last = -62_135_596_800_000_000, 253_402_300_799_999_999
    for micros in [first, last, 0, -1, 1, T0, *(rng.randint(first, last) for _ in range(20_000))]:
        seconds, rest = divmod(micros, 1_000_000)
        expected = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest).isoformat(timespec="microseconds")
        assert micros_to_iso(micros) == expected.replace("+00:00", "Z")
    for beyond in (first - 1, last + 1):
        with pytest.raises((ValueError, OverflowError)):
            micros_to_iso(beyond)
