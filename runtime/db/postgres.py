"""The one way runtime code reaches PostgreSQL: a bounded pool, composable transactions, and the
one translation of driver errors into project errors.

Every store (IG admissions, SR leases, WSP checkpoints, Kinesis checkpoints, the migrator) holds
a `Database` and never calls psycopg's connect itself. Errors leave this module as project errors
only (see `translate`): a dependency that is down is a `TransientError` worth a retry
(DatabaseUnavailable); a conflict, a refused privilege or an append-only violation is a
`PermanentError` that fails the same way on every retry.

Composing writes into one transaction (what a stream worker does with its state, idempotency keys
and outbox rows)::

    db = Database(dsn, name="rtdl state")
    with db.transaction():            # BEGIN on a pooled connection, pinned to this context
        state.apply(...)              # these call db.transaction() themselves: they join the
        keys.remember(...)            # outer transaction (as savepoints) instead of opening
        outbox.append(...)            # their own; all commit together or none does

The pinned connection is per context (thread or asyncio task), so concurrent callers never share
one. `connection()` pins an autocommit connection for reads or session work (an advisory lock);
a `transaction()` inside it runs on that same connection.

JSON and JSONB values are read with runtime/bus/json_codec.py and written with `json_text`
(orjson where it gives the standard library's values) on every connection of a process that
imports this module.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from runtime.bus.json_codec import loads
from runtime.contracts.canonical import compact_json
from runtime.errors import (
    AppendOnlyViolation,
    DatabaseConflict,
    DatabasePermissionDenied,
    DatabaseStatementFailed,
    DatabaseUnavailable,
    PlatformError,
)

#: The marker the append-only trigger function (migration 0001) raises with.
APPEND_ONLY_MARKER = "APPEND_ONLY_VIOLATION"
CONNECT_TIMEOUT_S = 3
ACQUIRE_TIMEOUT_S = 5.0

#: psycopg reads JSON and JSONB with the standard decoder; the gate jobs that read every decision
#: of a run spent ~40% of their time there (docs/performance.md). The bus's decoder gives the same
#: values ~3x faster.
set_json_loads(loads)


def json_text(value: Any) -> bytes | str:
    """The JSON text psycopg sends for a `Jsonb`/`Json` parameter: compact, ~7x faster than the
    standard encoder psycopg uses by default (an audit record: 3.9 us against 29 us). A value the
    fast path cannot write (a lone surrogate) goes to the standard encoder, so the database refuses
    it with the same error as before; NaN is written as NaN and refused the same way."""
    try:
        return compact_json(value)
    except (TypeError, ValueError):
        return json.dumps(value)


set_json_dumps(json_text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def translate(error: BaseException, what: str) -> PlatformError:
    """The project error for a driver error met while `what` used the database (the one place
    that decides what is transient and what is permanent)."""
    line = f"{what}: {_first_line(error)}"
    if isinstance(error, pg_errors.RaiseException) and APPEND_ONLY_MARKER in str(error):
        return AppendOnlyViolation(line)
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return DatabasePermissionDenied(line)
    if isinstance(error, psycopg.IntegrityError):
        return DatabaseConflict(line)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout | PoolClosed):
        return DatabaseUnavailable(line)
    return DatabaseStatementFailed(line)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block whose driver errors become project errors (see `translate`)."""
    try:
        yield
    except (psycopg.Error, PoolTimeout, PoolClosed) as e:
        raise translate(e, what) from e


def open_session(dsn: str, *, autocommit: bool = True, what: str = "PostgreSQL",
                 connect_timeout_s: int = CONNECT_TIMEOUT_S) -> psycopg.Connection[TupleRow]:
    """One unpooled connection the caller keeps and closes: for a session that must outlive a
    pooled borrow (a session advisory lock held for a process's life). Failing to connect is
    DatabaseUnavailable; wrap later statements in `translated(what)`."""
    with translated(what):
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout_s)


@contextmanager
def connect(dsn: str, *, autocommit: bool = False, what: str = "PostgreSQL") -> Iterator[psycopg.Connection[TupleRow]]:
    """One unpooled connection for one-off admin work (creating a database, a probe); committed
    on a clean exit, closed always. Stores use `Database` instead."""
    conn = open_session(dsn, autocommit=autocommit, what=what)
    with translated(what), conn:
        yield conn


