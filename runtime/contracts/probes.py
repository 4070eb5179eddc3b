"""Records that prove a boundary works but are not part of the scenario.

P4 pushes one smoke event through IG (`ig ready-check`) to prove the ingest path end to end. It is
admitted and lands on a context topic like any other record, but its ids and time come from the
run and the wall clock, so state built from it would differ per run and per bus. Every plane that
builds state from admitted records recognises it by its producer and counts it instead of applying
it; the archive still keeps it (it was admitted).
"""

from __future__ import annotations

from typing import Any

#: The producer name of P4's smoke event (runtime/ig/summaries.py uses it when it builds the event).
INGEST_PROBE_PRODUCER = "ig_ready_smoke"


def is_ingest_probe(envelope: Any) -> bool:
    """True for P4's smoke event."""
    return isinstance(envelope, dict) and envelope.get("producer") == INGEST_PROBE_PRODUCER
