"""WSP's Postgres checkpoint: which READY it took up, and how far each output got.

A READY that is COMPLETED is skipped when the control topic replays it; a STARTED one resumes
from the rows of each output IG has already answered for. Connections and error translation:
runtime/db/postgres.py.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.db.postgres import Database


class WspCheckpoint:
    """Checkpoint rows of one Postgres database."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._db = Database(dsn, name="WSP checkpoint store", max_size=1)

    def close(self) -> None:
        """Release the connection."""
        self._db.close()

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._db.transaction() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def status(self, platform_run_id: str, scenario_run_id: str) -> str | None:
        """STARTED / COMPLETED / FAILED, or None if this READY was never taken up."""
        rows = self._run("SELECT status FROM wsp_ready_runs WHERE platform_run_id = %s AND scenario_run_id = %s",
                         (platform_run_id, scenario_run_id))
        return str(rows[0][0]) if rows else None

    def start(self, platform_run_id: str, scenario_run_id: str, ready_ref: dict[str, Any], *, restart: bool = False,
              outputs: list[str] | None = None) -> None:
        """Record that streaming of this READY starts (or restarts) with a progress row for each of
        `outputs` (one that has sent nothing yet has no frontier); `restart` resets the progress."""
        with self._db.transaction():  # all or nothing: a restart never keeps stale progress
            self._run(
                "INSERT INTO wsp_ready_runs (platform_run_id, scenario_run_id, ready_ref, status) VALUES (%s, %s, %s::jsonb, 'STARTED')"
                " ON CONFLICT (platform_run_id, scenario_run_id) DO UPDATE SET status = 'STARTED', ended_at = NULL,"
                " attempts = wsp_ready_runs.attempts + 1",
                (platform_run_id, scenario_run_id, json.dumps(ready_ref)))
            if restart:
                self._run("DELETE FROM wsp_output_progress WHERE platform_run_id = %s AND scenario_run_id = %s",
                          (platform_run_id, scenario_run_id))
            if outputs:
                self._run("INSERT INTO wsp_output_progress (platform_run_id, scenario_run_id, output_id)"
                          " SELECT %s, %s, o FROM unnest(%s::text[]) AS o ON CONFLICT DO NOTHING",
                          (platform_run_id, scenario_run_id, list(outputs)))

    def finish(self, platform_run_id: str, scenario_run_id: str, status: str) -> None:
        """Mark the READY COMPLETED or FAILED."""
        self._run("UPDATE wsp_ready_runs SET status = %s, ended_at = now() WHERE platform_run_id = %s AND scenario_run_id = %s",
                  (status, platform_run_id, scenario_run_id))

    def rows_sent(self, platform_run_id: str, scenario_run_id: str) -> dict[str, int]:
        """Per output, the rows IG has answered for."""
        rows = self._run("SELECT output_id, rows_sent FROM wsp_output_progress WHERE platform_run_id = %s AND scenario_run_id = %s",
                         (platform_run_id, scenario_run_id))
        return {str(r[0]): int(r[1]) for r in rows}

    def advance(self, platform_run_id: str, scenario_run_id: str, output_id: str, rows_sent: int,
                frontier_ts_micros: int | None = None, ended: bool = False) -> None:
        """Move one output's checkpoint forward (never backwards): rows IG answered for, the
        output's event-time frontier (every row before it answered) and whether it has ended."""
        self._run(
            "INSERT INTO wsp_output_progress (platform_run_id, scenario_run_id, output_id, rows_sent, frontier_ts_micros, ended)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (platform_run_id, scenario_run_id, output_id) DO UPDATE"
            " SET rows_sent = greatest(wsp_output_progress.rows_sent, excluded.rows_sent),"
            " frontier_ts_micros = greatest(wsp_output_progress.frontier_ts_micros, excluded.frontier_ts_micros),"
            " ended = wsp_output_progress.ended OR excluded.ended, updated_at = now()",
            (platform_run_id, scenario_run_id, output_id, rows_sent, frontier_ts_micros, ended))
