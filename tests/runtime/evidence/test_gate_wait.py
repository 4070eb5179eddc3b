"""The gates' stall bound: a plane that keeps advancing is waited for, one that stands still fails."""

from __future__ import annotations

from runtime.case.committed import PlaneObservation
from runtime.decision.committed import LaneObservation
from runtime.evidence.gate_wait import StallBound
from runtime.rtdl.caught_up import Observation, Target


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_plane_that_keeps_advancing_is_waited_for_past_the_bound() -> None:
    clock = Clock()
    bound = StallBound(10.0, clock=clock)
    for done in range(50):  # 50 x 5 s = 250 s in all, far past the 10 s bound
        assert bound.left((done,)) == 10.0
        clock.now += 5.0


def test_a_plane_that_stands_still_fails_after_the_bound_from_its_last_progress() -> None:
    clock = Clock()
    bound = StallBound(10.0, clock=clock)
    assert bound.left((1,)) == 10.0
    clock.now += 4.0
    assert bound.left((2,)) == 10.0  # progress restarts the bound
    clock.now += 6.0
    assert bound.left((2,)) == 4.0
    clock.now += 4.0
    assert bound.left((2,)) <= 0
    assert bound.describe() == "10s without progress"


def test_a_zero_bound_fails_at_the_first_look() -> None:
    assert StallBound(0.0).left(("anything",)) <= 0


def _rtdl(positions: dict[str, dict[tuple[str, str], int]], end: int = 9) -> Observation:
    return Observation(positions, {}, {}, 0, [Target("t", "0", 0, end)])


def test_rtdl_progress_is_positions_and_the_run_s_last_offsets() -> None:
    before = _rtdl({"g": {("t", "0"): 3}})
    assert before.mark() != _rtdl({"g": {("t", "0"): 4}}).mark()
    assert before.mark() != _rtdl({"g": {("t", "0"): 3}}, end=12).mark()  # producers still publishing
    assert before.mark() == _rtdl({"g": {("t", "0"): 3}}).mark()


def _lane(decisions: int, executed: int = 0, logged: int = 0) -> LaneObservation:
    return LaneObservation(admitted=10, undecided=[], decisions=decisions, intents_expected=10, executed=executed,
                           logged={"decision": logged}, lineage_unresolved=0, health={}, dead_letters={})


def test_lane_progress_is_decisions_effects_and_audit_records() -> None:
    assert _lane(3).mark() != _lane(4).mark()
    assert _lane(3).mark() != _lane(3, executed=1).mark()
    assert _lane(3).mark() != _lane(3, logged=2).mark()
    assert _lane(3, 1, 2).mark() == _lane(3, 1, 2).mark()


def test_case_plane_progress_counts_what_is_still_to_publish() -> None:
    seen = _rtdl({"g": {("t", "0"): 3}})
    state = None  # the case state is not part of the mark
    a = PlaneObservation(seen, state, {"dla": 5}, {})  # type: ignore[arg-type]
    b = PlaneObservation(seen, state, {"dla": 2}, {})  # type: ignore[arg-type]
    assert a.mark() != b.mark()
