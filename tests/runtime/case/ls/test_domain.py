"""LS's domain: allowed sources, stable assertion ids, idempotent appends, and `label_as_of` over
the oracle's real bank view (unknown before the bank's report, fraud after it)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import (
    FlowEvent,
    LabelAssertion,
    LabelBook,
    LabelConflict,
    LabelInvalid,
    LabelSourceNotAllowed,
    LabelSubjectUnknown,
    assertion,
    bank_view_assertions,
    label_as_of,
)
from runtime.contracts.ids import event_id
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import generate
from tests.runtime.case.records import RUN, hex32

TRAFFIC = "s3_event_stream_with_fraud_6B"
SUBJECT = LabelSubjectKey(RUN, hex32("event"), "fraud")
EVENT_AT = "2026-01-05T10:00:00Z"


def _table(root: Path, output_id: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((root / output_id).glob("part-*.parquet"))])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small real engine run: its bank view rows and each flow's events with WSP's event ids."""
    root = tmp_path_factory.mktemp("oracle") / "run"
    generate(EngineConfig(seed=7, scale=4000, fraud_rate=0.2, files_per_output=1, days=1), root)
    flows: dict[str, list[FlowEvent]] = defaultdict(list)
    for row in _table(root, TRAFFIC).to_pylist():
        row["ts_utc"] = _iso(row["ts_utc"])
        flows[row["flow_id"]].append(FlowEvent(event_id(TRAFFIC, row), row["ts_utc"]))
    return {"bank_view": _table(root, "s4_flow_bank_view_6B").to_pylist(), "flows": dict(flows)}


def test_the_bank_view_becomes_assertions_unknown_before_the_report_and_fraud_after(oracle: dict[str, Any]) -> None:
    confirmed = [r for r in oracle["bank_view"] if r["bank_label"] == "FRAUD_CONFIRMED"]
    assert len(confirmed) >= 20
    result = bank_view_assertions(oracle["bank_view"], oracle["flows"], RUN)
    book = LabelBook()
    for a in result.assertions:
        book.append(a)
    checked = 0
    for row in confirmed:
        reported, delay = row["reported_at_utc"], row["detection_delay_hours"]
        assert delay is not None and delay >= 0
        for event in oracle["flows"][row["flow_id"]]:
            subject = LabelSubjectKey(RUN, event.event_id, "fraud")
            event_at = datetime.fromisoformat(event.ts_utc.replace("Z", "+00:00"))
            known_at = max(reported, event_at)
            assert book.as_of(subject, event_at - timedelta(microseconds=1)).value == "unknown"
            assert book.as_of(subject, known_at - timedelta(microseconds=1)).value == "unknown"
            answer = book.as_of(subject, known_at)
            assert (answer.value, answer.source) == ("fraud", "bank_view")
            assert book.as_of(subject, known_at + timedelta(days=30)).value == "fraud"
            checked += 1
    assert checked >= len(confirmed)


