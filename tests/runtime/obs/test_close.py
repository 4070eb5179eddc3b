"""`python -m runtime reporter close` on bad input and beside another reporter: a specific error code
with the next step, exit 1, and no closure file written (the sound closure runs on the spine in
tests/e2e/test_spine_green.py)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.contracts.registry import load_registry
from runtime.evidence import catalog
from runtime.obs.cli import app
from runtime.obs.closure import PHASES_BEFORE_CLOSURE
from runtime.obs.lock import ReporterLock
from runtime.settings import Settings, load_settings
from tests.support.events import random_run_id

REG = load_registry("local_parity")
runner = CliRunner()


@pytest.fixture
def settings(moto_endpoint: str, runtime_dsn: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=REG.text("S3_EVIDENCE_BUCKET"))
    env = {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn, "FP_BUS": "kafka"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_settings(env)


def _put(settings: Settings, run: str, relative: str, doc: dict[str, Any]) -> None:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run)
    settings.bucket("S3_EVIDENCE_BUCKET").put(prefix + relative, json.dumps(doc).encode())


def _bundle(settings: Settings, run: str, *, last_passed: str = "P10", leave_out: str | None = None) -> None:
    """A bundle whose phases passed up to `last_passed`, holding every required file but `leave_out`."""
    for phase in PHASES_BEFORE_CLOSURE[: PHASES_BEFORE_CLOSURE.index(last_passed) + 1]:
        _put(settings, run, REG.render("PHASE_RECORD_PATH_PATTERN", phase_id=phase), {"phase_id": phase, "state": "PASS"})
        for entry in catalog.required_for(phase):
            if REG.text(entry.path_key) != leave_out:
                pins = {"config": {"registry_sha256": REG.source_sha256}} if entry.path_key == "EVIDENCE_RUN_JSON_KEY" else {}
                _put(settings, run, REG.text(entry.path_key), {"platform_run_id": run, **pins})


def _closed(settings: Settings, run: str) -> bool:
    prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run)
    return settings.bucket("S3_EVIDENCE_BUCKET").exists(prefix + REG.text("RUN_CLOSURE_MARKER_PATH_PATTERN"))


def _refused(settings: Settings, run: str, code: str) -> str:
    result = runner.invoke(app, ["close", "--platform-run-id", run])
    assert result.exit_code == 1, result.output
    assert code in result.output and "->" in result.output, result.output  # the code and the operator's next step
    assert not _closed(settings, run)
    return result.output


def test_an_unknown_run_is_refused_with_run_unknown(settings: Settings) -> None:
    _refused(settings, random_run_id(), "RUN_UNKNOWN")


def test_a_run_that_stopped_before_p10_is_not_closable(settings: Settings) -> None:
    run = random_run_id()
    _bundle(settings, run, last_passed="P8")
    out = _refused(settings, run, "REPORTER_RUN_NOT_CLOSABLE")
    assert "P10 never run" in out and "P8" in out


def test_a_bundle_missing_a_file_is_refused_naming_it(settings: Settings) -> None:
    run = random_run_id()
    _bundle(settings, run, leave_out="decision_lane/audit_summary.json")
    out = _refused(settings, run, "REPORTER_EVIDENCE_MISSING")
    assert "decision_lane/audit_summary.json" in out


def test_a_second_reporter_beside_the_holder_fails_closed_with_lock_held(settings: Settings, runtime_dsn: str) -> None:
    run = random_run_id()
    _bundle(settings, run)
    with ReporterLock(runtime_dsn, REG, run, holder="first-reporter"):
        out = _refused(settings, run, "REPORTER_LOCK_HELD")
    assert "first-reporter" in out
