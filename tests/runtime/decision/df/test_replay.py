"""The offline decision path: decisions never depend on the oracle's truth, and a replay gives the same digest."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_decision_quality import envelopes_of, flow_scores
from runtime.decision.df.domain import decision_digest
from runtime.decision.df.replay import decide_stream
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.simulate import simulate
from runtime.oracle.engine.tables import build_tables
from tests.runtime.decision.support import policy

TRUTH_OUTPUTS = ("s1_session_index_6B", "s4_event_labels_6B", "s4_flow_truth_labels_6B", "s4_flow_bank_view_6B")


def _tables():
    return build_tables(simulate(EngineConfig(seed=11, scale=600, fraud_rate=0.1, days=1)), np.random.default_rng(11))


def _digest(tables) -> tuple[str, int]:
    p = policy()
    records = [r for _, _, r in decide_stream(envelopes_of(tables), p, pinned_digest=p.digest)]
    return decision_digest(records), len(records)


def test_decisions_are_identical_when_the_truth_outputs_do_not_exist():
    tables = _tables()
    with_truth = _digest(tables)
    without = _digest({k: v for k, v in tables.items() if k not in TRUTH_OUTPUTS})
    assert with_truth == without and with_truth[1] == tables["s3_event_stream_with_fraud_6B"].num_rows


def test_a_replay_of_the_same_records_gives_the_same_decision_digest():
    tables = _tables()
    assert _digest(tables) == _digest(tables)


def test_flow_scores_count_a_flow_once_and_per_pattern():
    truth = {"f1": "card_testing", "f2": "card_testing", "f3": "none", "f4": "mule_transfer"}
    s = flow_scores({"f1", "f3", "f4"}, truth, len(truth))
    assert (s["precision"], s["recall"], s["alert_rate"], s["false_positives"]) == (2 / 3, 2 / 3, 0.75, 1)
    assert s["per_pattern"]["card_testing"] == {"flows": 2, "caught": 1, "recall": 0.5}


def test_under_red_no_event_of_a_whole_run_is_approved():
    p = policy()
    outcomes = {r.outcome for _, _, r in decide_stream(envelopes_of(_tables()), p, pinned_digest=p.digest, posture="RED")}
    assert "APPROVE" not in outcomes and "REVIEW" in outcomes
