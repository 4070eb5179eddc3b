"""Dependency outages in a worker's health: opened by a failure, closed by a success, counted and timed."""

from __future__ import annotations

from runtime.errors import BusUnavailable, DatabaseUnavailable, ObjectStoreUnavailable, PublishAmbiguous, TransientError
from runtime.worker.health import Dependencies, HealthInputs, WorkerCounters, dependency_of, health_document


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_transient_error_names_its_dependency() -> None:
    assert dependency_of(DatabaseUnavailable("x")) == "db"
    assert dependency_of(BusUnavailable("x")) == "bus"
    assert dependency_of(PublishAmbiguous("x")) == "bus"
    assert dependency_of(ObjectStoreUnavailable("x")) == "object_store"
    assert dependency_of(TransientError("x")) is None


def test_repeated_failures_are_one_outage_until_a_success_closes_it() -> None:
    clock = Clock()
    deps = Dependencies(clock)
    assert deps.down("db", DatabaseUnavailable("refused"))
    clock.now += 4
    assert not deps.down("db", DatabaseUnavailable("refused again"))
    clock.now += 6
    assert deps.up("db") == 10.0
    assert deps.up("db") is None
    assert deps.down("db", DatabaseUnavailable("refused"))
    clock.now += 2
    assert deps.counters()["db_unavailable"] == 2 and deps.counters()["db_unavailable_ms"] == 12000
    doc = deps.document()["db"]
    assert doc["state"] == "DOWN" and doc["outages"] == 2 and doc["last_error"]["code"] == "DB_UNAVAILABLE"


def test_a_dependency_down_makes_health_red_with_a_reason_naming_it_and_green_once_it_is_back() -> None:
    clock = Clock()
    deps = Dependencies(clock)
    deps.down("bus", BusUnavailable("offset commit has not returned for 5.0s"))
    clock.now += 7

    def document() -> dict:
        inputs = HealthInputs(WorkerCounters(), {}, {}, [], 0, None, False, dependencies=deps)
        return health_document({}, "ieg", "fp-ieg-x", inputs)

    red = document()
    assert red["health_state"] == "RED"
    assert red["reasons"][0].startswith("BUS_UNAVAILABLE: the bus unavailable since") and "(7.0 s, outage 1)" in red["reasons"][0]
    deps.up("bus")
    green = document()
    assert green["health_state"] == "GREEN" and green["reasons"] == []
    assert green["counters"]["bus_unavailable"] == 1 and green["dependencies"]["bus"]["unavailable_seconds"] == 7.0
