"""Applies the SQL files of `runtime/db/migrations/` in name order, each once, in a transaction.

File names are `NNNN_<owner>_<what>.sql`; number ranges by owner keep parallel work apart:
0001-0099 foundation, 0100-0199 bus + SR, 0200-0299 IG, 0300-0399 WSP, 0400-0499 controller,
0500-0599 RTDL, 0600-0699 decision lane, 0700-0799 case/labels, 0800-0899 obs/gov.
Truth tables get a trigger that refuses UPDATE and DELETE (see 0001) and one that refuses
TRUNCATE (0002; `SELECT fp_make_append_only('<table>')` attaches both). Document columns (jsonb,
bytea, arrays) get no planner statistics (0012): ANALYZE would sort their values for nothing.

Migrations run as the database owner, never as the runtime role: after every run the migrator
guards every truth table against TRUNCATE and grants the runtime role exactly what it may do
(runtime/db/roles.py). Runtime processes only check that the migrations they need are applied
(`require_migrations`).
"""

from __future__ import annotations

from pathlib import Path

from runtime.db.postgres import Database, connect
from runtime.db.roles import ensure_runtime_role, grant_runtime_privileges
from runtime.errors import DatabaseMigrationsPending
from runtime.paths import MIGRATIONS_DIR

__all__ = ["applied_migrations", "apply_migrations", "connect", "migration_files", "prepare_database", "require_migrations"]

_LOCK_ID = 7_420_001  # advisory lock: one migrator at a time


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in the order they apply."""
    return sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR, *, runtime_role: str | None = None) -> list[str]:
    """Apply every pending migration as the owner `dsn` connects as; returns the names applied now.
    With `runtime_role` (an existing role), grant it its privileges on every table afterwards."""
    applied_now: list[str] = []
    with Database(dsn, name="migrator", max_size=1) as db, db.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files(directory):
                if path.name in done:
                    continue
                with db.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied_now.append(path.name)
            with db.transaction():
                if conn.execute("SELECT to_regproc('fp_guard_truth_tables')").fetchone() != (None,):
                    conn.execute("SELECT fp_guard_truth_tables()")
                if conn.execute("SELECT to_regproc('fp_skip_document_statistics')").fetchone() != (None,):
                    conn.execute("SELECT fp_skip_document_statistics()")
                if runtime_role:
                    grant_runtime_privileges(conn, runtime_role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


def applied_migrations(dsn: str) -> list[str]:
    """Names of the migrations the database has applied (readable by the runtime role)."""
    with Database(dsn, name="migrations", max_size=1) as db, db.connection() as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return []
        return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def require_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> None:
    """Refuse to start (DB_MIGRATIONS_PENDING) unless every migration of this code is applied: the
    runtime role cannot apply them itself."""
    applied = set(applied_migrations(dsn))
    pending = [p.name for p in migration_files(directory) if p.name not in applied]
    if pending:
        raise DatabaseMigrationsPending(f"{len(pending)} migration(s) not applied to the database: {', '.join(pending)}")


def prepare_database(owner_dsn: str, runtime_role: str, runtime_password: str) -> list[str]:
    """Everything the owner does before the runtime may connect: the runtime role with its
    password, every pending migration, the TRUNCATE guards and the runtime's grants. Used by
    `fp substrate up` and by the dev_min migrations job; returns the migrations applied now."""
    with Database(owner_dsn, name="migrator", max_size=1) as db, db.transaction() as conn:
        ensure_runtime_role(conn, runtime_role, runtime_password)
    return apply_migrations(owner_dsn, runtime_role=runtime_role)
