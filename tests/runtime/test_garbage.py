"""The cycle collector of a worker process runs between batches, and is put back as it was."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime.garbage import BULK_THRESHOLDS, BatchCollection


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_start_freezes_what_exists_and_turns_automatic_collection_off_and_stop_puts_it_back() -> None:
    gc.enable()
    collection = BatchCollection()
    collection.start()
    assert collection.active and not gc.isenabled() and gc.get_freeze_count() > 0
    collection.stop()
    assert not collection.active and gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off_after_stop() -> None:
    gc.disable()
    collection = BatchCollection()
    collection.start()
    collection.stop()
    assert not gc.isenabled()


def test_a_cycle_a_batch_left_is_freed_after_that_batch_and_not_before() -> None:
    collection = BatchCollection(full_interval_s=3600.0)
    collection.start()
    try:
        watched = _cycle()
        for _ in range(2_000):  # allocations that would have run the default collector many times
            Node()
        assert watched() is not None  # automatic collection is off: the cycle waits for the batch's end
        collection.after_step(1)
        assert watched() is None and collection.collected >= 2
        assert (collection.young, collection.full) == (1, 0)
    finally:
        collection.stop()


def test_a_full_collection_runs_once_its_interval_has_passed_and_frees_old_cycles() -> None:
    now = [0.0]
    collection = BatchCollection(full_interval_s=60.0, clock=lambda: now[0])
    collection.start()
    try:
        watched = _cycle()
        held = watched()
        collection.after_step(1)  # the cycle is still held: it survives into the oldest generation
        del held
        now[0] = 59.0
        collection.after_step(1)
        assert (collection.young, collection.full) == (2, 0)
        assert watched() is not None  # young collections do not look at the oldest generation
        now[0] = 60.0
        collection.after_step(1)
        assert (collection.young, collection.full) == (2, 1)
        assert watched() is None
    finally:
        collection.stop()


def test_idle_steps_collect_nothing_young_but_still_run_the_full_collection_on_time() -> None:
    now = [0.0]
    collection = BatchCollection(full_interval_s=60.0, clock=lambda: now[0])
    collection.start()
    try:
        watched = _cycle()  # made while idle: by the health thread, say
        for t in (1.0, 30.0, 59.0):
            now[0] = t
            collection.after_step(0)
        assert (collection.young, collection.full) == (0, 0) and watched() is not None
        now[0] = 61.0
        collection.after_step(0)
        assert (collection.young, collection.full) == (0, 1) and watched() is None
    finally:
        collection.stop()


def test_a_step_outside_start_and_stop_does_nothing() -> None:
    collection = BatchCollection()
    collection.after_step(1)
    collection.stop()
    assert (collection.young, collection.full, collection.active) == (0, 0, False)


#: What `probe_component` saw of the collector when the entrypoint called it.
SEEN: dict[str, object] = {}


def probe_component(argv: list[str]) -> int:
    """A component for the entrypoint test: records the collector's settings it runs under."""
    SEEN.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count(), argv=argv)
    return 0


def test_every_runtime_process_runs_its_component_with_its_imports_frozen_and_bulk_thresholds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.__main__ as entrypoint

    saved = gc.get_threshold()
    monkeypatch.setitem(entrypoint.COMPONENTS, "probe", f"{__name__}:probe_component")
    try:
        assert entrypoint.main(["probe", "--x"]) == 0
    finally:
        gc.set_threshold(*saved)
    assert SEEN["threshold"] == BULK_THRESHOLDS and SEEN["argv"] == ["--x"]
    assert isinstance(SEEN["frozen"], int) and SEEN["frozen"] > 1000  # the interpreter's and the component's modules