def _autocommit(conn: psycopg.Connection[TupleRow]) -> None:
    conn.autocommit = True


class Database:
    """A lazily opened, bounded pool of autocommit connections to one database."""

    def __init__(self, dsn: str, *, name: str = "PostgreSQL", max_size: int = 4,
                 acquire_timeout_s: float = ACQUIRE_TIMEOUT_S, connect_timeout_s: int = CONNECT_TIMEOUT_S):
        self.name = name
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._pool = ConnectionPool(dsn, min_size=0, max_size=max_size, open=False, timeout=acquire_timeout_s,
                                    kwargs={"connect_timeout": connect_timeout_s}, configure=_autocommit, name=name)
        self._pinned: ContextVar[psycopg.Connection[TupleRow] | None] = ContextVar(f"fp_db_{id(self)}", default=None)
        self._lock = threading.Lock()
        self._opened = False

    def open(self) -> None:
        """Open the pool without waiting for a connection (the first use connects)."""
        with self._lock:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True

    def close(self) -> None:
        """Close the pool and every connection in it."""
        with self._lock:
            self._pool.close()
            self._opened = False

    def __enter__(self) -> Database:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """An autocommit connection pinned to this context for the block (each statement commits
        alone); a `transaction()` inside the block runs on it. Inside a transaction, that
        transaction's connection."""
        pinned = self._pinned.get()
        if pinned is not None:
            with translated(self.name):
                yield pinned
            return
        self.open()
        with translated(self.name):
            try:
                conn = self._pool.getconn()
            except PoolTimeout as e:
                raise self._why_no_connection(e) from e
            token = self._pinned.set(conn)
            try:
                yield conn
            finally:
                self._pinned.reset(token)
                self._pool.putconn(conn)  # the pool rolls back what the block left open

    def _why_no_connection(self, timeout: PoolTimeout) -> PlatformError:
        """The pool only says it timed out: one direct attempt tells the operator why (refused,
        wrong password, unknown database), or that every pooled connection stayed busy."""
        try:
            open_session(self._dsn, what=self.name, connect_timeout_s=self._connect_timeout_s).close()
        except PlatformError as e:
            return e
        return DatabaseUnavailable(f"{self.name}: every pooled connection stayed busy ({_first_line(timeout)})")

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A connection inside one transaction: committed when the block ends, rolled back when it
        raises. Nested (in this context), it joins the outer transaction as a savepoint, so
        several stores' writes commit together."""
        with self.connection() as conn, translated(self.name), conn.transaction():
            yield conn

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        with self.connection() as conn:
            conn.execute("SELECT 1")


def copy_to_stage(conn: psycopg.Connection[TupleRow], stage: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY `rows` into the session's temporary table `stage` (declared by `columns`; created on
    first use, emptied at every commit): a set-based write then moves them with ONE
    `INSERT ... SELECT` (that statement should empty the stage, e.g. `WITH s AS (DELETE FROM
    <stage> RETURNING *)`, so a second use in the same transaction starts empty). COPY formats rows
    in C; binding the same rows as array parameters dumps every element in Python, which made
    that the largest cost of a batch write."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS")
    with conn.cursor().copy(f"COPY {stage} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def with_credentials(dsn: str, user: str, password: str) -> str:
    """`dsn` (URL or key=value) with another user and password: the same server and database."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params.update(user=user, password=password)
    return make_conninfo("", **params)


def redact(dsn: str | None) -> str | None:
    """`dsn` with its password replaced by `***`, for logs, status lines and evidence."""
    if not dsn:
        return dsn
    try:
        params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)


def stream_rows(conn: psycopg.Connection[TupleRow], query: str, params: Sequence[Any], *,
                batch: int = 2_000) -> Iterator[TupleRow]:
    """The rows of `query`, fetched `batch` at a time through a server-side cursor, inside a
    transaction block (a savepoint in the caller's open transaction, else its own): `conn.execute`
    holds a result whole in the client, and a run's decisions at full cap (500k JSON documents)
    held the live reporter at 1.4 GB."""
    with conn.transaction(), conn.cursor(name=f"stream_{secrets.token_hex(4)}") as cursor:
        cursor.itersize = batch
        cursor.execute(query, params)
        yield from cursor
