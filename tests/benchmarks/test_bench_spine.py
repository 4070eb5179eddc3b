"""bench_spine's own arithmetic: RSS and CPU read from /proc, the sample at a moment, the growth it flags."""

from __future__ import annotations

import os
import time

from benchmarks.bench_spine import RSS_GROWTH_LIMIT, growth, machine_busy_seconds, rss_at, rss_bytes


def test_rss_is_read_for_a_live_process_and_none_for_a_gone_one() -> None:
    rss = rss_bytes(os.getpid())
    assert rss is not None and rss > 1_000_000
    assert rss_bytes(2**22 + 12345) is None  # above the default pid_max


def test_the_sample_at_a_moment_is_the_first_at_or_after_it_else_the_last() -> None:
    samples = [(10.0, 100), (11.0, 120), (12.0, 150)]
    assert rss_at(samples, 10.5) == 120
    assert rss_at(samples, 11.0) == 120
    assert rss_at(samples, 99.0) == 150
    assert rss_at([], 1.0) is None


def test_growth_above_the_limit_is_what_gets_flagged() -> None:
    assert growth(100, 125) == 0.25 and RSS_GROWTH_LIMIT < 0.25
    assert growth(100, 110) == 0.10 and RSS_GROWTH_LIMIT >= 0.10
    assert growth(None, 110) is None and growth(100, None) is None


def test_machine_busy_time_counts_a_busy_loop_and_never_more_than_every_core() -> None:
    before, started = machine_busy_seconds(), time.monotonic()
    while time.monotonic() - started < 0.5:
        pass
    busy, wall = machine_busy_seconds() - before, time.monotonic() - started
    assert busy >= 0.3  # this loop kept one core busy for the whole window
    assert busy <= wall * (os.cpu_count() or 1) + 0.05
