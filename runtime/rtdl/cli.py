"""`python -m runtime rtdl rebuild --from-archive`: rebuild a run's OFP, IEG and CSFB state from the archive;
`python -m runtime rtdl caught-up`: P8's job, run where the database lives (an ECS task in dev_min).

Thin: settings, the archive bucket and the databases, then `runtime.rtdl.rebuild.rebuild_from_archive`;
prints the result as one JSON document (state digest, records read, applied and refused per
component). The archive index is read from FP_DB_DSN (the live database); state is written to
`--target-dsn` (a fresh, migrated database), or to FP_DB_DSN when the run has no RTDL state there.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from runtime.cli_errors import operator_errors
from runtime.errors import PlatformError

app = typer.Typer(help="RTDL core: the P8 caught-up check and replay tools.", no_args_is_help=True)

COMPONENTS = ("ofp", "ieg", "csfb")


@app.callback()
def main() -> None:
    """RTDL core commands."""


@app.command("rebuild")
def rebuild(
    from_archive: Annotated[bool, typer.Option("--from-archive", help="read the run's records from the ArchiveWriter's objects")]
    = False,
    platform_run_id: Annotated[str | None, typer.Option(help="the run (default: $REQUIRED_PLATFORM_RUN_ID)")] = None,
    component: Annotated[list[str] | None, typer.Option(help="component to rebuild (repeatable; default: ofp, ieg, csfb)")] = None,
    target_dsn: Annotated[str | None, typer.Option(help="database to rebuild into (fresh, migrated); default: FP_DB_DSN")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="records per transaction")] = 500,
) -> None:
    """Apply the run's archived records through the OFP, IEG and CSFB handlers into empty state; print the state digest."""
    from runtime.db.migrate import require_migrations
    from runtime.db.postgres import Database
    from runtime.rtdl.rebuild import handlers_for, rebuild_from_archive
    from runtime.settings import load_settings

    with operator_errors():
        if not from_archive:
            raise PlatformError("only a rebuild from the archive is supported", code="RTDL_REBUILD_SOURCE_MISSING",
                                next_step="pass --from-archive")
        settings = load_settings()
        run_id = platform_run_id or os.environ.get(settings.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"))
        if not run_id:
            raise PlatformError("no run given", code="PLATFORM_RUN_ID_MISSING",
                                next_step="pass --platform-run-id or set REQUIRED_PLATFORM_RUN_ID")
        if not settings.db_dsn:
            raise PlatformError("no database DSN is set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
        target = target_dsn or settings.db_dsn
        require_migrations(target)
        handlers = handlers_for(settings, run_id, component or list(COMPONENTS))
        with Database(settings.db_dsn, name="rtdl archive index", max_size=1) as index_db, \
                Database(target, name="rtdl rebuild target", max_size=2) as db:
            result = rebuild_from_archive(db, settings.bucket("S3_ARCHIVE_BUCKET"), run_id, handlers,
                                          index_db=index_db, batch_size=batch_size)
        typer.echo(json.dumps(result.__dict__, sort_keys=True, indent=2))


@app.command("caught-up")
def caught_up(
    platform_run_id: Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the pinned run")],
    wait: Annotated[float, typer.Option(min=0, max=3600, help="seconds without progress before it fails")] = 600.0,
) -> None:
    """P8: wait until every rtdl_core group reached the run's last records, GREEN, no dead letters; write the evidence.
    Nothing is written when it is not caught up (RTDL_NOT_CAUGHT_UP) or a store is missing (RTDL_STATE_MISSING)."""
    from runtime.contracts.ids import is_platform_run_id
    from runtime.rtdl.caught_up import write_caught_up
    from runtime.settings import load_settings

    with operator_errors():
        if not is_platform_run_id(platform_run_id):
            raise PlatformError(f"{platform_run_id!r} is not a platform_run_id", code="RUN_ID_INVALID",
                                next_step="pass the run id P1 pinned")
        written = write_caught_up(load_settings(), platform_run_id, wait_s=wait,
                                  progress=lambda line: typer.echo(line, err=True))
    typer.echo(f"P8 caught up for {platform_run_id}: {', '.join(w.relative_path for w in written)}")
