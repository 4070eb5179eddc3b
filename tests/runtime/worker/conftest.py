"""Worker fixtures: the echo handler's effects table, created by the owner like any migration."""

from __future__ import annotations

import pytest

from runtime.db.postgres import connect


@pytest.fixture(scope="session", autouse=True)
def echo_effects_table(owner_dsn: str) -> None:
    """A table only the echo handler of the worker tests writes (the runtime role gets INSERT by
    the migrator's default privileges)."""
    with connect(owner_dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS worker_echo_effects (platform_run_id text NOT NULL, event_id text NOT NULL,"
                     " applied integer NOT NULL, PRIMARY KEY (platform_run_id, event_id))")
