"""The `sr` commands: exit codes and one-line errors an operator can act on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from runtime.contracts.ids import scenario_run_id
from runtime.settings import Settings
from runtime.sr.cli import app
from runtime.sr.lease import LeaseStore
from tests.runtime.sr.conftest import write_pack

runner = CliRunner()


@pytest.fixture
def sr_env(kinesis_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI's settings (read from the environment) at the session servers."""
    monkeypatch.setenv("FP_ENV", "local_parity")
    monkeypatch.setenv("FP_BUS", "kinesis")
    monkeypatch.setenv("FP_AWS_REGION", "us-east-1")
    monkeypatch.setenv("FP_OBJECT_STORE_ENDPOINT", kinesis_settings.object_store_endpoint or "")
    monkeypatch.setenv("FP_DB_DSN", kinesis_settings.db_dsn or "")
    monkeypatch.delenv("REQUIRED_PLATFORM_RUN_ID", raising=False)
    monkeypatch.delenv("SR_RUN_EQUIVALENCE_KEY", raising=False)
    return kinesis_settings


def test_run_then_rerun_with_the_same_key_exits_nonzero_with_lease_busy(sr_env: Settings, run_id: str, equivalence_key: str) -> None:
    write_pack(sr_env, run_id)
    first = runner.invoke(app, ["run", "--platform-run-id", run_id, "--equivalence-key", equivalence_key])
    assert first.exit_code == 0, first.output
    assert "READY" in first.output and scenario_run_id(equivalence_key) in first.output
    second = runner.invoke(app, ["run", "--platform-run-id", run_id, "--equivalence-key", equivalence_key])
    assert second.exit_code == 1
    assert "LEASE_BUSY" in second.output
    assert f"python -m runtime sr lease-clear --equivalence-key {equivalence_key}" in " ".join(second.output.split())

    cleared = runner.invoke(app, ["lease-clear", "--equivalence-key", equivalence_key])
    assert cleared.exit_code == 0 and "cleared" in cleared.output
    assert LeaseStore(sr_env.db_dsn or "").current(scenario_run_id(equivalence_key)) is None
    third = runner.invoke(app, ["run", "--platform-run-id", run_id, "--equivalence-key", equivalence_key])
    assert third.exit_code == 0, third.output


def test_inputs_default_to_the_registry_named_environment_variables(sr_env: Settings, run_id: str, equivalence_key: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_pack(sr_env, run_id)
    monkeypatch.setenv("REQUIRED_PLATFORM_RUN_ID", run_id)
    monkeypatch.setenv("SR_RUN_EQUIVALENCE_KEY", equivalence_key)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert run_id in result.output


def test_gate_failure_exits_nonzero_naming_the_gate(sr_env: Settings, run_id: str, equivalence_key: str) -> None:
    pack = write_pack(sr_env, run_id)
    pack.store.delete(pack.seal_key())
    result = runner.invoke(app, ["run", "--platform-run-id", run_id, "--equivalence-key", equivalence_key])
    assert result.exit_code == 1
    assert "SR_GATE_FAILED" in result.output and "oracle_seal" in result.output


def test_missing_inputs_exit_nonzero(sr_env: Settings) -> None:
    result = runner.invoke(app, ["run", "--equivalence-key", "k"])
    assert result.exit_code == 1 and "SR_INPUT_INVALID" in result.output and "platform_run_id" in result.output
    result = runner.invoke(app, ["run", "--platform-run-id", "platform_20260101T000000Z"])
    assert result.exit_code == 1 and "SR_INPUT_INVALID" in result.output
    result = runner.invoke(app, ["lease-clear", "--equivalence-key", ""])
    assert result.exit_code == 1 and "SR_INPUT_INVALID" in result.output


def test_entrypoint_dispatches_sr_and_refuses_a_malformed_run_id() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runtime", "sr", "run", "--platform-run-id", "platform_bad", "--equivalence-key", "k"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "SR_INPUT_INVALID" in proc.stderr and "platform_bad" in proc.stderr
    help_text = subprocess.run([sys.executable, "-m", "runtime", "sr", "--help"], capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and "lease-clear" in help_text.stdout
