"""AL's Postgres store: effects once per key, duplicates recorded, a conflicting intent refused, append-only tables."""

from __future__ import annotations

import pytest

from runtime.db.postgres import Database
from runtime.decision.al.domain import IntentConflict, check_intent
from runtime.decision.al.store import action_counts, effects, record_effect, record_effects
from tests.runtime.decision.support import assert_truth_tables_refuse_change, lane_records
from tests.support.events import random_run_id

REF = {"offset_kind": "kafka_offset", "topic": "t", "partition": 0, "offset": 1}


def test_an_effect_is_recorded_once_and_every_later_delivery_is_a_duplicate(runtime_dsn: str) -> None:
    run = random_run_id()
    intent = next(p for c, p in lane_records(run, 1) if c == "action_intent")
    outcome, _ = check_intent(intent)
    with Database(runtime_dsn, name="al-store", max_size=1) as db, db.transaction() as conn:
        assert record_effect(conn, outcome, REF) is None
        assert record_effect(conn, outcome, REF) == outcome.canonical()
        assert record_effect(conn, outcome, {**REF, "offset": 2}) == outcome.canonical()
        counts = action_counts(conn, run)
        assert (counts.executed, counts.duplicates_prevented) == (1, 2)
        assert effects(conn, run) == [outcome.canonical()]


def test_a_batch_executes_each_key_once_in_order_and_records_every_later_delivery_as_a_duplicate(runtime_dsn: str) -> None:
    run = random_run_id()
    first, second, third = [check_intent(p)[0] for c, p in lane_records(run, 3) if c == "action_intent"][:3]
    with Database(runtime_dsn, name="al-store", max_size=1) as db, db.transaction() as conn:
        assert record_effects(conn, [(first, REF)]) == [None]
        results = record_effects(conn, [(second, REF), (first, {**REF, "offset": 2}), (second, {**REF, "offset": 3}),
                                        (third, REF)])
        assert results == [None, first.canonical(), second.canonical(), None]
        counts = action_counts(conn, run)
        assert (counts.executed, counts.duplicates_prevented) == (3, 2)
        assert record_effects(conn, []) == []


def test_a_conflicting_intent_anywhere_in_a_batch_refuses_the_batch(runtime_dsn: str) -> None:
    run = random_run_id()
    first, second = [check_intent(p)[0] for c, p in lane_records(run, 2) if c == "action_intent"][:2]
    forged = first.__class__(**{**first.__dict__, "intent_id": "f" * 32})
    with Database(runtime_dsn, name="al-store", max_size=1) as db, db.transaction() as conn, pytest.raises(IntentConflict):
        record_effects(conn, [(first, REF), (second, REF), (forged, REF)])


def test_another_intent_under_a_held_key_is_a_conflict(runtime_dsn: str) -> None:
    run = random_run_id()
    intent = next(p for c, p in lane_records(run, 1) if c == "action_intent")
    outcome, _ = check_intent(intent)
    forged = outcome.__class__(**{**outcome.__dict__, "intent_id": "f" * 32})
    with Database(runtime_dsn, name="al-store", max_size=1) as db, db.transaction() as conn:
        record_effect(conn, outcome, REF)
        with pytest.raises(IntentConflict):
            record_effect(conn, forged, REF)


def test_effects_and_duplicates_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("al_effects", "al_duplicates"))
