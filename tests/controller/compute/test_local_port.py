"""The local adapter of the compute port: packs through the class, one-shot jobs as child processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.compute.local_backend import LocalBackend
from controller.compute.port import ComputeBackend, job_failure
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError

RUN = "platform_20261123T120000Z"
SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]
#: A job argv that fails offline with the job's own error line (the run id is checked first).
BAD_RUN_ARGV = ("oracle", "seed", "--platform-run-id", "nope")


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(load_registry("local_parity"), tmp_path, {}, commands={"ig": SLEEPER})
    yield b
    b.stop_pack("control_ingress")


def test_local_backend_satisfies_the_port_and_reports_pack_state(backend: LocalBackend) -> None:
    assert isinstance(backend, ComputeBackend)
    assert backend.pack_state("control_ingress").state == "STOPPED"
    state = backend.start_pack("control_ingress", RUN)
    assert state.running and state.run_scope == RUN
    row = state.to_evidence()
    assert row["processes"][0]["pid"] and row["processes"][0]["task_arn"] is None
    assert backend.pack_state("control_ingress").running
    assert backend.stop_pack("control_ingress") is True
    assert backend.pack_state("control_ingress").state == "STOPPED"


def test_local_job_runs_the_runtime_entrypoint_and_logs_under_the_run(backend: LocalBackend, tmp_path: Path) -> None:
    result = backend.run_job("oracle_seed", ["oracle", "seed", "--help"], RUN)
    assert result.exit_code == 0 and result.pid
    log = tmp_path / RUN / "operate" / "jobs" / "oracle_seed.log"
    assert result.log_location == str(log) and "runtime oracle seed" in log.read_text()


def test_local_job_non_zero_exit_without_an_error_line_is_job_failed_naming_the_log(backend: LocalBackend) -> None:
    with pytest.raises(PlatformError) as e:
        backend.run_job("oracle_seed", ["oracle", "seed", "--no-such-option"], RUN)
    assert e.value.code == "JOB_FAILED" and "oracle_seed.log" in str(e.value.next_step)
    assert backend.run_job("oracle_seed", ["oracle", "seed", "--no-such-option"], RUN, check=False).exit_code == 2


def test_local_job_failure_carries_the_jobs_own_error_code_and_next_step(backend: LocalBackend) -> None:
    with pytest.raises(PlatformError) as e:
        backend.run_job("oracle_seed", [*BAD_RUN_ARGV], RUN)
    assert e.value.code == "PLATFORM_RUN_ID_INVALID" and "'nope'" in e.value.message
    assert e.value.next_step == "pass the run id the controller created"
    result = backend.run_job("oracle_seed", [*BAD_RUN_ARGV], RUN, check=False)
    assert result.failure is not None and result.failure.code == "PLATFORM_RUN_ID_INVALID"
    assert result.to_evidence()["error_code"] == "PLATFORM_RUN_ID_INVALID"


def test_an_earlier_runs_error_line_in_the_same_log_is_not_blamed_on_a_later_failure(backend: LocalBackend) -> None:
    backend.run_job("oracle_seed", [*BAD_RUN_ARGV], RUN, check=False)
    result = backend.run_job("oracle_seed", ["oracle", "seed", "--no-such-option"], RUN, check=False)
    assert result.exit_code == 2 and result.failure is None


@pytest.mark.parametrize("component,argv,code", [
    ("orcale_seed", ["--help"], "UNKNOWN_COMPONENT"),
    ("oracle_seed", [], "JOB_ARGV_INVALID"),
    ("oracle_seed", [""], "JOB_ARGV_INVALID"),
    ("ig", ["ig"], "UNKNOWN_COMPONENT"),  # a pack daemon, not a job
    ("oracle_seed", ["oracle", "check"], "JOB_ARGV_INVALID"),  # another job's command
    ("oracle_seed", ["--help"], "JOB_ARGV_INVALID"),  # not under the job's command at all
])
def test_local_job_refuses_bad_input_before_running(backend: LocalBackend, tmp_path: Path, component: str,
                                                    argv: list[str], code: str) -> None:
    with pytest.raises(PlatformError) as e:
        backend.run_job(component, argv, RUN)
    assert e.value.code == code
    assert not (tmp_path / RUN / "operate" / "jobs").exists()


def test_local_job_refuses_a_malformed_run_scope(backend: LocalBackend, tmp_path: Path) -> None:
    with pytest.raises(PlatformError) as e:
        backend.run_job("oracle_seed", ["oracle", "seed", "--help"], "../etc")
    assert e.value.code == "RUN_ID_INVALID" and not any(tmp_path.iterdir())


@pytest.mark.parametrize("text,code,next_step", [
    ("noise\nerror LEASE_BUSY: held by another run -> wait for the TTL\n", "LEASE_BUSY", "wait for the TTL"),
    ("error A: first\nerror MANIFEST_MISMATCH: sealed differently\ntrailing noise", "MANIFEST_MISMATCH", None),
    ("Error: no such option\n", None, None),
    ("", None, None),
])
def test_job_failure_reads_the_last_operator_error_line(text: str, code: str | None, next_step: str | None) -> None:
    failure = job_failure(text)
    assert (failure.code if failure else None) == code
    assert (failure.next_step if failure else None) == next_step


def test_a_job_s_postgres_sessions_are_labelled_with_its_component(backend: LocalBackend,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    seen: dict[str, str] = {}
    real_popen = subprocess.Popen

    def recording_popen(argv, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs["env"])
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    assert backend.run_job("oracle_seed", ["oracle", "seed", "--help"], RUN).exit_code == 0
    assert seen["PGAPPNAME"] == "fp-oracle_seed"