def test_the_intake_maps_disputes_skips_no_claims_and_flows_outside_the_run(oracle: dict[str, Any]) -> None:
    rows = oracle["bank_view"]
    result = bank_view_assertions(rows, oracle["flows"], RUN)
    by_label = defaultdict(int)
    for row in rows:
        by_label[row["bank_label"]] += 1
    assert result.skipped["no_claim"] == by_label["NO_CLAIM"]
    assert {a.source for a in result.assertions} <= {"bank_view", "dispute"}
    assert all((a.source, a.value) in {("bank_view", "fraud"), ("dispute", "disputed")} for a in result.assertions)
    assert all(a.observed_at_utc >= a.effective_at_utc for a in result.assertions)
    some_flows = dict(list(oracle["flows"].items())[: len(oracle["flows"]) // 4])
    partial = bank_view_assertions(rows, some_flows, RUN)
    assert partial.skipped["not_in_run"] > 0 and len(partial.assertions) < len(result.assertions)
    assert bank_view_assertions(rows, oracle["flows"], RUN).assertions == result.assertions  # deterministic


def test_a_bank_report_before_a_later_event_of_the_flow_is_observed_no_earlier_than_that_event() -> None:
    events = [FlowEvent(hex32("e0"), "2026-01-05T10:00:00Z"), FlowEvent(hex32("e1"), "2026-01-05T12:00:00Z")]
    row = {"flow_id": "flw_1", "bank_label": "FRAUD_CONFIRMED", "is_fraud_bank_view": True,
           "reported_at_utc": "2026-01-05T11:00:00Z", "detection_delay_hours": 1.0}
    first, second = bank_view_assertions([row], {"flw_1": events}, RUN).assertions
    assert first.observed_at_utc == "2026-01-05T11:00:00.000000Z"
    assert second.observed_at_utc == second.effective_at_utc == "2026-01-05T12:00:00.000000Z"


@pytest.mark.parametrize("row", [
    {"flow_id": "", "bank_label": "FRAUD_CONFIRMED", "reported_at_utc": EVENT_AT},
    {"flow_id": "flw_1", "bank_label": "CHARGEBACK", "reported_at_utc": EVENT_AT},
    {"flow_id": "flw_1", "bank_label": "FRAUD_CONFIRMED", "reported_at_utc": None},
    {"flow_id": "flw_1", "bank_label": "CUSTOMER_DISPUTE", "reported_at_utc": "soon"},
])
def test_a_malformed_bank_view_row_is_refused(row: dict) -> None:
    with pytest.raises(LabelInvalid):
        bank_view_assertions([row], {"flw_1": [FlowEvent(hex32("e0"), EVENT_AT)]}, RUN)


def test_a_label_from_a_source_that_is_not_allowed_is_refused() -> None:
    with pytest.raises(LabelSourceNotAllowed) as e:
        assertion(SUBJECT, source="model_score", value="fraud", observed_at=EVENT_AT, effective_at=EVENT_AT)
    assert e.value.code == "LABEL_SOURCE_NOT_ALLOWED" and e.value.next_step
    with pytest.raises(LabelSourceNotAllowed):
        assertion(SUBJECT, source="dispute", value="disputed", observed_at=EVENT_AT, effective_at=EVENT_AT,
                  allowed_sources=["bank_view", "case_closure"])


@pytest.mark.parametrize(("source", "value", "label_type", "observed"), [
    ("bank_view", "legit", "fraud", EVENT_AT),          # the bank view only confirms fraud
    ("dispute", "fraud", "fraud", EVENT_AT),            # a dispute is not a confirmation
    ("case_closure", "maybe", "fraud", EVENT_AT),
    ("case_closure", "fraud", "chargeback", EVENT_AT),  # unknown label type
    ("bank_view", "fraud", "fraud", "2026-01-05T09:00:00Z"),  # known before the event happened
])
def test_an_invalid_assertion_is_refused(source: str, value: str, label_type: str, observed: str) -> None:
    with pytest.raises(LabelInvalid):
        assertion(LabelSubjectKey(RUN, hex32("event"), label_type), source=source, value=value,
                  observed_at=observed, effective_at=EVENT_AT)


def test_the_assertion_id_is_the_hash_of_subject_source_and_observed_time() -> None:
    a = assertion(SUBJECT, source="bank_view", value="fraud", observed_at="2026-01-06T10:00:00Z", effective_at=EVENT_AT)
    same = assertion(SUBJECT, source="bank_view", value="fraud", observed_at="2026-01-06T11:00:00+01:00",
                     effective_at=EVENT_AT)
    assert a.assertion_id == same.assertion_id
    later = assertion(SUBJECT, source="bank_view", value="fraud", observed_at="2026-01-07T10:00:00Z", effective_at=EVENT_AT)
    assert later.assertion_id != a.assertion_id
    assert LabelAssertion.from_row(a.row()) == a
    tampered = a.row() | {"label_value": "fraud", "observed_at_utc": "2026-01-07T10:00:00.000000Z"}
    with pytest.raises(LabelInvalid):
        LabelAssertion.from_row(tampered)


def test_appends_are_idempotent_and_a_different_assertion_under_a_stored_id_is_refused() -> None:
    book = LabelBook()
    a = assertion(SUBJECT, source="case_closure", value="fraud", observed_at="2026-01-06T10:00:00Z", effective_at=EVENT_AT)
    assert book.append(a) is True
    assert book.append(a) is False
    other = assertion(SUBJECT, source="case_closure", value="legit", observed_at="2026-01-06T10:00:00Z", effective_at=EVENT_AT)
    with pytest.raises(LabelConflict) as e:
        book.append(other)
    assert e.value.code == "LABEL_CONFLICT"
    assert list(book.assertions.values()) == [a]


def test_a_label_for_a_subject_the_run_never_admitted_is_refused() -> None:
    book = LabelBook(is_known_subject=lambda s: s.event_id == hex32("event"))
    known = assertion(SUBJECT, source="dispute", value="disputed", observed_at=EVENT_AT, effective_at=EVENT_AT)
    assert book.append(known)
    stranger = LabelSubjectKey(RUN, hex32("stranger"), "fraud")
    with pytest.raises(LabelSubjectUnknown) as e:
        book.append(assertion(stranger, source="dispute", value="disputed", observed_at=EVENT_AT, effective_at=EVENT_AT))
    assert e.value.code == "LABEL_SUBJECT_UNKNOWN" and len(book.assertions) == 1


def _a(source: str, value: str, observed: str) -> LabelAssertion:
    return assertion(SUBJECT, source=source, value=value, observed_at=observed, effective_at=EVENT_AT)


def test_conflicting_assertions_resolve_by_authority_then_recency_never_by_arrival() -> None:
    closure_legit = _a("case_closure", "legit", "2026-01-05T12:00:00Z")
    bank_fraud = _a("bank_view", "fraud", "2026-01-08T00:00:00Z")
    dispute = _a("dispute", "disputed", "2026-01-09T00:00:00Z")
    closure_fraud = _a("case_closure", "fraud", "2026-01-06T00:00:00Z")
    inconclusive = _a("case_closure", "inconclusive", "2026-01-05T11:00:00Z")
    every = [closure_legit, bank_fraud, dispute, closure_fraud, inconclusive]
    for assertions in (every, list(reversed(every))):
        assert label_as_of(assertions, SUBJECT, "2026-01-05T10:30:00Z").value == "unknown"
        assert label_as_of(assertions, SUBJECT, "2026-01-05T11:00:00Z").value == "inconclusive"
        assert label_as_of(assertions, SUBJECT, "2026-01-05T12:00:00Z").value == "legit"   # decisive beats inconclusive
        assert label_as_of(assertions, SUBJECT, "2026-01-06T00:00:00Z").value == "fraud"   # the later closure
        answer = label_as_of(assertions, SUBJECT, "2026-01-10T00:00:00Z")
        assert (answer.value, answer.source) == ("fraud", "bank_view")  # the bank outranks a later dispute
    only_dispute_then_closure = [dispute, _a("case_closure", "legit", "2026-01-09T01:00:00Z")]
    assert label_as_of(only_dispute_then_closure, SUBJECT, "2026-01-09T00:30:00Z").value == "disputed"
    assert label_as_of(only_dispute_then_closure, SUBJECT, "2026-01-09T02:00:00Z").value == "legit"


def test_label_as_of_looks_only_at_its_subject() -> None:
    other = LabelSubjectKey(RUN, hex32("other"), "fraud")
    a = assertion(other, source="bank_view", value="fraud", observed_at=EVENT_AT, effective_at=EVENT_AT)
    assert label_as_of([a], SUBJECT, "2027-01-01T00:00:00Z").value == "unknown"
    with pytest.raises(LabelInvalid):
        label_as_of([a], other, "not a time")
