"""Truth that cannot be wiped: the runtime's own connection may append to every truth table but
never change, remove, truncate or unguard it; migrations (the owner) grant exactly that."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runtime.db.migrate import apply_migrations, prepare_database, require_migrations
from runtime.db.postgres import Database, connect, with_credentials
from runtime.db.roles import truth_tables
from runtime.errors import (
    AppendOnlyViolation,
    DatabaseMigrationsPending,
    DatabasePermissionDenied,
    DatabaseUnavailable,
    PlatformError,
)


def _catalog_truth_tables(owner_dsn: str) -> list[str]:
    with connect(owner_dsn) as conn:
        return truth_tables(conn)


def _refused(dsn: str, statement: sql.Composable, expected: type[PlatformError]) -> None:
    with Database(dsn, name="probe", max_size=1) as db, pytest.raises(expected), db.transaction() as conn:
        conn.execute(statement)


def _guards(owner_dsn: str, table: str) -> list[tuple[str, str, int]]:
    with connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT t.tgname, t.tgenabled, t.tgtype FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE t.tgrelid = %s::regclass AND p.proname = 'fp_refuse_mutation' ORDER BY 1", (table,)).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def test_the_catalog_names_the_known_truth_tables(owner_dsn: str) -> None:
    assert {"ig_receipts", "ig_quarantine"} <= set(_catalog_truth_tables(owner_dsn))


def test_runtime_role_cannot_update_delete_truncate_or_unguard_any_truth_table(owner_dsn: str, runtime_dsn: str) -> None:
    tables = _catalog_truth_tables(owner_dsn)
    assert tables
    for table in tables:
        t = sql.Identifier(table)
        with connect(owner_dsn) as conn:
            column = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1",
                                  (table,)).fetchone()
            assert column is not None
        col = sql.Identifier(str(column[0]))
        guards_before = _guards(owner_dsn, table)
        assert any(tgtype & 32 for _name, _enabled, tgtype in guards_before), f"{table} has no TRUNCATE guard"
        _refused(runtime_dsn, sql.SQL("UPDATE {} SET {} = {}").format(t, col, col), DatabasePermissionDenied)
        _refused(runtime_dsn, sql.SQL("DELETE FROM {}").format(t), DatabasePermissionDenied)
        _refused(runtime_dsn, sql.SQL("TRUNCATE {}").format(t), DatabasePermissionDenied)
        _refused(runtime_dsn, sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(t), DatabasePermissionDenied)
        for name, _enabled, _type in guards_before:
            _refused(runtime_dsn, sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(t, sql.Identifier(name)),
                     DatabasePermissionDenied)
            _refused(runtime_dsn, sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), t), DatabasePermissionDenied)
        _refused(runtime_dsn, sql.SQL("DROP TABLE {}").format(t), DatabasePermissionDenied)
        assert _guards(owner_dsn, table) == guards_before  # every guard still there and enabled ('O')
        assert all(enabled == "O" for _name, enabled, _type in guards_before)


def test_even_the_owner_cannot_truncate_a_truth_table(owner_dsn: str) -> None:
    for table in _catalog_truth_tables(owner_dsn):
        _refused(owner_dsn, sql.SQL("TRUNCATE {}").format(sql.Identifier(table)), AppendOnlyViolation)


def test_runtime_role_has_no_ddl_and_no_truncate_on_state_tables(owner_dsn: str, runtime_dsn: str) -> None:
    _refused(runtime_dsn, sql.SQL("CREATE TABLE fp_sneaky (id int)"), DatabasePermissionDenied)
    _refused(runtime_dsn, sql.SQL("TRUNCATE sr_run_leases"), DatabasePermissionDenied)
    _refused(runtime_dsn, sql.SQL("ALTER TABLE ig_admissions ADD COLUMN x int"), DatabasePermissionDenied)
    _refused(runtime_dsn, sql.SQL("DELETE FROM schema_migrations"), DatabasePermissionDenied)
    with connect(runtime_dsn) as conn:
        me = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
                          " WHERE rolname = current_user").fetchone()
        owners = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user").fetchone()
    assert me == (False, False, False, False)
    assert owners == (0,)


def test_runtime_role_needs_its_password(runtime_dsn: str, runtime_role: tuple[str, str]) -> None:
    wrong = with_credentials(runtime_dsn, runtime_role[0], "not-the-password")
    with Database(wrong, name="probe", max_size=1, acquire_timeout_s=1.0) as db, \
            pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        db.ping()


def test_runtime_role_checks_migrations_but_cannot_apply_them(runtime_dsn: str) -> None:
    require_migrations(runtime_dsn)  # readable: every migration applied
    with pytest.raises(PlatformError):
        apply_migrations(runtime_dsn)  # pending ones would need DDL the role lacks


def test_pending_migrations_stop_the_runtime(new_database: Callable[[], str]) -> None:
    with pytest.raises(DatabaseMigrationsPending, match=r"0001_foundation_append_only\.sql"):
        require_migrations(new_database())


def test_tables_of_later_migrations_are_granted_and_guarded(future_migration: Callable[[str], tuple[str, Path]],
                                                             runtime_role: tuple[str, str]) -> None:
    # a future plane's migration: one state table, one truth table that attaches only the row trigger
    owner, folder = future_migration(
        "CREATE TABLE future_state (k text PRIMARY KEY, v int NOT NULL);\n"
        "CREATE TABLE future_truth (k text PRIMARY KEY, v int NOT NULL);\n"
        "CREATE TRIGGER future_truth_append_only BEFORE UPDATE OR DELETE ON future_truth"
        " FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation();\n")
    assert apply_migrations(owner, folder, runtime_role=runtime_role[0]) == ["0999_test_future.sql"]
    runtime = with_credentials(owner, *runtime_role)
    with Database(runtime, name="runtime", max_size=1) as db, db.transaction() as conn:
        conn.execute("INSERT INTO future_state VALUES ('a', 1)")
        conn.execute("UPDATE future_state SET v = 2 WHERE k = 'a'")
        conn.execute("DELETE FROM future_state WHERE k = 'a'")
        conn.execute("INSERT INTO future_truth VALUES ('a', 1)")
    assert "future_truth" in _catalog_truth_tables(owner)
    _refused(runtime, sql.SQL("UPDATE future_truth SET v = 2"), DatabasePermissionDenied)
    _refused(runtime, sql.SQL("TRUNCATE future_truth"), DatabasePermissionDenied)
    _refused(owner, sql.SQL("TRUNCATE future_truth"), AppendOnlyViolation)


def test_preparing_twice_changes_nothing_but_the_password(new_database: Callable[[], str],
                                                          runtime_role: tuple[str, str]) -> None:
    owner = new_database()
    prepare_database(owner, *runtime_role)
    assert prepare_database(owner, *runtime_role) == []
    with psycopg.connect(with_credentials(owner, *runtime_role)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (runtime_role[0],)
