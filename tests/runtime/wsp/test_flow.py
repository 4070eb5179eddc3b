"""WSP's flow control: pushes wait while a store DF reads, or DF, is far behind on a partition, and never stall for good."""

from __future__ import annotations

import threading

import pytest

from runtime.db.postgres import Database
from runtime.errors import TransientError
from runtime.worker.store import Lags
from runtime.wsp.flow import FlowGate, FlowLimits, above_low, over_high, worst_lag

G = ("fp_ieg", "fp.bus.traffic.fraud.v1", "1")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


LIMITS = FlowLimits(high=1000, low=500)


def _gate(lags: list[int], limits: FlowLimits = LIMITS) -> tuple[FlowGate, Clock, list[int]]:
    """A gate whose reads return `lags` in turn (the last one for ever); the list of reads made."""
    clock, reads = Clock(), []

    def read() -> Lags:
        value = lags[min(len(reads), len(lags) - 1)]
        reads.append(value)
        return {G: value, ("fp_ofp", "fp.bus.traffic.fraud.v1", "0"): 3}
    return FlowGate(read, limits, clock=clock, sleep=clock.sleep), clock, reads


def test_worst_lag_names_the_partition_furthest_behind() -> None:
    assert worst_lag({}) == (None, 0)
    assert worst_lag({("a", "t", "0"): 0}) == (None, 0)
    assert worst_lag({("a", "t", "0"): 5, ("b", "t", "1"): 9, ("a", "t", "1"): 2}) == (("b", "t", "1"), 9)


def test_a_push_does_not_wait_while_every_partition_is_within_the_high_mark() -> None:
    gate, clock, reads = _gate([1000])
    assert gate.wait_for_room(threading.Event()) == 0.0
    assert gate.wait_for_room(threading.Event()) == 0.0
    assert reads == [1000]  # looked once within look_s
    clock.now = 0.5
    gate.wait_for_room(threading.Event())
    assert len(reads) == 2 and gate.waits == 0


def test_a_push_waits_while_a_store_is_behind_until_it_is_back_at_the_low_mark() -> None:
    gate, clock, reads = _gate([5000, 3000, 900, 501, 500, 10])
    lines: list[str] = []
    gate.progress = lines.append
    waited = gate.wait_for_room(threading.Event())
    assert reads == [5000, 3000, 900, 501, 500]  # 900 is under high but not yet at low: hysteresis
    assert waited == pytest.approx(2.0) and clock.now == pytest.approx(2.0)
    assert gate.summary() == {"high": 1000, "low": 500, "by_group": {}, "waits": 1, "waited_s": 2.0, "stalls": 0, "look_errors": 0,
                              "worst_lag": 5000}
    assert lines == ["WSP flow control: fp_ieg fp.bus.traffic.fraud.v1[1] 5,000 records behind; pushes wait until at most 500"]


D = ("fp_df", "fp.bus.traffic.fraud.v1", "0")
WITH_DF = FlowLimits(high=1000, low=500, by_group={"fp_df": (200, 50)})


def test_a_group_with_its_own_marks_is_held_to_them_and_the_others_to_the_common_ones() -> None:
    assert over_high({G: 900, D: 150}, WITH_DF) is None
    assert over_high({G: 900, D: 201}, WITH_DF) == D
    assert over_high({G: 1300, D: 250}, WITH_DF) == G  # furthest above its own mark: 300 against 50
    assert above_low({G: 500, D: 50}, WITH_DF) == {}
    assert above_low({G: 600, D: 60}, WITH_DF) == {G: 100, D: 10}


def test_a_push_waits_for_df_until_both_df_and_the_stores_are_at_their_low_marks() -> None:
    seq = [{G: 100, D: 900}, {G: 700, D: 300}, {G: 400, D: 60}, {G: 450, D: 50}, {G: 0, D: 0}]
    clock, reads = Clock(), []

    def read() -> Lags:
        reads.append(1)
        return seq[min(len(reads) - 1, len(seq) - 1)]
    lines: list[str] = []
    gate = FlowGate(read, WITH_DF, clock=clock, sleep=clock.sleep, progress=lines.append)
    assert gate.wait_for_room(threading.Event()) == pytest.approx(1.5) and len(reads) == 4
    assert lines == ["WSP flow control: fp_df fp.bus.traffic.fraud.v1[0] 900 records behind; pushes wait until at most 50"]
    assert gate.summary()["by_group"] == {"fp_df": {"high": 200, "low": 50}} and gate.summary()["worst_lag"] == 900


def test_a_wait_ends_when_the_lag_stops_shrinking_for_the_stall_bound() -> None:
    limits = FlowLimits(high=1000, low=500, look_s=1.0, stall_s=10.0)
    gate, _, _ = _gate([5000, 4000, 4000, 4100], limits)
    waited = gate.wait_for_room(threading.Event())
    # best 4000 at t=1; no lower lag until t=11: the wait ends there and the stall is counted
    assert waited == pytest.approx(11.0) and gate.stalls == 1 and gate.waits == 1


