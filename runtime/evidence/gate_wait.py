"""How long a gate job (P8, P9, P10) waits for its plane: until the plane stands still, not for a fixed time.

A fixed wall-clock bound cannot serve both a bounded gate run and a full-cap run: a 500k-event run
keeps the decision lane busy for far longer than any bound that would also catch a stuck 200-event
run quickly. A gate therefore waits as long as what it watches advances (positions, counts of the
plane's durable truth), and fails closed once nothing has advanced for `stall_s` seconds (the
jobs' `--wait`). A plane that stops advancing short of the goal is stuck whatever the run's size;
a plane that advances reaches the goal, since its input is finite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

#: The most of its time a gate job spends looking at its plane (runtime/pacing.py): at full cap one
#: look reads hundreds of thousands of rows.
LOOK_DUTY = 0.1
#: The same once the plane's slowest worker has read all of its input (P9: DF): what is left
#: finishes within seconds, and a 20 s look paced at LOOK_DUTY would sleep minutes past the end.
CLOSING_LOOK_DUTY = 0.5


@dataclass
class StallBound:
    """Seconds a gate may still wait, restarted each time the watched progress mark changes."""

    stall_s: float
    clock: Callable[[], float] = time.monotonic
    _mark: Hashable | None = field(default=None, init=False)
    _since: float | None = field(default=None, init=False)

    def left(self, mark: Hashable) -> float:
        """Seconds left after observing `mark` (what the plane has done so far); <= 0: stuck."""
        now = self.clock()
        if self._since is None or mark != self._mark:
            self._mark, self._since = mark, now
        return self._since + self.stall_s - now

    def describe(self) -> str:
        """The bound in an operator's words, for the failure message."""
        return f"{self.stall_s:.0f}s without progress"
