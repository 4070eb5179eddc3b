"""DL: posture from health inputs; worsening at once, recovery only after consecutive better observations, one level at a time."""

from __future__ import annotations

import pytest

from runtime.decision.dl.domain import DegradeLadder, Health, HealthInvalid, Limits, judge

GOOD = Health(ofp_lag_seconds=1.0, csfb_lag_seconds=1.0, ieg_lag_seconds=1.0,
              consumer_lag_records=10, join_miss_ratio=0.0, bus_ok=True, db_ok=True)
LAGGING = Health(ofp_lag_seconds=10.0, csfb_lag_seconds=1.0, ieg_lag_seconds=1.0,
                 consumer_lag_records=10, join_miss_ratio=0.0, bus_ok=True, db_ok=True)
BUS_DOWN = Health(ofp_lag_seconds=1.0, csfb_lag_seconds=1.0, ieg_lag_seconds=1.0,
                  consumer_lag_records=10, join_miss_ratio=0.0, bus_ok=False, db_ok=True)


def _at(i: int) -> str:
    return f"2026-01-05T00:00:{i:02d}.000000Z"


def test_health_is_judged_by_its_worst_input():
    assert judge(GOOD, Limits()) == ("GREEN", [])
    assert judge(LAGGING, Limits()) == ("AMBER", ["OFP_LAG_AMBER"])
    assert judge(BUS_DOWN, Limits()) == ("RED", ["BUS_UNAVAILABLE"])
    unknown = Health(None, 1.0, 1.0, 0, 0.0, True, True)
    assert judge(unknown, Limits()) == ("AMBER", ["OFP_LAG_UNKNOWN"])
    misses = Health(1.0, 1.0, 1.0, 0, 0.5, True, True)
    assert judge(misses, Limits())[0] == "RED"


def test_the_posture_is_red_until_the_first_observation_then_what_it_shows():
    ladder = DegradeLadder()
    assert ladder.posture == "RED"
    entry = ladder.evaluate(GOOD, _at(0))
    assert entry is not None and entry.posture == "GREEN" and entry.previous is None and ladder.posture == "GREEN"


def test_worsening_takes_effect_at_once():
    ladder = DegradeLadder()
    ladder.evaluate(GOOD, _at(0))
    entry = ladder.evaluate(BUS_DOWN, _at(1))
    assert entry is not None and entry.posture == "RED" and entry.previous == "GREEN" and entry.reasons == ("BUS_UNAVAILABLE",)


def test_recovery_needs_consecutive_better_observations_and_goes_one_level_at_a_time():
    ladder = DegradeLadder(Limits(recover_after=3))
    ladder.evaluate(BUS_DOWN, _at(0))
    assert [ladder.evaluate(GOOD, _at(i)) for i in (1, 2)] == [None, None]
    step = ladder.evaluate(GOOD, _at(3))
    assert step is not None and step.posture == "AMBER" and step.reasons == ("RECOVERED",)
    assert [ladder.evaluate(GOOD, _at(i)) for i in (4, 5)] == [None, None]
    assert ladder.evaluate(GOOD, _at(6)).posture == "GREEN"  # type: ignore[union-attr]


def test_a_flapping_input_does_not_make_the_posture_flap():
    ladder = DegradeLadder(Limits(recover_after=3))
    ladder.evaluate(GOOD, _at(0))
    ladder.evaluate(LAGGING, _at(1))
    for i in range(2, 12):
        ladder.evaluate(GOOD if i % 2 else LAGGING, _at(i))
    assert ladder.posture == "AMBER"
    assert [e.posture for e in ladder.history] == ["GREEN", "AMBER"]


def test_history_entries_are_numbered_and_carry_their_own_digest():
    ladder = DegradeLadder(Limits(recover_after=1))
    for i, health in enumerate((GOOD, BUS_DOWN, GOOD, GOOD)):
        ladder.evaluate(health, _at(i))
    rows = [e.canonical() for e in ladder.history]
    assert [r["seq"] for r in rows] == [0, 1, 2, 3] and [r["posture"] for r in rows] == ["GREEN", "RED", "AMBER", "GREEN"]
    assert len({r["entry_sha256"] for r in rows}) == 4 and rows[1]["health"]["bus_ok"] is False


def test_an_impossible_health_input_is_refused():
    with pytest.raises(HealthInvalid):
        judge(Health(-1.0, 1.0, 1.0, 0, 0.0, True, True), Limits())
    with pytest.raises(HealthInvalid):
        judge(Health(1.0, 1.0, 1.0, 0, 1.5, True, True), Limits())
