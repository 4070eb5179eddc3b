"""Decision-lane store fixtures: a pool on the session's migrated database, as the runtime role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.db.postgres import Database


@pytest.fixture
def db(runtime_dsn: str) -> Iterator[Database]:
    """A small pool on the runtime role's DSN (closed after the test)."""
    database = Database(runtime_dsn, name="decision lane store test", max_size=2)
    yield database
    database.close()
