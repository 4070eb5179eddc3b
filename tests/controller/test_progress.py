"""Live progress, pure part: rate over the last minute, ETA of what is left, one short line, sparse
log lines, and a progress file that is schema-checked both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.progress import (
    Counts,
    Progress,
    ProgressFileInvalid,
    Sample,
    SparseLines,
    progress_line,
    progress_of,
    read_progress,
    write_progress,
)

RUN = "platform_20261123T120000Z"
STARTED = "2026-11-23T12:00:00Z"


def _sample(at: float, phase: str = "P6", **counts: int) -> Sample:
    return Sample(at, f"2026-11-23T12:00:{int(at) % 60:02d}Z", phase, Counts(**counts))


def test_streaming_rate_and_eta_come_from_emitted_towards_planned() -> None:
    samples = [_sample(0, emitted=0, planned=10_000), _sample(10, emitted=2_000, planned=10_000, admitted=1_900)]
    p = progress_of(samples, STARTED)
    assert p.counter == "emitted" and p.target == "planned"
    assert p.rate_per_s == pytest.approx(200.0)
    assert p.eta_s == pytest.approx(40.0)
    assert progress_line(p) == "P6 emitted 2,000/10,000 admitted 1,900 decided - | 200/s ETA 0:40"


def test_the_rate_is_that_of_the_last_minute_not_of_the_whole_phase() -> None:
    samples = [_sample(0, "P9", decided=0, admitted_traffic=50_000), _sample(100, "P9", decided=1_000, admitted_traffic=50_000),
               _sample(160, "P9", decided=7_000, admitted_traffic=50_000)]
    p = progress_of(samples, STARTED)
    assert p.rate_per_s == pytest.approx(100.0)  # (7000 - 1000) / 60 s, not 7000 / 160 s
    assert p.eta_s == pytest.approx(430.0)
    assert progress_line(p).endswith("| 100/s ETA 7:10")


def test_a_stalled_phase_has_no_eta_and_a_finished_one_has_zero() -> None:
    stalled = progress_of([_sample(0, "P9", decided=10, admitted_traffic=20), _sample(5, "P9", decided=10, admitted_traffic=20)],
                          STARTED)
    assert stalled.rate_per_s == 0.0 and stalled.eta_s is None
    assert progress_line(stalled).endswith("| 0/s ETA -")
    done = progress_of([_sample(0, "P9", decided=20, admitted_traffic=20)], STARTED)
    assert done.rate_per_s is None and done.eta_s == 0.0


def test_p8_measures_the_lag_draining_to_zero() -> None:
    samples = [_sample(0, "P8", lag=900, decided=5), _sample(10, "P8", lag=600, decided=5)]
    p = progress_of(samples, STARTED)
    assert p.counter == "lag" and p.target is None
    assert p.rate_per_s == pytest.approx(30.0) and p.eta_s == pytest.approx(20.0)
    assert progress_line(p) == "P8 emitted - admitted - decided 5 lag 600 | 30/s ETA 0:20"
    caught_up = progress_of([*samples, _sample(20, "P8", lag=0, decided=5)], STARTED)
    assert caught_up.eta_s == 0.0 and progress_line(caught_up) == "P8 emitted - admitted - decided 5 lag 0 | 45/s ETA 0:00"


def test_a_log_gets_one_line_per_interval_and_none_when_nothing_moved() -> None:
    lines: list[str] = []
    now = [0.0]
    sink = SparseLines(lines.append, every_s=10.0, clock=lambda: now[0])
    for second in range(0, 35):
        now[0] = float(second)
        sink(progress_of([_sample(second, emitted=second // 20)], STARTED))  # moves once, at 20 s
    assert len(lines) == 2, lines  # at 0 s and at 20 s; at 10 s and 30 s nothing had moved
    assert lines[0].startswith("P6 emitted 0") and lines[1].startswith("P6 emitted 1")


def test_the_progress_file_round_trips_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "progress/run_progress.json"
    p = progress_of([_sample(0, emitted=0, planned=100), _sample(2, emitted=50, planned=100, lag=3)], STARTED)
    write_progress(path, RUN, p)
    back = read_progress(path)
    assert back == Progress.from_document(p.to_document(RUN))
    assert back is not None and back.counts.lag == 3 and back.eta_s == pytest.approx(2.0)
    assert read_progress(tmp_path / "absent.json") is None
    document = json.loads(path.read_text())
    document["counts"]["emitted"] = -1
    path.write_text(json.dumps(document))
    with pytest.raises(ProgressFileInvalid) as info:
        read_progress(path)
    assert info.value.code == "PROGRESS_FILE_INVALID" and "counts/emitted" in info.value.message
