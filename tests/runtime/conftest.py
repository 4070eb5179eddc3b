"""Runtime fixtures: fresh databases owned by the cluster's superuser (the owner role), migrated,
with the runtime role prepared exactly as `fp substrate up` prepares it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from runtime.db.migrate import apply_migrations, migration_files, prepare_database
from runtime.db.postgres import connect, with_credentials


@pytest.fixture(scope="session")
def new_database(postgres_dsn: str) -> Callable[[], str]:
    """Makes an empty database of its own; returns the owner's DSN to it."""

    def make() -> str:
        name = f"fp_test_{uuid.uuid4().hex[:10]}"
        with connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_conninfo(postgres_dsn, dbname=name)

    return make


@pytest.fixture(scope="session")
def owner_dsn(new_database: Callable[[], str], runtime_role: tuple[str, str]) -> str:
    """A migrated database with the runtime role granted; the owner's DSN."""
    dsn = new_database()
    prepare_database(dsn, *runtime_role)
    return dsn


@pytest.fixture(scope="session")
def runtime_dsn(owner_dsn: str, runtime_role: tuple[str, str]) -> str:
    """The runtime's DSN to the same database: its own role and password."""
    return with_credentials(owner_dsn, *runtime_role)


@pytest.fixture(scope="session")
def scratch_dsn(new_database: Callable[[], str]) -> str:
    """A migrated database of its own for scratch tables, apart from `owner_dsn`'s catalogue."""
    dsn = new_database()
    apply_migrations(dsn)
    return dsn


@pytest.fixture
def future_migration(new_database: Callable[[], str], runtime_role: tuple[str, str],
                     tmp_path: Path) -> Callable[[str], tuple[str, Path]]:
    """A prepared database and a migrations folder holding today's files plus `sql` as a later
    plane's migration (`0999_test_future.sql`, not applied yet): (owner DSN, folder)."""

    def make(sql: str) -> tuple[str, Path]:
        owner = new_database()
        prepare_database(owner, *runtime_role)
        for path in migration_files():
            (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        (tmp_path / "0999_test_future.sql").write_text(sql, encoding="utf-8")
        return owner, tmp_path

    return make
