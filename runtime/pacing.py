"""How soon a reader of the whole run may look again: at most a fixed share of its own time.

The gate jobs (P8, P9, P10) and the live obs daemons re-read durable state that grows with the run
(admissions, decisions, audit records, every hop's counts). At Gate-200 a look takes milliseconds;
at full cap it takes seconds, and looking again at a fixed interval would keep PostgreSQL scanning
while the spine it waits for needs the CPU. After a look that took t seconds a reader pauses at
least t * (1 / duty - 1), so it spends at most `duty` of its time looking.
"""

from __future__ import annotations


def pause_after(took_s: float, interval_s: float, duty: float) -> float:
    """Seconds to wait before the next look: `interval_s`, stretched so looking stays within `duty`."""
    return max(interval_s, took_s * (1 / duty - 1))
