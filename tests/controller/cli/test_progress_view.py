"""The operator's progress sinks: a terminal line refreshed in place that leaves its last text,
and sparse log lines that end on the final counts."""

from __future__ import annotations

import io

from rich.console import Console

from controller.cli.progress_view import LiveLine, LogLines, progress_options
from controller.progress import Counts, Progress


def _progress(emitted: int) -> Progress:
    return Progress("P6", "2026-11-23T12:00:10Z", "2026-11-23T12:00:00Z", Counts(emitted=emitted, planned=100),
                    "emitted", "planned", 10.0, (100 - emitted) / 10)


def test_a_terminal_refreshes_one_line_and_keeps_the_last_one() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    sink = LiveLine(console)
    for emitted in (10, 50, 100):
        sink(_progress(emitted))
    sink(None)
    kept = [line for line in out.getvalue().splitlines() if "P6 emitted 100/100" in line]
    assert kept and "ETA 0:00" in kept[-1]
    assert progress_options(console)["progress_every_s"] == 3.0


def test_a_log_ends_on_the_final_counts_once() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    sink = LogLines(console, every_s=3600)
    for emitted in (10, 50, 100):
        sink(_progress(emitted))
    sink(None)
    assert out.getvalue().splitlines() == ["  P6 emitted 10/100 admitted - decided - | 10/s ETA 0:09",
                                           "  P6 emitted 100/100 admitted - decided - | 10/s ETA 0:00"]
    assert progress_options(console)["progress_every_s"] == 10.0
