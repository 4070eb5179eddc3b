"""The reporter's single-writer lock: one reporter per run may write its closure files.

Seed 004 P11.2: "only one reporter instance may write run closure for a given platform_run_id;
if a lock/lease exists and is held, additional reporters must fail closed". The backend is the
registry's REPORTER_LOCK_BACKEND (`postgres_table`), the key REPORTER_LOCK_KEY_PATTERN.

How it holds: the reporter opens a session of its own (`open_session`, not a pooled borrow) and
takes a session advisory lock on a 64-bit hash of the key with `pg_try_advisory_lock`, which never
waits. The row of `obs_reporter_locks` (migration 0800) names the holder for operators and for the
next reporter's error message. The advisory lock is the truth about liveness: when a holder dies,
its session ends and Postgres releases the lock, so the next reporter gets it and overwrites the
row, recording `took_over_from`. A second reporter while the holder lives fails closed with
REPORTER_LOCK_HELD naming the holder. Release deletes the row and ends the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runtime.contracts.registry import Registry
from runtime.db.postgres import open_session, translated
from runtime.obs.errors import ReporterLockBackendUnsupported, ReporterLockHeld, ReporterLockLost

log = logging.getLogger(__name__)

#: The only REPORTER_LOCK_BACKEND this module implements.
POSTGRES_TABLE_BACKEND = "postgres_table"
#: TCP keepalives so a holder whose host vanished (no FIN) loses its session within about a minute.
_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "20", "keepalives_interval": "5", "keepalives_count": "4"}


def lock_key(registry: Registry, platform_run_id: str) -> str:
    """The run's lock key from REPORTER_LOCK_KEY_PATTERN (refusing a backend other than postgres_table)."""
    backend = registry.text("REPORTER_LOCK_BACKEND")
    if backend != POSTGRES_TABLE_BACKEND:
        raise ReporterLockBackendUnsupported(f"REPORTER_LOCK_BACKEND is {backend!r}")
    return registry.render("REPORTER_LOCK_KEY_PATTERN", platform_run_id=platform_run_id)


def advisory_key(key: str) -> int:
    """A stable signed 64-bit advisory lock id for `key` (never the migrator's small id)."""
    value = int.from_bytes(hashlib.sha256(f"fp-reporter-lock|{key}".encode()).digest()[:8], "big", signed=True)
    return value if abs(value) > 2**32 else value + 2**40


def _split(key: int) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows a bigint advisory lock."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run's reporter lock."""

    lock_key: str
    platform_run_id: str
    holder: str
    acquired_at: datetime
    took_over_from: str | None
    alive: bool


def default_holder_name() -> str:
    """host:pid:random, unique per reporter process (shown to the operator)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ReporterLock:
    """The single-writer lock of one run; a context manager (`with ReporterLock(...) as lock:`)."""

    def __init__(self, dsn: str, registry: Registry, platform_run_id: str, *, holder: str | None = None):
        self.dsn = make_conninfo(dsn, **{k: v for k, v in _KEEPALIVES.items() if k not in conninfo_to_dict(dsn)})
        self.platform_run_id = platform_run_id
        self.key = lock_key(registry, platform_run_id)
        self.advisory_key = advisory_key(self.key)
        self.holder = holder or default_holder_name()
        self.took_over_from: str | None = None
        self._conn: psycopg.Connection | None = None

    @property
    def held(self) -> bool:
        """True while this reporter holds the lock (its session is open)."""
        return self._conn is not None and not self._conn.closed

    def acquire(self) -> ReporterLock:
        """Take the lock or fail closed with REPORTER_LOCK_HELD; never waits."""
        if self.held:
            return self
        conn = open_session(self.dsn, what="reporter lock")
        try:
            with translated("reporter lock"):
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.advisory_key,)).fetchone()
                if not (got and got[0]):
                    current = _wait_for_row(conn, self.key)
                    who = f"{current.holder} since {current.acquired_at.isoformat()}" if current else "a reporter that is starting"
                    raise ReporterLockHeld(f"the reporter lock {self.key} is held by {who}")
                row = conn.execute(
                    "INSERT INTO obs_reporter_locks AS l (lock_key, platform_run_id, holder, advisory_key)"
                    " VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (lock_key) DO UPDATE SET holder = EXCLUDED.holder, advisory_key = EXCLUDED.advisory_key,"
                    " acquired_at = now(), took_over_from = l.holder"
                    " RETURNING took_over_from",
                    (self.key, self.platform_run_id, self.holder, self.advisory_key)).fetchone()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.took_over_from = row[0] if row else None
        if self.took_over_from:
            log.warning("reporter lock %s taken over from %s (its session had ended)", self.key, self.took_over_from)
        log.info("reporter lock %s acquired by %s", self.key, self.holder)
        return self

    def ensure_held(self) -> None:
        """Prove the lock is still ours before writing a closure file: the session answers and
        Postgres still shows our advisory lock (REPORTER_LOCK_LOST otherwise)."""
        conn = self._conn
        if conn is None:
            raise ReporterLockLost(f"the reporter lock {self.key} is not held by {self.holder}")
        classid, objid = _split(self.advisory_key)
        try:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                               " AND objid = %s AND objsubid = 1 AND granted AND pid = pg_backend_pid())",
                               (classid, objid)).fetchone()
        except psycopg.Error as e:
            self._conn = None
            with contextlib.suppress(psycopg.Error):
                conn.close()
            raise ReporterLockLost(f"the reporter lock {self.key} was lost with its session: {e}".strip()) from e
        if not (row and row[0]):
            raise ReporterLockLost(f"the reporter lock {self.key} is no longer held by {self.holder}")

    def release(self) -> None:
        """Let go: delete our row, unlock, close the session (safe to call twice)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with translated("reporter lock release"):
                conn.execute("DELETE FROM obs_reporter_locks WHERE lock_key = %s AND holder = %s", (self.key, self.holder))
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.advisory_key,))
            log.info("reporter lock %s released by %s", self.key, self.holder)
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def __enter__(self) -> ReporterLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_row(conn: psycopg.Connection, key: str) -> LockHolder | None:
    row = conn.execute("SELECT lock_key, platform_run_id, holder, acquired_at, took_over_from, advisory_key"
                       " FROM obs_reporter_locks WHERE lock_key = %s", (key,)).fetchone()
    if row is None:
        return None
    classid, objid = _split(int(row[5]))
    alive = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                         " AND objid = %s AND objsubid = 1 AND granted)", (classid, objid)).fetchone()
    return LockHolder(str(row[0]), str(row[1]), str(row[2]), row[3], row[4], bool(alive and alive[0]))


def _wait_for_row(conn: psycopg.Connection, key: str, *, wait_s: float = 1.0) -> LockHolder | None:
    """The holder's row; a holder that has just taken the advisory lock writes it a moment later,
    so the loser of a simultaneous start looks again briefly to name the winner."""
    deadline = time.monotonic() + wait_s
    while True:
        row = _read_row(conn, key)
        if row is not None or time.monotonic() >= deadline:
            return row
        time.sleep(0.05)


def current_holder(dsn: str, registry: Registry, platform_run_id: str) -> LockHolder | None:
    """The run's lock row with whether its holder still lives (None: nobody holds it): what
    `--phase P11` checks to refuse running beside the reporter daemon."""
    key = lock_key(registry, platform_run_id)
    conn = open_session(dsn, what="reporter lock")
    try:
        with translated("reporter lock"):
            return _read_row(conn, key)
    finally:
        conn.close()
