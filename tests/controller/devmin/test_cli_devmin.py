"""`fp devmin ...`: exit codes and operator lines, including every kind of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.devmin.kafka import plaintext_admin
from controller.devmin.terraform import stack_from_registry
from controller.devmin.up import dev_min_up
from controller.packaging import docker_available
from tests.controller.devmin.conftest import DevMinWorld

runner = CliRunner()


@pytest.mark.parametrize("command", ["up", "preflight", "teardown", "teardown-verify", "package"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, ["devmin", command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize("command", [["preflight"], ["teardown", "--run", "platform_20260101T000000Z"], ["package"]])
def test_unknown_environment_is_exit_1_with_code(command: list[str]) -> None:
    result = runner.invoke(app, ["devmin", *command, "--env", "prod_max"])
    assert result.exit_code == 1
    assert "UNKNOWN_ENV" in result.output


def test_local_parity_is_refused_by_cloud_commands() -> None:
    result = runner.invoke(app, ["devmin", "preflight", "--env", "local_parity"])
    assert result.exit_code == 1 and "ENV_NOT_DEV_MIN" in result.output


@pytest.mark.parametrize("run_id", ["", "platform_x", "platform_20260101T000000Z;rm", "p" * 5000,
                                    "platform_20260101T000000Z/../../x"])
def test_malformed_or_oversized_run_id_is_refused_and_nothing_destroyed(dev_min_world: DevMinWorld, run_id: str) -> None:
    result = runner.invoke(app, ["devmin", "teardown-verify", "--run", run_id, "--env", "dev_min"])
    assert result.exit_code == 1
    assert "BAD_RUN_ID" in result.output
    assert len(result.output) < 2000  # an oversized value is not echoed back whole


def test_missing_run_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["devmin", "teardown", "--env", "dev_min"])
    assert result.exit_code == 2 and "--run" in result.output


def test_duplicated_env_option_last_one_wins_and_is_still_validated() -> None:
    result = runner.invoke(app, ["devmin", "preflight", "--env", "dev_min", "--env", "nowhere"])
    assert result.exit_code == 1 and "UNKNOWN_ENV" in result.output


def test_teardown_verify_reports_leftovers_until_the_demo_is_destroyed(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    dev_min_up(w.registry, w.runner, w.aws, kafka_admin=plaintext_admin)
    w.plant_run_evidence()
    before = runner.invoke(app, ["devmin", "teardown-verify", "--run", w.run_id, "--env", "dev_min"])
    assert before.exit_code == 1
    assert "TEARDOWN_LEFTOVER" in before.output and "ecs_services" in before.output
    w.runner.destroy(stack_from_registry(w.registry, "demo"))
    after = runner.invoke(app, ["devmin", "teardown-verify", "--run", w.run_id, "--env", "dev_min"])
    assert after.exit_code == 0, after.output
    assert "billing-safe" in after.output


def test_preflight_on_an_empty_account_exits_1_naming_checks(dev_min_world: DevMinWorld) -> None:
    result = runner.invoke(app, ["devmin", "preflight", "--env", "dev_min"])
    assert result.exit_code == 1
    assert "P0_PREFLIGHT_FAILED" in result.output and "ssm_secrets_present" in result.output


def test_package_local_parity_prints_tag_and_digest() -> None:
    result = runner.invoke(app, ["devmin", "package", "--env", "local_parity"])
    assert result.exit_code == 0, result.output
    assert "image_tag=git-" in result.output and "package_digest=" in result.output


@pytest.mark.skipif(shutil.which("docker") is not None and docker_available(), reason="a Docker engine is running here")
def test_package_dev_min_without_docker_engine_exits_1_with_code_and_next_step() -> None:
    result = runner.invoke(app, ["devmin", "package", "--env", "dev_min"])
    assert result.exit_code == 1
    assert "DOCKER_ENGINE_UNAVAILABLE" in result.output and "P(-1) PASS" not in result.output


def test_up_with_unsynthesised_stacks_fails_closed_before_any_cloud_call(tmp_path: Path) -> None:
    result = runner.invoke(app, ["devmin", "up", "--env", "dev_min", "--stacks-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "TERRAFORM_STACK_MISSING" in result.output or "TERRAFORM_MISSING" in result.output


def test_teardown_with_failed_destroy_names_it_and_writes_no_proof(dev_min_world: DevMinWorld, tmp_path: Path) -> None:
    w = dev_min_world
    result = runner.invoke(app, ["devmin", "teardown", "--env", "dev_min", "--run", w.run_id, "--stacks-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "terraform_destroy_demo" in result.output
