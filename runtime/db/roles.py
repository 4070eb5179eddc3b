"""The runtime's least-privilege database role: what it may do to each table, granted by the owner.

The runtime never owns a table, so it can neither alter, drop nor disable the triggers of one,
and it has no CREATE on the schema (no DDL). Per table, one rule read from the catalogue:
truth tables (those carrying the append-only trigger, migration 0001) get SELECT and INSERT only;
state tables (leases, checkpoints, admissions) get SELECT, INSERT, UPDATE and DELETE;
`schema_migrations` is read-only. No table grants TRUNCATE. Default privileges give a table a later
migration creates SELECT and INSERT at once, and the grant step after every migration run
(`grant_runtime_privileges`) settles it. Everything here runs as the owner (on RDS, the master
user, which is no superuser but may create roles and owns the tables it created).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

STATE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
TRUTH_PRIVILEGES = "SELECT, INSERT"
READ_ONLY_TABLES = ("schema_migrations",)


def truth_tables(conn: psycopg.Connection) -> list[str]:
    """Tables of schema public that carry the append-only trigger, by name."""
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE p.proname = 'fp_refuse_mutation' AND NOT t.tgisinternal AND n.nspname = 'public'"
        " ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows]


def ensure_runtime_role(conn: psycopg.Connection, role: str, password: str) -> bool:
    """Create the login role `role` with `password`, or set its password; True when created now.
    Needs CREATEROLE (the RDS master user has it); never grants more than LOGIN."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER ROLE {} WITH LOGIN PASSWORD {}" if exists else \
        "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}"
    conn.execute(sql.SQL(verb).format(sql.Identifier(role), sql.Literal(password)))
    return not exists


def grant_runtime_privileges(conn: psycopg.Connection, role: str) -> None:
    """Grant `role` exactly its privileges on every table of schema public (see the module
    docstring); run by the migrator, as the owner, after every migration run."""
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(str(conn.execute("SELECT current_database()").fetchone()[0])), ident))  # type: ignore[index]
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO {}").format(ident))
    conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(ident))
    conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
    truth = set(truth_tables(conn))
    tables = [str(r[0]) for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]
    for table in tables:
        target = sql.Identifier(table)
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(target, ident))
        privileges = "SELECT" if table in READ_ONLY_TABLES else TRUTH_PRIVILEGES if table in truth else STATE_PRIVILEGES
        conn.execute(sql.SQL("GRANT " + privileges + " ON TABLE {} TO {}").format(target, ident))
