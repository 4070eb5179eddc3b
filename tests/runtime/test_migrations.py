"""Migrations apply once, and the append-only trigger refuses UPDATE and DELETE."""

from __future__ import annotations

import psycopg
import pytest

from runtime.db.migrate import applied_migrations, apply_migrations, migration_files


def test_migrations_apply_once_and_are_recorded(postgres_dsn: str) -> None:
    apply_migrations(postgres_dsn)
    assert apply_migrations(postgres_dsn) == []
    assert applied_migrations(postgres_dsn) == [p.name for p in migration_files()]


def test_append_only_trigger_refuses_update_and_delete(postgres_dsn: str) -> None:
    apply_migrations(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_truth (id int primary key, v text)")
        conn.execute("DROP TRIGGER IF EXISTS t_truth_append_only ON t_truth")
        conn.execute("CREATE TRIGGER t_truth_append_only BEFORE UPDATE OR DELETE ON t_truth "
                     "FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation()")
        conn.execute("INSERT INTO t_truth VALUES (1, 'a') ON CONFLICT DO NOTHING")
        with pytest.raises(psycopg.errors.RaiseException, match="APPEND_ONLY_VIOLATION"):
            conn.execute("UPDATE t_truth SET v = 'b' WHERE id = 1")
        with pytest.raises(psycopg.errors.RaiseException, match="APPEND_ONLY_VIOLATION"):
            conn.execute("DELETE FROM t_truth WHERE id = 1")
        assert conn.execute("SELECT v FROM t_truth WHERE id = 1").fetchone() == ("a",)
