"""Event-time alignment of WSP's outputs, so no output trails the traffic it gives context to.

Each output streams on its own thread. Left alone, each runs at its own pace in event time: a
large context output trails the traffic, and DF, which decides a traffic event only once every
context output has passed the event's time (runtime/decision/df/store.py), would wait on every
batch. Like the watermark alignment of streaming engines (a source that runs ahead pauses), an
output may take a row into its batch only when the row's time is at most the lowest frontier of
the other outputs still streaming, plus the output's own lead: context outputs may lead traffic
by `WSP_CONTEXT_LEAD_SECONDS` of event time, traffic leads nothing.

An output's frontier is the time of its first row IG has not answered yet (the row it holds when
its batch is empty). A blocked output first sends what it holds, so its frontier is the row it
waits with; the output with the lowest frontier can always go, so alignment never deadlocks. An
output whose frontier is not known yet (it has not read its first row) holds the others back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from runtime.errors import PlatformError


class AlignmentStopped(PlatformError):
    """Another output failed while this one waited for the others to catch up."""

    code = "WSP_STOPPED"


_UNKNOWN = -(2**63)


class EventTimeAlignment:
    """The frontiers of a run's outputs and the rule that holds back an output running ahead."""

    def __init__(self, leads_micros: Mapping[str, int]):
        self._cond = threading.Condition()
        self._lead = {o: max(0, int(v)) for o, v in leads_micros.items()}
        self._frontier: dict[str, int] = dict.fromkeys(self._lead, _UNKNOWN)

    def frontier(self, output_id: str, ts_micros: int | None) -> None:
        """Record the time of `output_id`'s first unanswered row; None: it has nothing more to send."""
        with self._cond:
            if ts_micros is None:
                self._frontier.pop(output_id, None)
            elif output_id in self._frontier:
                self._frontier[output_id] = ts_micros
            self._cond.notify_all()

    def allowed(self, output_id: str, ts_micros: int) -> bool:
        """Whether `output_id` may take a row at `ts_micros` into its batch now."""
        with self._cond:
            return self._allowed(output_id, ts_micros)

    def _allowed(self, output_id: str, ts_micros: int) -> bool:
        others = [f for o, f in self._frontier.items() if o != output_id]
        return not others or ts_micros <= min(others) + self._lead.get(output_id, 0)

    def wait(self, output_id: str, ts_micros: int, stop: threading.Event, *, poll_s: float = 0.2) -> float:
        """Block until `output_id` may take its row at `ts_micros` (its frontier is that row);
        returns the seconds waited. AlignmentStopped once `stop` is set."""
        started = time.monotonic()
        with self._cond:
            if output_id in self._frontier:
                self._frontier[output_id] = ts_micros
                self._cond.notify_all()
            while not self._allowed(output_id, ts_micros):
                if stop.is_set():
                    raise AlignmentStopped(f"{output_id} stopped while waiting for the other outputs to reach its "
                                           "event time, because another output failed")
                self._cond.wait(poll_s)
        return time.monotonic() - started
