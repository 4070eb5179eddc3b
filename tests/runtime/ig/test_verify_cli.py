"""`ig ready-check` and `ig commit-summary` (the P4/P7 jobs): bad input fails with a code, writes nothing.

Their happy path is the spine itself (tests/e2e), where the controller runs them as jobs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from controller.substrate.processes import free_port
from runtime.contracts.registry import load_registry
from runtime.ig.cli import app

REG = load_registry("local_parity")
RUN = "platform_20261123T101010Z"
runner = CliRunner()


def _bundle_keys(s3_client, run_id: str) -> list[str]:
    bucket = REG.text("S3_EVIDENCE_BUCKET")
    prefix = REG.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=run_id)
    try:
        return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    except s3_client.exceptions.NoSuchBucket:
        return []


@pytest.fixture
def job_env(moto_endpoint: str) -> dict[str, str]:
    return {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": "", "FP_IG_API_KEY": "",
            "FP_IG_BASE_URL": f"http://127.0.0.1:{free_port()}", "REQUIRED_PLATFORM_RUN_ID": ""}


def test_ready_check_refuses_a_malformed_run_id(job_env: dict[str, str]) -> None:
    r = runner.invoke(app, ["ready-check", "--platform-run-id", "run-1", "--scenario-run-id", "s", "--service-name", "ig"],
                      env=job_env)
    assert r.exit_code == 1 and "RUN_ID_INVALID" in r.output


def test_ready_check_without_a_scenario_run_id_is_a_usage_error(job_env: dict[str, str]) -> None:
    r = runner.invoke(app, ["ready-check", "--platform-run-id", RUN, "--service-name", "ig"], env=job_env)
    assert r.exit_code == 2


def test_ready_check_against_an_ig_that_never_answers_is_ig_not_answering_and_writes_nothing(
        job_env: dict[str, str], s3_client) -> None:
    r = runner.invoke(app, ["ready-check", "--platform-run-id", RUN, "--scenario-run-id", "s", "--service-name", "ig",
                            "--wait", "0.5"], env={**job_env, "FP_IG_API_KEY": "k" * 32})
    assert r.exit_code == 1 and "IG_NOT_ANSWERING" in r.output
    assert not _bundle_keys(s3_client, RUN)


def test_ready_check_with_an_out_of_range_wait_is_a_usage_error(job_env: dict[str, str]) -> None:
    r = runner.invoke(app, ["ready-check", "--platform-run-id", RUN, "--scenario-run-id", "s", "--service-name", "ig",
                            "--wait", "100000"], env=job_env)
    assert r.exit_code == 2


def test_commit_summary_without_a_database_is_db_dsn_missing_and_writes_nothing(job_env: dict[str, str], s3_client) -> None:
    r = runner.invoke(app, ["commit-summary", "--platform-run-id", RUN], env=job_env)
    assert r.exit_code == 1 and "DB_DSN_MISSING" in r.output
    assert not _bundle_keys(s3_client, RUN)


def test_commit_summary_refuses_a_malformed_run_id(job_env: dict[str, str]) -> None:
    r = runner.invoke(app, ["commit-summary", "--platform-run-id", "platform_2026"], env=job_env)
    assert r.exit_code == 1 and "RUN_ID_INVALID" in r.output


@pytest.mark.parametrize("command,words", [
    ("ready-check", ("401", "--scenario-run-id", "--wait")),
    ("commit-summary", ("receipt", "--platform-run-id")),
])
def test_the_job_commands_explain_themselves(command: str, words: tuple[str, ...]) -> None:
    r = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and all(w in r.output for w in words)
