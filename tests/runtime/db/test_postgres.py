"""The Postgres helper: one translation of driver errors, transactions that compose, a bounded pool."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from controller.substrate.processes import free_port
from runtime.db.postgres import Database, redact, stream_rows, with_credentials
from runtime.errors import (
    AppendOnlyViolation,
    DatabaseConflict,
    DatabaseStatementFailed,
    DatabaseUnavailable,
    PermanentError,
    PlatformError,
    TransientError,
)


@pytest.fixture()
def table(scratch_dsn: str) -> Iterator[tuple[Database, str]]:
    """A scratch table (unique key `k`) and a Database on the scratch database."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    db = Database(scratch_dsn, name="test store", max_size=2)
    with db.connection() as conn:
        conn.execute(f"CREATE TABLE {name} (k text PRIMARY KEY, v int NOT NULL)")
    yield db, name
    db.close()


def _rows(db: Database, name: str) -> list[tuple[str, int]]:
    with db.connection() as conn:
        return [(str(k), int(v)) for k, v in conn.execute(f"SELECT k, v FROM {name} ORDER BY k").fetchall()]


def test_nested_transactions_join_the_outer_one_and_commit_together(table: tuple[Database, str]) -> None:
    db, name = table
    with db.transaction() as outer:
        outer.execute(f"INSERT INTO {name} VALUES ('state', 1)")
        with db.transaction() as inner:  # what a second store's method does inside the worker's transaction
            assert inner is outer
            inner.execute(f"INSERT INTO {name} VALUES ('outbox', 1)")
        with db.connection() as same:
            assert same is outer
        assert _other_connection_sees(db, name) == []  # nothing visible before the outer commit
    assert _rows(db, name) == [("outbox", 1), ("state", 1)]


def _other_connection_sees(db: Database, name: str) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    thread = threading.Thread(target=lambda: seen.extend(_rows(db, name)))  # another context: another connection
    thread.start()
    thread.join()
    return seen


def test_an_error_anywhere_rolls_back_every_nested_write(table: tuple[Database, str]) -> None:
    db, name = table
    with pytest.raises(RuntimeError), db.transaction() as outer:
        outer.execute(f"INSERT INTO {name} VALUES ('state', 1)")
        with db.transaction() as inner:
            inner.execute(f"INSERT INTO {name} VALUES ('outbox', 1)")
        raise RuntimeError("the worker failed after both writes")
    assert _rows(db, name) == []


def test_a_failed_inner_transaction_rolls_back_to_its_savepoint_only(table: tuple[Database, str]) -> None:
    db, name = table
    with db.transaction() as outer:
        outer.execute(f"INSERT INTO {name} VALUES ('a', 1)")
        with pytest.raises(DatabaseConflict), db.transaction() as inner:
            inner.execute(f"INSERT INTO {name} VALUES ('b', 1)")
            inner.execute(f"INSERT INTO {name} VALUES ('a', 2)")
    assert _rows(db, name) == [("a", 1)]


def test_driver_errors_leave_as_project_errors_of_the_right_family(table: tuple[Database, str]) -> None:
    db, name = table
    with db.connection() as conn:
        conn.execute(f"INSERT INTO {name} VALUES ('a', 1)")
        conn.execute(f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name}"
                     " FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation()")
    with pytest.raises(DatabaseConflict) as conflict, db.transaction() as conn:
        conn.execute(f"INSERT INTO {name} VALUES ('a', 2)")
    with pytest.raises(AppendOnlyViolation) as append_only, db.transaction() as conn:
        conn.execute(f"UPDATE {name} SET v = 3")
    with pytest.raises(DatabaseStatementFailed) as bad, db.connection() as conn:
        conn.execute(f"SELECT no_such_column FROM {name}")
    for caught in (conflict, append_only, bad):
        assert isinstance(caught.value, PermanentError)
        assert caught.value.message.startswith("test store: ")
    assert append_only.value.code == "APPEND_ONLY_VIOLATION"


def test_an_unreachable_database_is_transient_and_says_why(owner_dsn: str) -> None:
    dead = make_conninfo(owner_dsn, port=str(free_port()))  # nothing listens there
    db = Database(dead, name="dead store", max_size=1, acquire_timeout_s=0.5, connect_timeout_s=1)
    try:
        with pytest.raises(DatabaseUnavailable, match=r"dead store: .*(refused|failed)") as caught:
            db.ping()
        assert isinstance(caught.value, TransientError)
    finally:
        db.close()


