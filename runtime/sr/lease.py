"""SR leases in PostgreSQL: one holder per equivalence key (scenario_run_id) until the TTL runs out.

The database clock decides expiry, so SR processes on different hosts agree. Acquire is one
upsert that only takes the row when it is free, expired, or already ours; anything else is
LEASE_BUSY naming the holder and the expiry. An operator may clear a lease explicitly.
Connections and error translation: runtime/db/postgres.py.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime

from runtime.db.postgres import Database
from runtime.errors import PlatformError


class LeaseBusy(PlatformError):
    """Another SR run holds the lease of this equivalence key."""

    code = "LEASE_BUSY"
    next_step = "use a new equivalence key, wait for the lease TTL, or run `python -m runtime sr lease-clear --equivalence-key <key>`"


def lease_clear_command(equivalence_key: str) -> str:
    """The command an operator types to drop the lease of `equivalence_key` (quoted for a shell)."""
    return f"python -m runtime sr lease-clear --equivalence-key {shlex.quote(equivalence_key)}"


@dataclass(frozen=True)
class Lease:
    """A held lease."""

    scenario_run_id: str
    equivalence_key: str
    platform_run_id: str
    holder: str
    expires_at: datetime


class LeaseStore:
    """Acquire, release and clear SR leases (table sr_run_leases, migration 0101)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._db = Database(dsn, name="SR lease store", max_size=1)

    def close(self) -> None:
        """Release the connection."""
        self._db.close()

    def __enter__(self) -> LeaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acquire(self, scenario_run_id: str, equivalence_key: str, platform_run_id: str, holder: str, ttl_seconds: int) -> Lease:
        """Take the lease for `ttl_seconds`, or raise LeaseBusy when another holder has it."""
        if ttl_seconds <= 0:
            raise PlatformError(f"lease TTL must be positive, got {ttl_seconds}", code="SR_LEASE_TTL_INVALID")
        with self._db.connection() as conn:
            row = conn.execute(
                "INSERT INTO sr_run_leases (scenario_run_id, equivalence_key, platform_run_id, holder, expires_at)"
                " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (scenario_run_id) DO UPDATE SET equivalence_key = EXCLUDED.equivalence_key,"
                "   platform_run_id = EXCLUDED.platform_run_id, holder = EXCLUDED.holder,"
                "   acquired_at = now(), expires_at = EXCLUDED.expires_at"
                " WHERE sr_run_leases.expires_at <= now() OR sr_run_leases.holder = EXCLUDED.holder"
                " RETURNING expires_at",
                (scenario_run_id, equivalence_key, platform_run_id, holder, ttl_seconds),
            ).fetchone()
            if row is not None:
                return Lease(scenario_run_id, equivalence_key, platform_run_id, holder, row[0])
            current = conn.execute(
                "SELECT holder, platform_run_id, expires_at FROM sr_run_leases WHERE scenario_run_id = %s",
                (scenario_run_id,),
            ).fetchone()
        detail = f"held by {current[0]} for {current[1]} until {current[2].isoformat()}" if current else "held by another run"
        raise LeaseBusy(f"the lease of equivalence key {equivalence_key!r} (scenario_run_id {scenario_run_id}) is {detail}",
                        next_step=f"use a new equivalence key, wait until {current[2].isoformat() if current else 'the lease TTL'}, "
                                  f"or run `{lease_clear_command(equivalence_key)}` (with FP_DB_DSN set to the database "
                                  "`fp substrate status` shows)")

    def release(self, lease: Lease) -> None:
        """Give the lease back (only if still ours)."""
        with self._db.connection() as conn:
            conn.execute("DELETE FROM sr_run_leases WHERE scenario_run_id = %s AND holder = %s", (lease.scenario_run_id, lease.holder))

    def clear(self, scenario_run_id: str) -> bool:
        """Operator action: drop the lease whoever holds it; True when one existed."""
        with self._db.connection() as conn:
            cursor = conn.execute("DELETE FROM sr_run_leases WHERE scenario_run_id = %s", (scenario_run_id,))
            return cursor.rowcount > 0

    def current(self, scenario_run_id: str) -> Lease | None:
        """The lease row of `scenario_run_id` if one is stored and not yet expired."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT scenario_run_id, equivalence_key, platform_run_id, holder, expires_at FROM sr_run_leases"
                " WHERE scenario_run_id = %s AND expires_at > now()",
                (scenario_run_id,),
            ).fetchone()
        return Lease(*row) if row else None
