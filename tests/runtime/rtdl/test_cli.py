"""`python -m runtime rtdl rebuild`: fail-closed exits with a code and the next step."""

from __future__ import annotations

from typer.testing import CliRunner

from runtime.rtdl.cli import app

CLEAN = {"FP_ENV": "local_parity", "REQUIRED_PLATFORM_RUN_ID": "", "FP_DB_DSN": ""}


def test_rebuild_without_a_source_exits_1_naming_the_flag():
    result = CliRunner().invoke(app, ["rebuild", "--platform-run-id", "platform_20260105T000000Z"], env=CLEAN)
    assert result.exit_code == 1 and "RTDL_REBUILD_SOURCE_MISSING" in result.output and "--from-archive" in result.output


def test_rebuild_without_a_run_or_a_database_exits_1():
    runner = CliRunner()
    no_run = runner.invoke(app, ["rebuild", "--from-archive"], env=CLEAN)
    assert no_run.exit_code == 1 and "PLATFORM_RUN_ID_MISSING" in no_run.output
    no_db = runner.invoke(app, ["rebuild", "--from-archive", "--platform-run-id", "platform_20260105T000000Z"], env=CLEAN)
    assert no_db.exit_code == 1 and "DB_DSN_MISSING" in no_db.output


def test_rebuild_help_names_the_archive_and_the_target():
    out = CliRunner().invoke(app, ["rebuild", "--help"]).output
    assert "--from-archive" in out and "--target-dsn" in out
