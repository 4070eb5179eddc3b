"""How a run's live progress reaches the operator: on a terminal one line refreshed in place every
few seconds (kept when the phase's job ends), in a pipe or a CI log one plain line per ~10 s."""

from __future__ import annotations

import time

from rich.console import Console
from rich.status import Status

from controller.progress import Progress, SparseLines, progress_line
from controller.progress_probe import ProgressSink

#: Sampling interval on a terminal, and in a log (where each sample is at most one line).
TERMINAL_EVERY_S = 3.0
LOG_EVERY_S = 10.0


class LiveLine:
    """A terminal sink: a status line updated in place; its last text is printed once the job ends."""

    def __init__(self, console: Console):
        self.console = console
        self._status: Status | None = None
        self._last: str | None = None

    def __call__(self, progress: Progress | None) -> None:
        """Update the line, or (None) stop refreshing it and keep its last text."""
        if progress is None:
            if self._status is not None:
                self._status.stop()
                self._status = None
            if self._last:
                self.console.print(f"  {self._last}", style="dim", highlight=False)
            self._last = None
            return
        self._last = progress_line(progress)
        if self._status is None:
            self._status = self.console.status(self._last)
            self._status.start()
        else:
            self._status.update(self._last)


class LogLines:
    """A log sink: sparse lines while the job runs, and the last counts once it ended."""

    def __init__(self, console: Console, every_s: float = LOG_EVERY_S):
        self.console = console
        self._lines = SparseLines(self._emit, every_s=every_s, clock=time.monotonic)
        self._last: Progress | None = None
        self._printed: str | None = None

    def _emit(self, line: str) -> None:
        self._printed = line
        self.console.print(f"  {line}", highlight=False, soft_wrap=True)

    def __call__(self, progress: Progress | None) -> None:
        """A line per `every_s` at most; at the end, the final counts unless just printed."""
        if progress is None:
            if self._last is not None and progress_line(self._last) != self._printed:
                self._emit(progress_line(self._last))
            self._last, self._printed = None, None
            self._lines = SparseLines(self._emit, every_s=self._lines.every_s, clock=time.monotonic)
            return
        self._last = progress
        self._lines(progress)


def progress_options(console: Console) -> dict[str, object]:
    """The run options that turn live progress on for this console (`run_progress`, `progress_every_s`)."""
    # a log line is due every LOG_EVERY_S; a sample a little early (thread timing) must not skip one
    sink: ProgressSink = LiveLine(console) if console.is_terminal else LogLines(console, every_s=LOG_EVERY_S - 1)
    return {"run_progress": sink, "progress_every_s": TERMINAL_EVERY_S if console.is_terminal else LOG_EVERY_S}
