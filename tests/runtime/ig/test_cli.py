"""`python -m runtime ig|wsp`: help, and fail-closed exits with a code when configuration is missing."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from runtime.ig.cli import app as ig_app
from runtime.paths import REPO_ROOT
from runtime.wsp.cli import app as wsp_app

CLEAN = {"FP_ENV": "local_parity", "REQUIRED_PLATFORM_RUN_ID": "", "FP_IG_API_KEY": "", "FP_DB_DSN": ""}


def test_components_are_registered_in_the_runtime_entrypoint():
    out = subprocess.run([sys.executable, "-m", "runtime", "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "ig" in out.stdout.split() and "wsp" in out.stdout.split()


def test_ig_serve_help_and_missing_run_pin_exits_1():
    runner = CliRunner()
    assert "Serve IG" in runner.invoke(ig_app, ["serve", "--help"]).output
    result = runner.invoke(ig_app, ["serve"], env={**CLEAN, "FP_IG_API_KEY": "k" * 20})
    assert result.exit_code == 1 and "IG_CONFIG_INVALID" in result.output


def test_ig_serve_refuses_a_placeholder_key():
    result = CliRunner().invoke(ig_app, ["serve"], env={**CLEAN, "FP_IG_API_KEY": "changeme",
                                                        "REQUIRED_PLATFORM_RUN_ID": "platform_20260101T000000Z"})
    assert result.exit_code == 1 and "placeholder" in result.output


def test_wsp_run_help_and_missing_run_id_exits_1():
    runner = CliRunner()
    assert "max-events-per-output" in runner.invoke(wsp_app, ["run", "--help"], env={"COLUMNS": "200"}).output
    result = runner.invoke(wsp_app, ["run"], env=CLEAN)
    assert result.exit_code == 1 and "WSP_RUN_ID_MISSING" in result.output


def test_wsp_run_rejects_an_unknown_mode_before_anything():
    result = CliRunner().invoke(wsp_app, ["run", "--mode", "nope", "--platform-run-id", "platform_20260101T000000Z"],
                                env={**CLEAN, "FP_DB_DSN": "postgresql://127.0.0.1:1/x", "FP_IG_API_KEY": "k" * 20})
    assert result.exit_code == 1 and "WSP_MODE_UNKNOWN" in result.output