def test_the_pool_is_bounded_and_busy_is_unavailable(owner_dsn: str) -> None:
    db = Database(owner_dsn, name="busy store", max_size=1, acquire_timeout_s=0.3)
    try:
        with db.connection():
            failures: list[Exception] = []

            def second() -> None:
                try:
                    db.ping()
                except DatabaseUnavailable as e:
                    failures.append(e)

            thread = threading.Thread(target=second)
            thread.start()
            thread.join()
        assert len(failures) == 1 and "busy" in str(failures[0])
        db.ping()  # free again
    finally:
        db.close()


def test_dsns_are_redacted_and_rebuilt_with_other_credentials() -> None:
    dsn = with_credentials("postgresql://owner@127.0.0.1:5432/fp", "fp_runtime", "s3cret")
    assert "user=fp_runtime" in dsn and "password=s3cret" in dsn and "dbname=fp" in dsn
    shown = redact(dsn) or ""
    assert "s3cret" not in shown and "password=***" in shown
    assert redact("postgresql://u:pw@h:1/d") is not None and "pw" not in (redact("postgresql://u:pw@h:1/d") or "")


def test_stream_rows_yields_every_row_in_order_in_autocommit_and_inside_a_transaction(table: tuple[Database, str]) -> None:
    db, _ = table
    query = "SELECT g FROM generate_series(1, 5000) AS g ORDER BY g"
    with db.connection() as conn:  # autocommit: the stream opens its own transaction block
        assert [r[0] for r in stream_rows(conn, query, (), batch=700)] == list(range(1, 5001))
    with db.transaction() as conn:  # inside the caller's transaction: a savepoint, the caller's work stays
        conn.execute("CREATE TEMP TABLE streamed_probe (n int) ON COMMIT DROP")
        conn.execute("INSERT INTO streamed_probe VALUES (1)")
        assert sum(1 for _ in stream_rows(conn, query, ())) == 5000
        assert conn.execute("SELECT count(*) FROM streamed_probe").fetchone() == (1,)


JSON_TEXTS = ['{"a":1,"b":[1.5,-0.0,1e-7,null,true],"c":"\u00e9\u4e2d\U0001f600"}', "123456789012345678901234567890",
              "-9223372036854775809", "18446744073709551615", '{"id":"00000000000000000000123"}', "1e400",
              '{"a":1,"a":2}', '"\\ud83d\\ude00"', "0.1", "[" * 50 + "]" * 50]


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_and_jsonb_read_back_as_the_standard_decoder_reads_them(table: tuple[Database, str], text: str) -> None:
    db, _ = table
    with db.connection() as conn:
        for cast in ("json", "jsonb"):
            stored = conn.execute(f"SELECT %s::{cast}::text", (text,)).fetchone()
            value = conn.execute(f"SELECT %s::{cast}", (text,)).fetchone()
            assert stored is not None and value is not None
            assert repr(value[0]) == repr(json.loads(stored[0])), cast  # repr: 1 != 1.0, -0.0 != 0.0, inf



@pytest.mark.parametrize("value", [{"a": [1, 2.5, -0.0, None, True], "é": "中😀"}, {"big": 123456789012345678901234567890},
                                   [1e-7, 1e300], "x", {"nested": {"k": [{"v": 1}]}}])
def test_jsonb_parameters_store_the_value_the_standard_encoder_would(table: tuple[Database, str], value: Any) -> None:
    db, _ = table
    with db.connection() as conn:
        fast = conn.execute("SELECT %s::jsonb", (Jsonb(value),)).fetchone()
        standard = conn.execute("SELECT %s::jsonb", (Jsonb(value, dumps=json.dumps),)).fetchone()
    assert fast is not None and standard is not None and repr(fast[0]) == repr(standard[0])


@pytest.mark.parametrize("value", [{"a": float("nan")}, {"a": "\ud800"}, {"a": float("inf")}])
def test_jsonb_parameters_the_database_cannot_hold_are_refused_as_project_errors(table: tuple[Database, str], value: Any) -> None:
    db, _ = table
    with pytest.raises(PlatformError), db.connection() as conn:
        conn.execute("SELECT %s::jsonb", (Jsonb(value),))


def test_a_component_s_sessions_carry_its_name_in_pg_stat_activity(scratch_dsn: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.components import session_name_env

    for key, value in session_name_env("df").items():
        monkeypatch.setenv(key, value)
    db = Database(scratch_dsn, name="labelled", max_size=1)
    try:
        with db.connection() as conn:
            row = conn.execute("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
    finally:
        db.close()
    assert row is not None and row[0] == "fp-df"
