"""Live progress of a run in flight: per phase the events emitted, admitted and decided, the rate
of the phase's own counter and an ETA, from durable counts sampled every few seconds.

Why: a full-cap run streams for many minutes; without this the operator sees one `P6
STREAMING_ACTIVE ...` line and nothing until the phase ends. The controller samples while a phase's
job runs (controller/phases/compute.py), writes the latest sample to the run folder
(RUN_PROGRESS_PATH_PATTERN, schema-checked) so `fp status` on a run in flight shows the same, and
hands each sample to the operator's sink (a refreshed line on a terminal, a sparse line in CI logs).
This module is pure: the counts come from `controller.progress_probe`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import PlatformError
from runtime.evidence.writer import schema_violations

SCHEMA = "operate/run_progress.schema.json"
#: Which counter measures each phase's work, and which count it moves towards (None: the counter
#: drains to 0, as the workers' lag does while P8 waits for the RTDL core to catch up).
PHASE_COUNTERS: dict[str, tuple[str, str | None]] = {
    "P6": ("emitted", "planned"), "P7": ("admitted", "emitted"), "P8": ("lag", None),
    "P9": ("decided", "admitted_traffic"), "P10": ("decided", "admitted_traffic"),
}
#: Seconds of history the rate is measured over (the rate of the last minute, not of the whole phase).
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Counts:
    """Durable counts of the run at one moment (None: the source has nothing yet)."""

    emitted: int | None = None
    planned: int | None = None
    admitted: int | None = None
    admitted_traffic: int | None = None
    decided: int | None = None
    lag: int | None = None

    def value(self, name: str) -> int | None:
        """One count by name."""
        value: int | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class Sample:
    """One sample: when (monotonic seconds and UTC), in which phase, what the durable state said."""

    at_s: float
    at_utc: str
    phase_id: str
    counts: Counts


@dataclass(frozen=True)
class Progress:
    """What the operator is shown for the phase in flight."""

    phase_id: str
    at_utc: str
    started_at_utc: str
    counts: Counts
    counter: str | None
    target: str | None
    rate_per_s: float | None
    eta_s: float | None

    def to_document(self, platform_run_id: str) -> dict[str, Any]:
        """The run folder's progress file."""
        return {"platform_run_id": platform_run_id, "phase_id": self.phase_id, "written_at_utc": self.at_utc,
                "phase_started_at_utc": self.started_at_utc,
                "counts": {k: v for k, v in vars(self.counts).items() if v is not None},
                "counter": self.counter, "target": self.target,
                "rate_per_s": None if self.rate_per_s is None else round(self.rate_per_s, 1),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Progress:
        """The inverse of `to_document`."""
        return cls(str(doc["phase_id"]), str(doc["written_at_utc"]), str(doc["phase_started_at_utc"]),
                   Counts(**doc["counts"]), doc.get("counter"), doc.get("target"), doc.get("rate_per_s"), doc.get("eta_s"))


def progress_of(samples: list[Sample], started_at_utc: str) -> Progress:
    """Progress of the phase from its samples so far (the last one is now): the rate of the phase's
    counter over the last RATE_WINDOW_S, and the ETA of what is left of its target at that rate."""
    last = samples[-1]
    counter, target = PHASE_COUNTERS.get(last.phase_id, (None, None))
    rate = eta = None
    now_value = last.counts.value(counter) if counter else None
    if counter is not None and now_value is not None:
        window = [s for s in samples if s.at_s >= last.at_s - RATE_WINDOW_S and s.counts.value(counter) is not None]
        if len(window) >= 2 and window[-1].at_s > window[0].at_s:
            moved = now_value - (window[0].counts.value(counter) or 0)
            rate = max(0.0, (-moved if target is None else moved) / (window[-1].at_s - window[0].at_s))
        goal = 0 if target is None else last.counts.value(target)
        if goal is not None:
            left = abs(goal - now_value) if target is None else max(0, goal - now_value)
            eta = 0.0 if left == 0 else (left / rate if rate else None)
    return Progress(last.phase_id, last.at_utc, started_at_utc, last.counts, counter, target, rate, eta)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" if whole >= 3600 else f"{whole // 60}:{whole % 60:02d}"


def progress_line(p: Progress) -> str:
    """One line: `P6 emitted 1,234/40,000 admitted 1,200 decided 900 lag 12 | 2,450/s ETA 0:16` (the rate
    is that of the phase's counter; for P8 the lag drained per second)."""
    c = p.counts
    emitted = _n(c.emitted) + (f"/{_n(c.planned)}" if c.planned is not None else "")
    parts = [p.phase_id, f"emitted {emitted}", f"admitted {_n(c.admitted)}", f"decided {_n(c.decided)}"]
    if c.lag or p.counter == "lag":
        parts.append(f"lag {_n(c.lag)}")
    line = " ".join(parts)
    if p.rate_per_s is not None:
        line += f" | {p.rate_per_s:,.0f}/s"
    if p.eta_s is not None:
        line += f" ETA {_duration(p.eta_s)}"
    elif p.counter is not None:
        line += " ETA -"
    return line


class ProgressFileInvalid(PlatformError):
    """The run folder's progress file cannot be read or breaks its schema."""

    code = "PROGRESS_FILE_INVALID"
    next_step = "it is rewritten every few seconds while a phase runs; rerun `fp status`, or delete the file"


def write_progress(path: Path, platform_run_id: str, progress: Progress) -> None:
    """Write the progress file atomically (a reader never sees half a document), schema-checked."""
    document = progress.to_document(platform_run_id)
    problems = schema_violations(SCHEMA, document)
    if problems:
        raise ProgressFileInvalid(f"progress document breaks its schema: {problems[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def read_progress(path: Path) -> Progress | None:
    """The run's last progress sample; None when there is none."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ProgressFileInvalid(f"{path} is not readable JSON ({e})") from None
    problems = schema_violations(SCHEMA, document)
    if problems:
        raise ProgressFileInvalid(f"{path} breaks its schema: {problems[0]}")
    return Progress.from_document(document)


Sink = Callable[[Progress], None]


class SparseLines:
    """A sink for logs (CI, a pipe): one line per `every_s` at most, and only when something moved."""

    def __init__(self, emit: Callable[[str], None], *, every_s: float = 10.0, clock: Callable[[], float]):
        self.emit, self.every_s, self.clock = emit, every_s, clock
        self._last_at: float | None = None
        self._last_counts: Counts | None = None

    def __call__(self, progress: Progress) -> None:
        """Emit the line when `every_s` passed since the last one and the counts changed."""
        now = self.clock()
        if self._last_at is not None and now - self._last_at < self.every_s:
            return
        if progress.counts == self._last_counts:
            return
        self._last_at, self._last_counts = now, progress.counts
        self.emit(progress_line(progress))
