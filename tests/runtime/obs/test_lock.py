"""The reporter's single-writer lock on a real Postgres, as the runtime role."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from runtime.contracts.registry import load_registry
from runtime.obs.errors import ReporterLockBackendUnsupported, ReporterLockHeld, ReporterLockLost
from runtime.obs.lock import ReporterLock, current_holder, lock_key

REGISTRY = load_registry("local_parity")


def run_id(n: int) -> str:
    return f"platform_20261123T12{n:04d}Z"


def test_lock_key_comes_from_the_registry_pattern() -> None:
    assert lock_key(REGISTRY, run_id(1)) == f"reporter:{run_id(1)}"


def test_a_backend_other_than_postgres_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real_text = REGISTRY.text
    monkeypatch.setattr(REGISTRY, "text", lambda key: "s3_object" if key == "REPORTER_LOCK_BACKEND" else real_text(key))
    with pytest.raises(ReporterLockBackendUnsupported):
        lock_key(REGISTRY, run_id(1))


@pytest.mark.parametrize("attempt", range(5))
def test_two_reporters_started_together_exactly_one_gets_the_lock(runtime_dsn: str, attempt: int) -> None:
    barrier = threading.Barrier(2)
    won: list[ReporterLock] = []
    refused: list[ReporterLockHeld] = []

    def reporter(name: str) -> None:
        lock = ReporterLock(runtime_dsn, REGISTRY, run_id(20 + attempt), holder=name)
        barrier.wait()
        try:
            won.append(lock.acquire())
        except ReporterLockHeld as e:
            refused.append(e)

    threads = [threading.Thread(target=reporter, args=(f"reporter-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert len(won) == 1 and len(refused) == 1
        assert refused[0].code == "REPORTER_LOCK_HELD"
        assert won[0].holder in refused[0].message and refused[0].next_step
        won[0].ensure_held()
        holder = current_holder(runtime_dsn, REGISTRY, run_id(20 + attempt))
        assert holder is not None and holder.alive and holder.holder == won[0].holder
    finally:
        for lock in won:
            lock.release()


def test_release_lets_the_next_reporter_in_and_leaves_no_row(runtime_dsn: str) -> None:
    with ReporterLock(runtime_dsn, REGISTRY, run_id(3), holder="first") as first:
        assert first.held
        with pytest.raises(ReporterLockHeld):
            ReporterLock(runtime_dsn, REGISTRY, run_id(3), holder="second").acquire()
    assert not first.held
    assert current_holder(runtime_dsn, REGISTRY, run_id(3)) is None
    with ReporterLock(runtime_dsn, REGISTRY, run_id(3), holder="second") as second:
        assert second.held and second.took_over_from is None
    first.release()  # a second release is harmless


def test_locks_of_different_runs_do_not_interfere(runtime_dsn: str) -> None:
    with ReporterLock(runtime_dsn, REGISTRY, run_id(4)), ReporterLock(runtime_dsn, REGISTRY, run_id(5)) as other:
        assert other.held


_HOLDER = """
import sys, time
from runtime.contracts.registry import load_registry
from runtime.obs.lock import ReporterLock
lock = ReporterLock(sys.argv[1], load_registry("local_parity"), sys.argv[2], holder="doomed").acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_dead_holders_lock_is_taken_over(runtime_dsn: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, runtime_dsn, run_id(6)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(ReporterLockHeld, match="doomed"):
            ReporterLock(runtime_dsn, REGISTRY, run_id(6), holder="next").acquire()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:  # the server notices the closed socket at once; give it a moment
        holder = current_holder(runtime_dsn, REGISTRY, run_id(6))
        if holder is not None and not holder.alive:
            break
        assert time.monotonic() < deadline, f"the dead holder still looks alive: {holder}"
        time.sleep(0.1)
    with ReporterLock(runtime_dsn, REGISTRY, run_id(6), holder="next") as lock:
        assert lock.took_over_from == "doomed"
        now = current_holder(runtime_dsn, REGISTRY, run_id(6))
        assert now is not None and now.holder == "next" and now.alive and now.took_over_from == "doomed"


def test_a_reporter_whose_session_was_killed_knows_it_lost_the_lock(runtime_dsn: str, owner_dsn: str) -> None:
    from runtime.db.postgres import connect

    lock = ReporterLock(runtime_dsn, REGISTRY, run_id(7), holder="unlucky").acquire()
    lock.ensure_held()
    with connect(owner_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                      " AND objid = %s", (lock.advisory_key & 0xFFFF_FFFF,))
    with pytest.raises(ReporterLockLost) as lost:
        lock.ensure_held()
    assert lost.value.code == "REPORTER_LOCK_LOST" and not lock.held
    with ReporterLock(runtime_dsn, REGISTRY, run_id(7), holder="next") as taken:
        assert taken.took_over_from == "unlucky"
