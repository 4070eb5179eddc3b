"""Governance events appended with conditional writes on the moto server: concurrent writers lose
nothing and duplicate nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from runtime.contracts.registry import load_registry
from runtime.obs.errors import AppendConflict
from runtime.obs.governance import GovernanceEvent, GovernanceLog, GovernanceLogCorrupt
from runtime.store.port import ObjectStore
from runtime.store.s3 import S3Store, s3_client

REGISTRY = load_registry("local_parity")
RUN = "platform_20261123T120000Z"


@pytest.fixture
def new_store(moto_endpoint: str, bucket: str):  # type: ignore[no-untyped-def]
    """A fresh S3Store (own client) on the same bucket, per writer."""
    return lambda: S3Store(bucket, client=s3_client(moto_endpoint, "us-east-1"))


def event(subject: str, *, kind: str = "GATE_CHECKED", actor: str = "reporter") -> GovernanceEvent:
    return GovernanceEvent(RUN, kind, subject, actor, {"ok": True}, at_utc="2026-11-23T12:00:00Z")


def test_the_log_lives_at_the_registry_key_and_keeps_append_order(new_store) -> None:  # type: ignore[no-untyped-def]
    log = GovernanceLog(new_store(), REGISTRY, RUN)
    assert log.key == f"platform/{RUN}/obs/governance/events.jsonl"
    assert log.events() == []
    first = log.append([event("a"), event("b")])
    second = log.append([event("c")])
    assert len(first.appended) == 2 and first.conflicts == 0 and len(second.appended) == 1
    assert [e["subject"] for e in log.events()] == ["a", "b", "c"]


def test_appending_the_same_event_again_writes_nothing(new_store) -> None:  # type: ignore[no-untyped-def]
    log = GovernanceLog(new_store(), REGISTRY, RUN)
    log.append([event("a")])
    again = log.append([event("a"), event("a")])
    assert again.appended == () and again.already_present == (event("a").stable_id(),)
    assert len(log.events()) == 1
    assert event("a").stable_id() == GovernanceEvent(RUN, "GATE_CHECKED", "a", "someone else").stable_id()


def test_two_concurrent_writers_lose_nothing_and_duplicate_nothing(new_store) -> None:  # type: ignore[no-untyped-def]
    per_writer, barrier = 12, threading.Barrier(2)
    results: dict[str, list[Any]] = {"w1": [], "w2": []}

    def writer(name: str) -> None:
        log = GovernanceLog(new_store(), REGISTRY, RUN, max_attempts=50, backoff_s=0.005)
        barrier.wait()
        for i in range(per_writer):
            results[name].append(log.append([event(f"{name}-{i}", actor=name)]))

    threads = [threading.Thread(target=writer, args=(name,)) for name in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    events = GovernanceLog(new_store(), REGISTRY, RUN).events()
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)) == 2 * per_writer
    for name in results:
        mine = [e["subject"] for e in events if e["actor"] == name]
        assert mine == [f"{name}-{i}" for i in range(per_writer)]  # each writer's order is kept
        assert all(len(r.appended) == 1 for r in results[name])
    print(f"concurrent appends: {2 * per_writer}, S3_APPEND_CONFLICT met and retried: "
          f"{sum(r.conflicts for rs in results.values() for r in rs)}")


class _Interloper(ObjectStore):
    """A store that lets a competing writer append between our read and our conditional put."""

    def __init__(self, inner: ObjectStore, compete: Any, times: int):
        self.inner, self.compete, self.times = inner, compete, times
        self.location = inner.location

    def put(self, key: str, data: bytes, **kwargs: Any) -> None:
        if self.times > 0:
            self.times -= 1
            self.compete()
        self.inner.put(key, data, **kwargs)

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        return self.inner.read_versioned(key)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def head(self, key: str):  # type: ignore[no-untyped-def]
        return self.inner.head(key)

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def test_a_write_in_between_is_an_append_conflict_then_a_retry_keeps_both(new_store, caplog) -> None:  # type: ignore[no-untyped-def]
    other = GovernanceLog(new_store(), REGISTRY, RUN)
    other.append([event("first")])
    competitors = iter(["x", "y"])
    racing = _Interloper(new_store(), lambda: other.append([event(next(competitors), actor="other")]), times=2)
    result = GovernanceLog(racing, REGISTRY, RUN, sleep=lambda _: None).append([event("mine")])
    assert result.conflicts == 2 and result.attempts == 3 and len(result.appended) == 1
    assert "S3_APPEND_CONFLICT" in caplog.text
    assert [e["subject"] for e in other.events()] == ["first", "x", "y", "mine"]


def test_a_conflict_on_the_first_write_of_the_log_is_retried_too(new_store) -> None:  # type: ignore[no-untyped-def]
    other = GovernanceLog(new_store(), REGISTRY, RUN)
    racing = _Interloper(new_store(), lambda: other.append([event("theirs")]), times=1)
    GovernanceLog(racing, REGISTRY, RUN, sleep=lambda _: None).append([event("mine")])
    assert [e["subject"] for e in other.events()] == ["theirs", "mine"]


def test_conflicts_beyond_the_bound_fail_with_s3_append_conflict_and_write_nothing(new_store) -> None:  # type: ignore[no-untyped-def]
    other = GovernanceLog(new_store(), REGISTRY, RUN)
    other.append([event("first")])
    n = iter(range(100))
    racing = _Interloper(new_store(), lambda: other.append([event(f"o{next(n)}")]), times=100)
    with pytest.raises(AppendConflict) as failed:
        GovernanceLog(racing, REGISTRY, RUN, max_attempts=3, sleep=lambda _: None).append([event("mine")])
    assert failed.value.code == "S3_APPEND_CONFLICT" and failed.value.next_step
    assert "mine" not in [e["subject"] for e in other.events()]


def test_an_event_of_another_run_is_refused(new_store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="appended to the log of"):
        GovernanceLog(new_store(), REGISTRY, RUN).append([GovernanceEvent("platform_20200101T000000Z", "K", "s", "a")])


def test_a_corrupt_line_is_reported_not_overwritten(new_store) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    log = GovernanceLog(store, REGISTRY, RUN)
    store.put(log.key, b'{"event_id": "e1"}\nnot json\n')
    with pytest.raises(GovernanceLogCorrupt, match="line 2"):
        log.append([event("a")])
    assert store.get(log.key) == b'{"event_id": "e1"}\nnot json\n'