def test_a_stop_ends_a_wait() -> None:
    gate, _, reads = _gate([5000])
    stop = threading.Event()
    gate.sleep = lambda s: stop.set()
    gate.wait_for_room(stop)
    assert len(reads) == 1 and gate.waits == 1


def test_a_failed_read_of_the_lags_is_counted_and_never_holds_the_stream() -> None:
    def broken() -> Lags:
        raise TransientError("database unavailable", code="DB_UNAVAILABLE")
    gate = FlowGate(broken, FlowLimits(high=10, low=5))
    assert gate.wait_for_room(threading.Event()) == 0.0
    assert gate.look_errors == 1 and gate.waits == 0


def test_the_outputs_wait_together_while_one_of_them_waits() -> None:
    gate, clock, _ = _gate([5000, 5000, 400])
    entered = threading.Event()
    release = threading.Event()

    def slow_sleep(seconds: float) -> None:
        entered.set()
        release.wait(5)
        clock.now += seconds
    gate.sleep = slow_sleep
    first = threading.Thread(target=gate.wait_for_room, args=(threading.Event(),))
    first.start()
    assert entered.wait(5)
    second_done = threading.Event()
    second = threading.Thread(target=lambda: (gate.wait_for_room(threading.Event()), second_done.set()))
    second.start()
    assert not second_done.wait(0.2)  # held while the first output waits
    release.set()
    first.join(5)
    second.join(5)
    assert second_done.is_set()


def test_every_push_of_a_stream_passes_the_gate_and_its_wait_is_the_outputs_flow_wait() -> None:
    from runtime.wsp.stream import StreamKnobs, stream_output

    pushed: list[int] = []
    lags = iter([0, 9000, 0] + [0] * 10)  # the second push finds a store 9,000 records behind
    clock = Clock()

    class Ig:
        def push(self, events: list[dict]) -> list[dict]:
            pushed.append(len(events))
            return [{"outcome": "ADMIT"} for _ in events]

    gate = FlowGate(lambda: {G: next(lags)}, FlowLimits(high=1000, low=500, look_s=0.0), clock=clock, sleep=clock.sleep)
    gate.sleep = lambda s: setattr(clock, "now", clock.now + 2.5)
    rows = [{"event_id": f"{i:032x}", "ts_utc": f"2026-01-01T00:00:{i:02d}Z"} for i in range(25)]
    stats = stream_output("o", iter(rows), Ig(), StreamKnobs(batch_size=10, retry_max_attempts=1, retry_backoff_ms=0),  # type: ignore[arg-type]
                          resumed_from=0, advance=lambda n, f, e: None, stop=threading.Event(), progress=lambda line: None,
                          flow=gate)
    assert pushed == [10, 10, 5] and stats.emitted == 25
    assert stats.flow_wait_s == pytest.approx(2.5) and stats.summary()["flow_wait_s"] == 2.5 and gate.waits == 1


# -- the gate of a run ------------------------------------------------------------------------------

def test_the_gate_of_a_run_watches_the_stores_df_reads_and_df_and_is_off_at_zero(runtime_dsn: str, monkeypatch) -> None:
    from runtime.components import consumer_group_id
    from runtime.settings import load_settings
    from runtime.wsp.flow import flow_gate

    settings = load_settings({"FP_ENV": "local_parity", "FP_DB_DSN": runtime_dsn})
    run = "platform_20260101T000000Z"
    lines: list[str] = []
    database = Database(runtime_dsn, name="wsp flow test", max_size=1)
    registry_type, integer = type(settings.registry), type(settings.registry).integer
    try:
        assert (settings.registry.integer("WSP_FLOW_LAG_HIGH"), settings.registry.integer("WSP_FLOW_LAG_LOW")) == (4000, 1000)
        gate = flow_gate(settings, run, database, lines.append)
        assert gate is not None and (gate.limits.high, gate.limits.low) == (4000, 1000)
        assert dict(gate.limits.by_group) == {consumer_group_id(settings.registry, "df", run): (2000, 500)}
        assert gate.read_lags() == {}  # nothing admitted for this run: nothing behind
        assert lines == ["WSP flow control on: pushes wait while ofp, ieg, csfb are more than 4000 records behind on a"
                         " partition (resume at 1000), df more than 2000 (resume at 500)"]
        monkeypatch.setattr(registry_type, "integer", lambda self, key: 0 if key == "WSP_FLOW_LAG_HIGH" else integer(self, key))
        assert flow_gate(settings, run, database, lines.append) is None and len(lines) == 1  # 0: off, silently
        monkeypatch.setattr(registry_type, "integer", lambda self, key: 0 if key == "WSP_FLOW_DF_LAG_HIGH" else integer(self, key))
        gate = flow_gate(settings, run, database, lines.append)
        assert gate is not None and gate.limits.by_group == {} and lines[-1].endswith("(resume at 1000)")  # DF not watched
    finally:
        database.close()
