"""`python -m runtime db migrate`: the migrations job of dev_min (TD_DB_MIGRATIONS), run as the owner.

The task gets the runtime's DSN (FP_DB_DSN, from SSM_DB_DSN_PATH) for the server and database; it
reads the owner's credentials (SSM_DB_USER_PATH, SSM_DB_PASSWORD_PATH) and the runtime role's
password (SSM_DB_RUNTIME_PASSWORD_PATH) from SSM, creates or updates the runtime role, applies
every pending migration and grants the role its privileges. Locally `fp substrate up` does the same.
"""

from __future__ import annotations

import typer

from runtime.cli_errors import operator_errors
from runtime.db.migrate import prepare_database
from runtime.db.postgres import with_credentials
from runtime.errors import PlatformError
from runtime.settings import Settings, load_settings, read_parameter

app = typer.Typer(help="Database owner jobs: migrations and the runtime role.", no_args_is_help=True)


def _secret(settings: Settings, key: str) -> str:
    path = settings.registry.text(key)
    value = read_parameter(settings.aws_client("ssm"), path)
    if not value:
        raise PlatformError(f"the SSM parameter {path} ({key}) is missing", code="DB_SECRET_MISSING",
                            next_step="apply the demo stack (`fp dev-min-up --env dev_min`), which writes it")
    return value


def _settings() -> tuple[Settings, str]:
    settings = load_settings()
    if not settings.db_dsn:
        raise PlatformError("no database DSN is set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
    return settings, settings.db_dsn


@app.command()
def migrate() -> None:
    """Create/update the runtime role, apply pending migrations and grant the role, as the owner."""
    with operator_errors():
        settings, dsn = _settings()
        owner_dsn = with_credentials(dsn, _secret(settings, "SSM_DB_USER_PATH"),
                                     _secret(settings, "SSM_DB_PASSWORD_PATH"))
        role = settings.registry.text("DB_RUNTIME_ROLE")
        applied = prepare_database(owner_dsn, role, _secret(settings, "SSM_DB_RUNTIME_PASSWORD_PATH"))
        typer.echo(f"db: {len(applied)} migration(s) applied now ({', '.join(applied) or 'none pending'}); "
                   f"role {role} granted")


@app.command()
def status() -> None:
    """Print the migrations this code needs and whether the database (FP_DB_DSN) has them."""
    from runtime.db.migrate import applied_migrations, migration_files

    with operator_errors():
        applied = set(applied_migrations(_settings()[1]))
        for path in migration_files():
            typer.echo(f"{'applied' if path.name in applied else 'PENDING'}  {path.name}")
