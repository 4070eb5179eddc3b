"""`decision show`'s text: one decision's whole chain, the reasons with the values behind them, in 80 columns."""

from __future__ import annotations

from runtime.decision.dla.domain import AuditLog
from runtime.decision.show import render_chain, render_verdict
from tests.runtime.decision.support import lane_records
from tests.support.events import random_run_id

KIND = {"decision_response": "decision", "action_intent": "intent", "action_outcome": "outcome"}


def _chain(index: int) -> dict:
    log = AuditLog()
    records = lane_records(random_run_id(), 4)
    for event_class, payload in records:
        log.append(KIND[event_class], payload)
    decision = [p for c, p in records if c == "decision_response"][index]
    chain = log.chain(decision_id=decision["decision_id"])
    assert chain is not None
    chain["audit"] = [{"kind": "decision", "record_id": decision["decision_id"], "batch_seq": 3, "batch_position": 0,
                       "record_sha256": "ab" * 32, "object_key": "platform/x/decision_lane/audit/batch=000000000003-"
                                                                 "abcdefabcdefabcd.json"}]
    return chain


def test_a_decision_far_above_the_habit_shows_each_reason_with_the_signal_values_behind_it() -> None:
    chain = _chain(3)  # DECLINE: far above the habit from a new device
    text = render_chain(chain, {"outcome": "ADMIT", "batch_key": "k", "batch_index": 4})
    assert max(len(line) for line in text.splitlines()) <= 80
    assert chain["decision"]["outcome"] == "DECLINE" and f"outcome DECLINE (score {chain['decision']['score']}" in text
    assert chain["reasons"]
    for reason in chain["reasons"]:
        assert f"{reason['code']} (rule {reason['rule_id']}, weight {reason['weight']})" in text
        for signal, value in reason["values"].items():
            assert f"{signal} = {value}" in text
    assert "eb_ref fp.bus.traffic.fraud.v1[0] @ 41" in text and "receipt " + "a" * 32 + " ADMIT (IG batch k#4)" in text
    assert f"intents ({len(chain['intents'])})" in text and f"outcomes ({len(chain['outcomes'])})" in text
    assert all(f"{o['action_type']} {o['status']} {o['outcome_id']}" in text for o in chain["outcomes"])
    assert "decision " + chain["decision"]["decision_id"] + " batch 3 #0" in text


def test_an_approved_decision_says_no_reason_fired() -> None:
    text = render_chain(_chain(0))
    assert "reasons that fired (0)\n  (none)" in text and "receipt " + "a" * 32 in text


def test_the_verdict_lists_every_problem_with_its_batch() -> None:
    text = render_verdict("platform_20260105T000000Z", False, 3, [{"code": "BATCH_EDITED", "batch_seq": 1, "detail": "x"},
                                                                 {"code": "BATCH_REMOVED", "batch_seq": 2, "detail": "y"}])
    assert text.splitlines() == ["audit chain of platform_20260105T000000Z: 3 batch(es), 2 problem(s)",
                                 "  BATCH_EDITED batch 1: x", "  BATCH_REMOVED batch 2: y"]
    assert render_verdict("platform_20260105T000000Z", True, 3, []).endswith("verified")
