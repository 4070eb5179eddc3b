"""bench_spine's own arithmetic: RSS read from /proc, the sample at a moment, the growth it flags."""

from __future__ import annotations

import os

from benchmarks.bench_spine import RSS_GROWTH_LIMIT, growth, rss_at, rss_bytes


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
