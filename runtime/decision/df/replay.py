"""Decide a whole stream of admitted records through the in-memory RTDL domains: the offline path.

Records are taken in the total order (ts_utc, event_id); each traffic event is decided as of
itself (inputs strictly before it), then every record is applied to OFP, IEG and CSFB. This is
the path the decision-quality benchmark, the truth-boundary test and the backtest
(runtime/decision/backtest.py) use:
the same `decide` as live DF, on the same point-in-time answers, with no actions taken. Its only
input is the admitted records; the oracle's truth is never passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from runtime.decision.bundle import Policy
from runtime.decision.df.domain import DecisionInputs, DecisionRecord, decide
from runtime.decision.df.inputs import inputs_from_states
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.events import ANCHOR_CLASSES, ARRIVAL_EVENTS, TRAFFIC_CLASSES
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ofp.domain import OfpState

#: Evict OFP facts past the horizon every so many events (eviction never changes an answer).
EVICT_EVERY = 5000


def stream_order(envelopes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records in the total order (ts_utc as written by WSP, then event_id)."""
    from runtime.rtdl.events import parse_ts_micros

    return sorted(envelopes, key=lambda e: (parse_ts_micros(e["ts_utc"]), e["event_id"]))


def decide_stream(envelopes: Iterable[dict[str, Any]], policy: Policy, *, pinned_digest: str, posture: str = "GREEN",
                  posture_of: Callable[[dict[str, Any]], str] | None = None,
                  ) -> Iterator[tuple[dict[str, Any], DecisionInputs, DecisionRecord]]:
    """(envelope, inputs, decision) for every traffic record of `envelopes`, deciding each as of itself
    under `posture`, or under `posture_of(envelope)` (a backtest: the posture the live run recorded).

    `envelopes` must already be in the total order (`stream_order`).
    """
    ofp, ieg, csfb = OfpState(), IegState(), CsfbState()
    decided = 0
    for envelope in envelopes:
        event_class = envelope["event_class"]
        if event_class in TRAFFIC_CLASSES:
            inputs = inputs_from_states(envelope, ofp, ieg, csfb)
            in_force = posture_of(envelope) if posture_of is not None else posture
            yield envelope, inputs, decide(envelope, inputs, policy, in_force, pinned_digest=pinned_digest)
            ofp.apply(envelope)
            decided += 1
            if decided % EVICT_EVERY == 0:
                ofp.evict()
        if event_class in TRAFFIC_CLASSES or event_class in ANCHOR_CLASSES or event_class == ARRIVAL_EVENTS:
            csfb.apply(envelope)
        ieg.apply(envelope)
