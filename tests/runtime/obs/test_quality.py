"""Decision quality on hand-made truth: every number below is worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.obs.quality import BankView, Decision, EventTruth, FlowTruth, score

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Four flows on three cards:
#   f1 card_testing on c1: e1 (10, fraud), e2 (20, fraud)   -> flagged at e2 (REVIEW)
#   f2 legit on c2:        e3 (100)                           -> flagged (DECLINE): a false positive
#   f3 account_takeover on c3: e4 (500, fraud)                -> missed
#   f4 legit on c1:        e5 (30)                            -> approved
EVENTS = [
    EventTruth("e1", "f1", "c1", 10.0, at(0), True, "card_testing"),
    EventTruth("e2", "f1", "c1", 20.0, at(2), True, "card_testing"),
    EventTruth("e3", "f2", "c2", 100.0, at(1), False),
    EventTruth("e4", "f3", "c3", 500.0, at(3), True, "account_takeover"),
    EventTruth("e5", "f4", "c1", 30.0, at(4), False),
]
FLOWS = [FlowTruth("f1", True, "card_testing"), FlowTruth("f2", False), FlowTruth("f3", True, "account_takeover"),
         FlowTruth("f4", False)]


def decision(event: EventTruth, outcome: str, *, posture: str = "NORMAL", score_: float = 0.0, delay_s: float = 1) -> Decision:
    return Decision(event.event_id, event.flow_id, event.card_id, outcome, posture, event.amount,
                    event.ts_utc + timedelta(seconds=delay_s), score_)


DECISIONS = [
    decision(EVENTS[0], "APPROVE", score_=0.2),
    decision(EVENTS[1], "REVIEW", score_=0.7, delay_s=30),
    decision(EVENTS[2], "DECLINE", posture="DEGRADED", score_=0.9),
    decision(EVENTS[3], "APPROVE", posture="DEGRADED", score_=0.1),
    decision(EVENTS[4], "APPROVE", score_=0.0),
]


def test_flow_event_and_card_precision_recall_and_alert_rate() -> None:
    q = score(DECISIONS, EVENTS, FLOWS)
    # flows: flagged f1 (fraud), f2 (legit) -> tp 1, fp 1, fn 1 (f3), tn 1 (f4)
    assert q["flow"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert (q["flow"]["precision"], q["flow"]["recall"], q["flow"]["alert_rate"]) == (0.5, 0.5, 0.5)
    # events: flagged e2 (fraud), e3 (legit); fraud e1, e2, e4
    assert q["event"]["confusion"] == {"tp": 1, "fp": 1, "fn": 2, "tn": 1}
    assert q["event"]["recall"] == pytest.approx(1 / 3)
    assert q["event"]["alert_rate"] == pytest.approx(2 / 5)
    # cards: c1 fraud + flagged, c2 legit + flagged, c3 fraud + missed
    assert q["card"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}


def test_per_pattern_compares_each_pattern_with_the_legitimate_flows() -> None:
    q = score(DECISIONS, EVENTS, FLOWS)
    ct, ato = q["by_pattern"]["card_testing"], q["by_pattern"]["account_takeover"]
    # card_testing slice: f1 (hit) + legit f2 (flagged), f4 -> precision 1/2, recall 1, alert 2/3
    assert (ct["precision"], ct["recall"]) == (0.5, 1.0)
    assert ct["alert_rate"] == pytest.approx(2 / 3)
    assert ct["event_recall"] == 0.5
    assert ato["recall"] == 0.0 and ato["precision"] == 0.0 and ato["fraud_amount_missed"] == 500.0
    for block in q["by_pattern"].values():
        for key in ("precision", "recall", "alert_rate"):
            assert block[key] is None or 0.0 <= block[key] <= 1.0
    assert "none" not in q["by_pattern"]


def test_per_posture_scores_the_decisions_taken_under_each_posture() -> None:
    q = score(DECISIONS, EVENTS, FLOWS)
    assert q["by_posture"]["DEGRADED"]["confusion"] == {"tp": 0, "fp": 1, "fn": 1, "tn": 0}
    assert q["by_posture"]["DEGRADED"]["precision"] == 0.0
    assert q["by_posture"]["NORMAL"]["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 1}


def test_precision_at_review_capacity_takes_the_top_scored_flags() -> None:
    q = score(DECISIONS, EVENTS, FLOWS, review_capacity=1)
    # e3 (0.9, legit) outranks e2 (0.7, fraud)
    assert q["at_review_capacity"]["event_precision"] == 0.0
    assert q["at_review_capacity"]["flow_precision"] == 0.0
    q2 = score(DECISIONS, EVENTS, FLOWS, review_capacity=2)
    assert q2["at_review_capacity"]["event_precision"] == 0.5
    with pytest.raises(ValueError):
        score(DECISIONS, EVENTS, FLOWS, review_capacity=0)


def test_fraud_amount_stopped_reviewed_and_missed() -> None:
    declines = [decision(EVENTS[0], "DECLINE"), *DECISIONS[1:]]
    amounts = score(declines, EVENTS, FLOWS)["amounts"]
    assert amounts == {"fraud_total": 530.0, "fraud_stopped": 10.0, "fraud_reviewed": 20.0, "fraud_missed": 500.0,
                       "stopped_share": pytest.approx(10 / 530), "legit_declined": 100.0}


def test_time_to_detect_runs_from_the_first_fraud_event_to_the_first_flag() -> None:
    q = score(DECISIONS, EVENTS, FLOWS)
    # f1: first fraud at 0 min, first flag at 2 min + 30 s -> 150 s; f3 never detected
    assert q["time_to_detect"]["flow"] == {"count": 1, "median_s": 150.0, "p90_s": 150.0, "max_s": 150.0}
    assert q["time_to_detect"]["card"]["median_s"] == 150.0
    assert q["by_pattern"]["account_takeover"]["time_to_detect"]["count"] == 0


def test_bank_view_says_what_the_bank_alone_knew_and_when() -> None:
    bank = [BankView("f1", True, at(60 * 24)), BankView("f3", True, at(60 * 72)), BankView("f2", False, None)]
    q = score(DECISIONS, EVENTS, FLOWS, bank, known_by=at(60 * 48))["bank_view"]
    # against the bank's eventual labels: flagged f1 (bank fraud), f2 (not); bank fraud f1, f3
    assert q["flow"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert q["bank_recall_of_truth"] == 1.0 and q["bank_precision_of_truth"] == 1.0
    assert q["flagged_before_bank_report"] == 1
    assert q["bank_time_to_report"]["median_s"] == pytest.approx((24 * 3600 + (72 * 3600 - 180)) / 2)
    # at 48 h the bank had reported only f1
    assert q["reported_by_known_by"] == 1
    assert q["flow_known_by"]["confusion"] == {"tp": 1, "fp": 1, "fn": 0, "tn": 2}
    assert q["known_by_utc"] == "2026-11-25T12:00:00Z"


def test_undefined_ratios_are_none_and_undecided_events_count_as_not_flagged() -> None:
    q = score([], EVENTS, FLOWS)
    assert q["flow"]["precision"] is None and q["flow"]["recall"] == 0.0 and q["flow"]["alert_rate"] == 0.0
    assert q["decisions"] == {"scored": 0, "undecided": 5, "outside_truth": 0}
    empty = score([], [])
    assert empty["flow"]["recall"] is None and empty["flow"]["alert_rate"] is None


def test_a_decision_outside_the_truth_is_counted_not_scored() -> None:
    stray = Decision("eX", "fX", "cX", "DECLINE", "NORMAL", 1.0, at(0), 1.0)
    q = score([*DECISIONS, stray], EVENTS, FLOWS)
    assert q["decisions"]["outside_truth"] == 1
    assert q["flow"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert q["at_review_capacity"]["reviewed_events"] == 2


def test_flow_truth_overrides_labels_derived_from_events() -> None:
    # the flow table says f4 is fraud (mule_transfer) although its one event label says legit
    q = score(DECISIONS, EVENTS, [*FLOWS[:3], FlowTruth("f4", True, "mule_transfer")])
    assert q["flow"]["fraud"] == 3
    assert q["by_pattern"]["mule_transfer"]["recall"] == 0.0


def test_a_flag_before_the_first_fraud_event_of_a_card_does_not_detect_it() -> None:
    legit_first = EventTruth("g0", "g", "c9", 5.0, at(-10), False)
    fraud_later = EventTruth("h0", "h", "c9", 50.0, at(0), True, "account_takeover")
    decisions = [decision(legit_first, "REVIEW"), decision(fraud_later, "APPROVE"),
                 decision(fraud_later, "APPROVE")]
    q = score(decisions, [legit_first, fraud_later])
    assert q["time_to_detect"]["card"]["count"] == 0  # the card was flagged, but before its fraud began
    assert q["card"]["confusion"]["tp"] == 1  # still a flagged fraud card for precision/recall
