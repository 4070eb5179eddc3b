"""Giving freed memory back after a batch: at most once per interval, a no-op without glibc (the
loop's use of it: tests/runtime/worker/test_loop.py)."""

from __future__ import annotations

import sys

import pytest

from runtime.worker.memory import TRIM_INTERVAL_S, FreedMemory
from tests.runtime.worker.test_health import Clock


def test_the_heaps_are_trimmed_at_most_once_per_interval() -> None:
    calls: list[int] = []
    clock = Clock()
    memory = FreedMemory(interval_s=1.0, clock=clock, trim=lambda pad: calls.append(pad) or 1)
    assert memory.release() is True
    clock.now += 0.5
    assert memory.release() is False
    clock.now += 0.6
    assert memory.release() is True
    assert calls == [0, 0] and memory.trims == 2


def test_without_a_malloc_trim_release_does_nothing() -> None:
    memory = FreedMemory(trim=None)
    assert memory.release() is False and memory.trims == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_malloc_trim_is_found_and_callable_on_linux() -> None:
    memory = FreedMemory()
    assert memory.trim is not None
    assert memory.release() is True and memory.trims == 1
    assert TRIM_INTERVAL_S > 0
