"""DLA's Postgres index is append-only for the runtime role."""

from __future__ import annotations

import psycopg
import pytest


def test_audit_tables_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    with psycopg.connect(runtime_dsn, autocommit=True) as conn:
        for sql in ("UPDATE dla_audit_batches SET sha256 = 'x'", "DELETE FROM dla_audit_batches",
                    "UPDATE dla_audit_records SET record_sha256 = 'x'", "DELETE FROM dla_audit_records",
                    "TRUNCATE dla_audit_batches", "TRUNCATE dla_audit_records"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
