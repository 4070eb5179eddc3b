"""Giving the memory a batch freed back to the operating system, so a daemon's RSS follows what it holds.

A stream worker's batch is transient: up to `WorkerConfig.batch_size` records, their decoded
envelopes, SQL parameters, outbox records and object bytes, all freed when the batch commits.
glibc keeps freed chunks in its heaps (one arena per thread that allocated: the loop, the health
thread, an archive put pool) instead of returning them, so RSS rises to the largest batches and
the most fragmented arenas seen so far and never comes down: a worker that falls behind (full
batches from then on) looks like one whose memory grows with the events (issue 16 item 4,
docs/performance.md). `malloc_trim(0)` returns the free pages of every arena (madvise); it walks
every free chunk, 15-70 ms on a fragmented 150 MiB heap, so the worker's health thread calls it
(off the loop's path; ctypes releases the GIL) once batches have finished, at most every
`TRIM_INTERVAL_S`. Where the C library is not glibc (macOS, musl) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

#: The shortest time between two trims (a batch takes ~0.1..2 s and a trim up to ~70 ms: after
#: every batch it would cost up to a tenth of the loop's time).
TRIM_INTERVAL_S = 5.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


class FreedMemory:
    """Returns freed heap pages to the OS, at most every `interval_s` (see the module docstring)."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 trim: Callable[[int], int] | None = _TRIM):
        self.interval_s = interval_s
        self.clock = clock
        self.trim = trim
        self.trims = 0
        #: Seconds spent trimming (what giving the pages back cost the loop).
        self.seconds = 0.0
        self._last = float("-inf")

    def release(self) -> bool:
        """Trim the heaps if the interval has passed; True when it did."""
        if self.trim is None:
            return False
        now = self.clock()
        if now - self._last < self.interval_s:
            return False
        started = time.perf_counter()
        self.trim(0)
        self.seconds += time.perf_counter() - started
        self._last = self.clock()
        self.trims += 1
        return True
