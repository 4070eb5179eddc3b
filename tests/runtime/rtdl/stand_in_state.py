"""A state source for the caught-up tests: `state_rows(conn, platform_run_id)` as the OFP, IEG and
CSFB stores expose it, reading one row per run from the database so the digest depends on real rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def state_rows(conn: Any, platform_run_id: str) -> Iterable[dict[str, Any]]:
    """The run's durable worker positions as rows (stable, order-free)."""
    rows = conn.execute("SELECT consumer_group, topic, partition, position FROM worker_positions"
                        " WHERE consumer_group LIKE %s", (f"%{platform_run_id}",)).fetchall()
    return [{"group": r[0], "topic": r[1], "partition": r[2], "position": int(r[3])} for r in rows]
