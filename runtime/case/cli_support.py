"""What the case plane's CLIs share: the run id check and the migrated database they open."""

from __future__ import annotations

from typing import Any

from runtime.errors import PlatformError


def require_run(platform_run_id: str) -> None:
    """Refuse (RUN_ID_INVALID) what is not a platform_run_id, before any connection."""
    from runtime.contracts.ids import is_platform_run_id

    if not is_platform_run_id(platform_run_id):
        raise PlatformError(f"{platform_run_id!r} is not a platform_run_id", code="RUN_ID_INVALID",
                            next_step="pass the run id P1 pinned (platform_YYYYMMDDTHHMMSSZ)")


def open_database(settings: Any, name: str) -> Any:
    """The runtime database (FP_DB_DSN) once its migrations are applied: DB_DSN_MISSING or
    MIGRATIONS_PENDING otherwise, each with its next step."""
    from runtime.db.migrate import require_migrations
    from runtime.db.postgres import Database

    if not settings.db_dsn:
        raise PlatformError("no database DSN is set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
    require_migrations(settings.db_dsn)
    return Database(settings.db_dsn, name=name, max_size=1)
