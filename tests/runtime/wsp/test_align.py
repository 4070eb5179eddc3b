"""WSP's event-time alignment: no output runs ahead of the others beyond its lead, no deadlock,
and a failed output releases the ones waiting on it."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from runtime.contracts.ids import event_time_micros
from runtime.wsp.align import AlignmentStopped, EventTimeAlignment
from runtime.wsp.stream import StreamKnobs, stream_output

SECOND = 1_000_000


class RecordingIg:
    """An IG client that answers ADMIT and records, per push, which rows every output had answered."""

    def __init__(self, log: list[tuple[str, list[int]]], lock: threading.Lock, output_id: str):
        self.log, self.lock, self.output_id = log, lock, output_id

    def push(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            self.log.append((self.output_id, [event_time_micros(e["ts_utc"]) or 0 for e in events]))
        return [{"outcome": "ADMIT"} for _ in events]

    def close(self) -> None:
        """Nothing to release."""


def _rows(seconds: list[int]) -> list[dict[str, Any]]:
    iso = [datetime.fromtimestamp(s, UTC).isoformat().replace("+00:00", "Z") for s in sorted(seconds)]
    return [{"event_id": f"{i:032x}", "ts_utc": ts} for i, ts in enumerate(iso)]


def _stream_all(views: dict[str, list[int]], leads: dict[str, int], batch_size: int = 7) -> list[tuple[str, list[int]]]:
    alignment = EventTimeAlignment({o: leads.get(o, 0) * SECOND for o in views})
    log: list[tuple[str, list[int]]] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def one(output_id: str) -> None:
        try:
            stream_output(output_id, iter(_rows(views[output_id])), RecordingIg(log, lock, output_id),  # type: ignore[arg-type]
                          StreamKnobs(batch_size=batch_size, retry_max_attempts=1, retry_backoff_ms=0), resumed_from=0,
                          advance=lambda n, frontier, ended: None, stop=stop, progress=lambda line: None,
                          alignment=alignment)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(o,)) for o in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    return log


def test_no_output_is_sent_ahead_of_the_others_frontiers_beyond_its_lead() -> None:
    # contexts seven and three times denser than traffic: left alone they would trail it in event time
    rng = random.Random(7)
    views = {"traffic": [rng.randrange(0, 10_000) for _ in range(60)],
             "arrivals": [rng.randrange(0, 10_000) for _ in range(400)],
             "anchors": [rng.randrange(0, 10_000) for _ in range(150)]}
    leads = {"arrivals": 300, "anchors": 300}
    log = _stream_all(views, leads)
    answered = dict.fromkeys(views, 0)

    def frontier(output_id: str) -> float:  # the first row of the output not answered yet
        rows = sorted(views[output_id])
        return rows[answered[output_id]] * SECOND if answered[output_id] < len(rows) else float("inf")

    for output_id, batch in log:
        others = min(frontier(o) for o in views if o != output_id)
        assert max(batch) <= others + leads.get(output_id, 0) * SECOND
        answered[output_id] += len(batch)
    assert answered == {o: len(v) for o, v in views.items()}


def test_outputs_with_gaps_in_event_time_never_deadlock() -> None:
    rng = random.Random(11)
    for _ in range(20):
        views = {f"o{i}": [rng.choice([rng.randrange(0, 50), rng.randrange(5_000, 5_050)]) for _ in range(rng.randrange(0, 40))]
                 for i in range(4)}
        log = _stream_all(views, {"o1": rng.randrange(0, 100), "o2": 0}, batch_size=rng.randrange(1, 9))
        assert sum(len(b) for _, b in log) == sum(len(v) for v in views.values())


def test_a_waiting_output_stops_when_another_output_fails() -> None:
    alignment = EventTimeAlignment({"traffic": 0, "arrivals": 0})
    alignment.frontier("arrivals", 10 * SECOND)
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    with pytest.raises(AlignmentStopped) as raised:
        alignment.wait("traffic", 20 * SECOND, stop, poll_s=0.05)
    assert raised.value.code == "WSP_STOPPED"
    alignment.frontier("arrivals", None)  # ended (or failed): holds no one back
    assert alignment.allowed("traffic", 10**12)
