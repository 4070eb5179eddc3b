"""Applies the SQL files of `runtime/db/migrations/` in name order, each once, in a transaction.

File names are `NNNN_<owner>_<what>.sql`; number ranges by owner keep parallel work apart:
0001-0099 foundation, 0100-0199 bus + SR, 0200-0299 IG, 0300-0399 WSP, 0400-0499 controller,
0500-0599 RTDL, 0600-0699 decision lane, 0700-0799 case/labels, 0800-0899 obs/gov.
Truth tables get a trigger that refuses UPDATE and DELETE (see 0001).
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from runtime.errors import DatabaseUnavailable
from runtime.paths import MIGRATIONS_DIR

_LOCK_ID = 7_420_001  # advisory lock: one migrator at a time


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in the order they apply."""
    return sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A connection to `dsn`; failure is DatabaseUnavailable naming the host, not the password."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {first}") from e


def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; returns the names applied now."""
    applied_now: list[str] = []
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files(directory):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
            conn.commit()
    return applied_now


def applied_migrations(dsn: str) -> list[str]:
    """Names of the migrations the database has applied."""
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return []
        return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
