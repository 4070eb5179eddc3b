"""The backtest's comparison over a whole engine run (the archive reading is covered end to end in
tests/e2e/test_decision_kill_drill.py): the live bundle reproduces the live decisions, a candidate
with a lower REVIEW threshold changes exactly the expected ones, and quality is scored per bundle."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmarks.bench_decision_quality import envelopes_of
from runtime.decision.backtest import _utc, backtest, changes, quality_of, reproduction, summary_lines
from runtime.decision.df.replay import decide_stream
from runtime.obs.quality import EventTruth
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.simulate import simulate
from runtime.oracle.engine.tables import build_tables
from tests.runtime.decision.support import policy


def _envelopes():
    return envelopes_of(build_tables(simulate(EngineConfig(seed=11, scale=600, fraud_rate=0.1, days=1)),
                                     np.random.default_rng(11)))


def _live(envelopes, posture="GREEN"):
    p = policy()
    return {(r.event_class, r.event_id): r.canonical()
            for _, _, r in decide_stream(envelopes, p, pinned_digest=p.digest, posture=posture)}


def test_backtesting_the_live_bundle_reproduces_the_live_decisions_exactly():
    envelopes = _envelopes()
    live = _live(envelopes)
    result = reproduction(live, backtest(envelopes, policy(), {k: "GREEN" for k in live}))
    assert result["exact"] and result["identical"] == len(live) > 0 and result["backtest_digest"] == result["live_digest"]


def test_each_event_is_decided_under_the_posture_the_live_run_recorded_for_it():
    envelopes = _envelopes()
    live = _live(envelopes, posture="RED")
    assert reproduction(live, backtest(envelopes, policy(), {k: "RED" for k in live}))["exact"]
    assert not reproduction(live, backtest(envelopes, policy(), {}))["exact"]  # GREEN is another decision


def test_a_lower_review_threshold_turns_only_lower_outcomes_into_review():
    envelopes = _envelopes()
    live = policy()
    lowered = replace(live, thresholds={**live.thresholds, "REVIEW": live.thresholds["STEP_UP"] + 0.01},
                      digest="c" * 64, version=live.version + 1)
    before, after = backtest(envelopes, live, {}), backtest(envelopes, lowered, {})
    diff = changes(before, after)
    expected = sum(1 for d in before.decisions.values()
                   if d.outcome in ("APPROVE", "STEP_UP") and d.score >= lowered.thresholds["REVIEW"])
    assert diff["changed"] == expected > 0
    assert set(diff["by_transition"]) <= {"APPROVE->REVIEW", "STEP_UP->REVIEW"}
    assert diff["outcomes_after"].get("DECLINE") == diff["outcomes_before"].get("DECLINE")
    assert changes(before, before)["changed"] == 0


def test_quality_is_scored_from_the_decisions_and_flags_more_with_a_lower_threshold():
    envelopes = _envelopes()
    traffic = {e["event_id"]: e["payload"] for e in envelopes if e["event_class"].startswith("traffic")}
    truth = [EventTruth(i, str(p["flow_id"]), str(p["card_id"]), float(p["amount"]),
                        _utc(p["ts_utc"]), n % 7 == 0)
             for n, (i, p) in enumerate(sorted(traffic.items()))]
    live = policy()
    lowered = replace(live, thresholds={**live.thresholds, "REVIEW": live.thresholds["STEP_UP"] + 0.01}, digest="c" * 64)
    q = {name: quality_of((d.canonical() for d in backtest(envelopes, p, {}).decisions.values()), traffic, truth, [])
         for name, p in (("live", live), ("candidate", lowered))}
    assert q["candidate"]["event"]["flagged"] > q["live"]["event"]["flagged"] and q["live"]["event"]["count"] == len(traffic)
    doc = {"platform_run_id": "r", "traffic_events": len(traffic), "archived_records": len(envelopes),
           "live_reproduced": {"exact": True, "identical": 1, "differing": 0, "differing_live_degraded": 0},
           "live_policy": {"version": 1}, "candidate_policy": {"version": 2, "digest": "c" * 64},
           "changed": {"changed": 3, "by_transition": {"APPROVE->REVIEW": 3}},
           "quality": {"live": q["live"], "candidate": q["candidate"]}}
    assert any(line.startswith("candidate flow precision") for line in summary_lines(doc))
