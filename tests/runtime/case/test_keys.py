"""Subject keys and ids: pinned to the registry, deterministic, and refusing malformed parts."""

from __future__ import annotations

import pytest

from runtime.case.keys import (
    CaseInputInvalid,
    CaseSubjectKey,
    LabelSubjectKey,
    SubjectKeyDrift,
    check_pinned_fields,
    norm_ts,
)
from runtime.contracts.registry import load_registry
from tests.runtime.case.records import RUN, hex32


def test_the_registry_pins_the_subject_key_fields_the_code_hashes() -> None:
    registry = load_registry("local_parity")
    check_pinned_fields(registry.names("CASE_SUBJECT_KEY_FIELDS"), registry.names("LABEL_SUBJECT_KEY_FIELDS"))
    dev_min = load_registry("dev_min")
    check_pinned_fields(dev_min.names("CASE_SUBJECT_KEY_FIELDS"), dev_min.names("LABEL_SUBJECT_KEY_FIELDS"))


def test_a_registry_composing_a_key_differently_is_refused_as_drift() -> None:
    with pytest.raises(SubjectKeyDrift) as e:
        check_pinned_fields(["platform_run_id", "event_id"], ["platform_run_id", "event_id", "label_type"])
    assert e.value.code == "SUBJECT_KEY_DRIFT" and e.value.next_step
    with pytest.raises(SubjectKeyDrift):
        check_pinned_fields(["platform_run_id", "event_class", "event_id"], ["event_id", "platform_run_id", "label_type"])


def test_case_id_is_a_pure_function_of_the_subject_key() -> None:
    a = CaseSubjectKey(RUN, "traffic_fraud", hex32(1))
    assert a.case_id == CaseSubjectKey.from_dict(a.as_dict()).case_id
    assert len(a.case_id) == 32
    assert a.case_id != CaseSubjectKey(RUN, "traffic_baseline", hex32(1)).case_id
    assert a.case_id != CaseSubjectKey("platform_20260105T000001Z", "traffic_fraud", hex32(1)).case_id


@pytest.mark.parametrize("parts", [
    ("platform_x", "traffic_fraud", hex32(1)),
    (RUN, "Traffic Fraud", hex32(1)),
    (RUN, "traffic_fraud", "XYZ"),
    (RUN, "traffic_fraud", hex32(1) + "\n"),
])
def test_a_malformed_case_subject_is_refused(parts: tuple[str, str, str]) -> None:
    with pytest.raises(CaseInputInvalid):
        CaseSubjectKey(*parts)


def test_a_subject_key_object_must_have_exactly_the_pinned_fields() -> None:
    with pytest.raises(CaseInputInvalid):
        CaseSubjectKey.from_dict({"platform_run_id": RUN, "event_id": hex32(1)})
    with pytest.raises(CaseInputInvalid):
        LabelSubjectKey.from_dict({"platform_run_id": RUN, "event_id": hex32(1), "label_type": "fraud", "x": 1})


def test_timestamps_are_normalised_so_equal_moments_give_equal_ids() -> None:
    assert norm_ts("2026-01-05T10:00:00Z", "t") == "2026-01-05T10:00:00.000000Z"
    assert norm_ts("2026-01-05T11:00:00+01:00", "t") == "2026-01-05T10:00:00.000000Z"
    with pytest.raises(CaseInputInvalid):
        norm_ts("2026-01-05T10:00:00", "t")  # no zone
    with pytest.raises(CaseInputInvalid):
        norm_ts("yesterday", "t")
