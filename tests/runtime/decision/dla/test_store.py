"""DLA's Postgres index is append-only for the runtime role."""

from __future__ import annotations

from tests.runtime.decision.support import assert_truth_tables_refuse_change


def test_audit_tables_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("dla_audit_batches", "dla_audit_records"))
