"""DLA's Postgres index is append-only for the runtime role."""

from __future__ import annotations

from tests.runtime.decision.support import assert_truth_tables_refuse_change


def test_audit_tables_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("dla_audit_batches", "dla_audit_records"))


def test_reading_one_audit_batch_of_a_run_uses_the_batch_index_not_a_table_scan(runtime_dsn: str) -> None:
    from runtime.db.postgres import connect

    with connect(runtime_dsn) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: show which index serves the query
        plan = "\n".join(str(r[0]) for r in conn.execute(
            "EXPLAIN SELECT audit_id, record_sha256, record FROM dla_audit_records WHERE platform_run_id = 'r'"
            " AND batch_seq = 3").fetchall())
        conn.rollback()
    assert "dla_audit_records_batch" in plan, plan
