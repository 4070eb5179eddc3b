"""Readers of the whole run look again at their interval, or later when a look grows slow."""

from __future__ import annotations

import pytest

from runtime.pacing import pause_after


def test_a_quick_look_keeps_the_interval() -> None:
    assert pause_after(0.001, 2.0, 0.1) == 2.0


def test_a_slow_look_stretches_the_pause_to_keep_looking_within_the_duty() -> None:
    took = 3.0
    pause = pause_after(took, 2.0, 0.1)
    assert pause == pytest.approx(27.0)
    assert took / (took + pause) == pytest.approx(0.1)
