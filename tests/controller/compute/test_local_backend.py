"""The local compute backend: packs run supervised, crash-restart with backoff, stop cleanly."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.compute.local_backend import (
    daemon_commands,
    pack_paths,
    read_pack_state,
    running_packs,
    start_pack,
    stop_pack,
)
from controller.substrate.processes import is_running
from runtime.components import COMPONENTS
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError

SLEEPER = [sys.executable, "-c", "import os, time; print(os.environ['REQUIRED_PLATFORM_RUN_ID'],"
           " os.environ.get('PGAPPNAME'), flush=True); time.sleep(300)"]
RUN = "platform_20261123T120000Z"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    registry = load_registry("local_parity")
    for pack in running_packs(registry, tmp_path):
        stop_pack(registry, pack, tmp_path)


def _wait(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_pack_runs_its_daemons_with_the_run_scope_and_logs(root: Path) -> None:
    registry = load_registry("local_parity")
    state = start_pack(registry, "control_ingress", RUN, root, {}, commands={"ig": SLEEPER})
    assert state["state"] == "RUNNING" and state["run_scope"] == RUN and state["running_count"] == 1
    log = pack_paths(root, registry, "control_ingress", RUN).log_dir / "ig.log"
    assert _wait(lambda: log.is_file() and RUN in log.read_text())
    assert f"{RUN} fp-ig" in log.read_text()  # its PostgreSQL sessions are labelled with the daemon's name
    again = start_pack(registry, "control_ingress", RUN, root, {}, commands={"ig": SLEEPER})
    assert again["supervisor_pid"] == state["supervisor_pid"]  # kept: no duplicate consumer


def test_crashed_daemon_is_restarted_with_backoff(root: Path) -> None:
    registry = load_registry("local_parity")
    state = start_pack(registry, "control_ingress", RUN, root, {}, commands={"ig": SLEEPER})
    first_pid = state["processes"][0]["pid"]
    os.kill(first_pid, signal.SIGKILL)
    paths = pack_paths(root, registry, "control_ingress", RUN)

    def restarted() -> bool:
        current = read_pack_state(paths)
        return bool(current and current["processes"][0]["restarts"] == 1 and current["processes"][0]["status"] == "RUNNING")

    assert _wait(restarted)
    current = read_pack_state(paths)
    assert current is not None and current["processes"][0]["pid"] != first_pid


def test_stop_leaves_no_process_and_records_stopped(root: Path) -> None:
    registry = load_registry("local_parity")
    state = start_pack(registry, "control_ingress", RUN, root, {}, commands={"ig": SLEEPER})
    daemon_pid = state["processes"][0]["pid"]
    assert stop_pack(registry, "control_ingress", root)
    assert read_pack_state(pack_paths(root, registry, "control_ingress", RUN))["state"] == "STOPPED"  # type: ignore[index]
    assert _wait(lambda: not is_running(daemon_pid, tuple(SLEEPER)))
    assert not stop_pack(registry, "control_ingress", root)


def test_pack_for_another_run_is_restarted_for_this_run(root: Path) -> None:
    registry = load_registry("local_parity")
    old = start_pack(registry, "control_ingress", RUN, root, {}, commands={"ig": SLEEPER})
    new = start_pack(registry, "control_ingress", "platform_20261123T130000Z", root, {}, commands={"ig": SLEEPER})
    assert new["run_scope"] == "platform_20261123T130000Z" and new["supervisor_pid"] != old["supervisor_pid"]


def test_pack_with_an_unbuilt_daemon_fails_closed_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(COMPONENTS, "env_conformance")
    with pytest.raises(PlatformError) as info:
        daemon_commands(load_registry("local_parity"), "obs_gov", {})
    assert info.value.code == "PHASE_NOT_BUILT" and "env_conformance" in info.value.message


def test_obs_gov_pack_runs_its_two_daemons_and_not_the_reporter_job() -> None:
    commands = daemon_commands(load_registry("local_parity"), "obs_gov")
    assert {name: argv[-2:] for name, argv in commands.items()} == {
        "platform_run_reporter": ["reporter", "run"], "env_conformance": ["env_conformance", "run"]}
