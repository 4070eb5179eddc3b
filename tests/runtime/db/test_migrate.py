"""The migrator's standing rules beyond grants and guards: document columns (jsonb, json, bytea,
arrays) carry no planner statistics, in today's tables and in any a later migration adds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runtime.db.migrate import apply_migrations
from runtime.db.postgres import connect

_DOCUMENT_TYPES = "t.typname IN ('jsonb', 'json', 'bytea') OR t.typcategory = 'A'"


def _targets(dsn: str, where: str) -> dict[str, int]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.relname || '.' || a.attname, a.attstattarget FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid"
            " JOIN pg_type t ON t.oid = a.atttypid WHERE r.relnamespace = 'public'::regnamespace AND r.relkind = 'r'"
            f" AND a.attnum > 0 AND NOT a.attisdropped AND ({where})").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _analysed(dsn: str, table: str) -> set[str]:
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"ANALYZE {table}")
        return {str(r[0]) for r in conn.execute("SELECT attname FROM pg_stats WHERE tablename = %s", (table,))}


def test_every_document_column_of_the_schema_has_no_statistics_and_key_columns_keep_theirs(owner_dsn: str) -> None:
    documents = _targets(owner_dsn, _DOCUMENT_TYPES)
    assert {"ig_receipts.receipt", "ig_admissions.eb_ref", "worker_outbox.value", "df_decisions.reason_codes",
            "rtdl_ofp_blocks.country_firsts", "dla_audit_records.record"} <= set(documents)
    assert {name: target for name, target in documents.items() if target != 0} == {}
    keys = _targets(owner_dsn, "a.attname IN ('platform_run_id', 'event_id')")
    assert keys and all(target == -1 for target in keys.values())


def test_a_later_tables_documents_are_not_analysed_but_its_keys_and_expression_index_are(
        future_migration: Callable[[str], tuple[str, Path]], runtime_role: tuple[str, str]) -> None:
    owner, folder = future_migration(
        "CREATE TABLE future_docs (k text PRIMARY KEY, doc jsonb NOT NULL, raw bytea NOT NULL, tags text[] NOT NULL,"
        " ranks int[] NOT NULL);\n"
        "CREATE INDEX future_docs_topic ON future_docs ((doc->>'topic'));\n"
        "CREATE OR REPLACE FUNCTION fp_analysed_documents() RETURNS text[] LANGUAGE sql IMMUTABLE AS"
        " $$ SELECT ARRAY['future_docs.tags'] $$;\n")
    assert apply_migrations(owner, folder, runtime_role=runtime_role[0]) == ["0999_test_future.sql"]
    with connect(owner) as conn:
        conn.execute("INSERT INTO future_docs SELECT 'k' || i, jsonb_build_object('topic', 't' || (i % 4), 'n', i),"
                     " int4send(i), ARRAY['a' || (i % 3)], ARRAY[i, i + 1] FROM generate_series(1, 500) AS i")
        conn.commit()
    assert _analysed(owner, "future_docs") == {"k", "tags"}
    with connect(owner) as conn:
        expression = conn.execute("SELECT n_distinct FROM pg_stats WHERE tablename = 'future_docs_topic'").fetchall()
    assert expression == [(4.0,)]
    assert apply_migrations(owner, folder, runtime_role=runtime_role[0]) == []
    assert _analysed(owner, "future_docs") == {"k", "tags"}
