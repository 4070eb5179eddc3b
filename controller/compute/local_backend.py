"""The local compute backend: packs as supervised process groups on this machine.

One supervisor per pack (seed 001 pack ids `<env>_<pack>_v0`), started detached with the run
scope (`REQUIRED_PLATFORM_RUN_ID`) and the substrate's endpoints in its environment. A pack
already running for the same run is kept (no duplicate consumers); one running for another run
is restarted for this run (seed 003 P2: restart packs rather than single processes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.compute.port import (
    ComputeBackend,
    JobResult,
    PackState,
    ProcessState,
    Progress,
    check_job,
    check_run_id,
    job_failed,
    job_failure,
)
from controller.substrate.processes import is_running
from runtime.components import ENTRYPOINT, pack_daemons, session_name_env
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError


class PackError(PlatformError):
    """A pack could not be started, checked or stopped."""

    code = "PACK_ERROR"


def pack_id(registry: Registry, pack: str) -> str:
    """The seed's pack id, e.g. local_parity_control_ingress_v0."""
    return f"{registry.environment}_{pack}_v0"


@dataclass(frozen=True)
class PackPaths:
    """Where a pack keeps its state (run-independent) and its logs (run-scoped)."""

    pack_dir: Path
    log_dir: Path


def pack_paths(runs_root: Path, registry: Registry, pack: str, run_id: str) -> PackPaths:
    """`operate/<pack_id>/` under the runs root, logs under the run folder."""
    pid = pack_id(registry, pack)
    return PackPaths(runs_root / "operate" / pid, runs_root / run_id / "operate" / pid / "logs")


def read_pack_state(paths: PackPaths) -> dict[str, Any] | None:
    """The pack's state.json, or None."""
    path = paths.pack_dir / "state.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _supervisor_alive(state: dict[str, Any] | None) -> bool:
    if not state or state.get("state") != "RUNNING":
        return False
    pid = int(state.get("supervisor_pid") or 0)
    return pid > 0 and is_running(pid, (sys.executable, "-m", "controller.compute.supervisor"))


def local_argv(argv: list[str] | tuple[str, ...]) -> list[str]:
    """What runs a component's argv on this machine: the image's entrypoint under this interpreter."""
    return [sys.executable, *ENTRYPOINT[1:], *argv]


def daemon_commands(registry: Registry, pack: str, commands: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """argv per daemon of the pack, from the component map (`commands` replaces each daemon's whole
    argv, e.g. a test's stand-in); a member this repository does not build fails closed naming it."""
    daemons = pack_daemons(registry, pack)
    if commands is None:
        return {d.name: local_argv(d.argv) for d in daemons}
    missing = [d.name for d in daemons if d.name not in commands]
    if missing:
        raise PackError(f"pack {pack}: no command given for {', '.join(missing)}", code="PACK_COMMAND_MISSING",
                        next_step="pass a command for every daemon of the pack")
    return {d.name: commands[d.name] for d in daemons}


def start_pack(registry: Registry, pack: str, run_id: str, runs_root: Path, environment: dict[str, str], *,
               commands: dict[str, list[str]] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Start (or keep) the pack for `run_id` and wait until every daemon runs; returns state.json."""
    paths = pack_paths(runs_root, registry, pack, run_id)
    daemons = daemon_commands(registry, pack, commands)
    state = read_pack_state(paths)
    if _supervisor_alive(state):
        assert state is not None
        if state.get("run_scope") == run_id:
            return state
        stop_pack(registry, pack, runs_root)
    paths.pack_dir.mkdir(parents=True, exist_ok=True)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    (paths.pack_dir / "state.json").unlink(missing_ok=True)
    scope_key = registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    argv = [sys.executable, "-m", "controller.compute.supervisor", "--pack-id", pack_id(registry, pack), "--run", run_id,
            "--pack-dir", str(paths.pack_dir), "--log-dir", str(paths.log_dir), "--daemons", json.dumps(daemons)]
    with (paths.log_dir / "supervisor.log").open("ab") as log:
        subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, **environment, scope_key: run_id,
                              # stream workers also write their health into the local run folder
                              registry.text("ENVVAR_RUNS_ROOT"): str(runs_root.resolve())})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_pack_state(paths)
        if state and state.get("state") == "RUNNING" and state.get("running_count") == state.get("desired_count"):
            return state
        time.sleep(0.2)
    raise PackError(f"pack {pack} did not reach RUNNING within {timeout:.0f}s", code="PACK_NOT_RUNNING",
                    next_step=f"read the logs in {paths.log_dir}")


def stop_pack(registry: Registry, pack: str, runs_root: Path, timeout: float = 20.0) -> bool:
    """Stop the pack's supervisor (which stops its daemons); False if it was not running."""
    paths = pack_paths(runs_root, registry, pack, "-")
    state = read_pack_state(paths)
    if not _supervisor_alive(state):
        return False
    assert state is not None
    os.kill(int(state["supervisor_pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = read_pack_state(paths)
        if current and current.get("state") == "STOPPED":
            return True
        time.sleep(0.2)
    raise PackError(f"pack {pack} did not stop within {timeout:.0f}s", code="PACK_STOP_TIMEOUT",
                    next_step=f"stop pid {state['supervisor_pid']} by hand")


def running_packs(registry: Registry, runs_root: Path) -> list[str]:
    """Packs whose supervisor is alive."""
    return [p for p in registry.mapping("PACKS") if _supervisor_alive(read_pack_state(pack_paths(runs_root, registry, p, "-")))]


# ---------------------------------------------------------------------------------------------
# the port's local adapter: a thin class over the functions above


def _as_pack_state(registry: Registry, pack: str, state: dict[str, Any] | None, alive: bool) -> PackState:
    if state is None or not alive:
        return PackState(pack=pack, pack_id=pack_id(registry, pack), state="STOPPED",
                         run_scope=(state or {}).get("run_scope"), desired_count=0, running_count=0)
    processes = tuple(ProcessState(name=p["name"], status=p["status"], pid=p.get("pid"), run_scope=state.get("run_scope"))
                      for p in state.get("processes", []))
    return PackState(pack=pack, pack_id=pack_id(registry, pack), state=str(state.get("state")),
                     run_scope=state.get("run_scope"), desired_count=int(state.get("desired_count") or 0),
                     running_count=int(state.get("running_count") or 0), processes=processes,
                     detail={"supervisor_pid": state.get("supervisor_pid")})


class LocalBackend(ComputeBackend):
    """Packs as supervised processes, jobs as child processes, all on this machine."""

    kind = "local"

    def __init__(self, registry: Registry, runs_root: Path, environment: dict[str, str], *,
                 commands: dict[str, list[str]] | None = None):
        self.registry = registry
        self.runs_root = runs_root
        self.environment = dict(environment)
        self.commands = commands

    def start_pack(self, pack: str, run_id: str, *, timeout: float = 30.0, progress: Progress | None = None) -> PackState:
        """Start (or keep) the pack's supervisor for `run_id`; see `start_pack`."""
        if progress:
            progress(f"starting pack {pack} for {run_id}")
        state = start_pack(self.registry, pack, run_id, self.runs_root, self.environment, commands=self.commands,
                           timeout=timeout)
        return _as_pack_state(self.registry, pack, state, True)

    def stop_pack(self, pack: str, *, timeout: float = 20.0) -> bool:
        """Stop the pack's supervisor; see `stop_pack`."""
        return stop_pack(self.registry, pack, self.runs_root, timeout=timeout)

    def pack_state(self, pack: str) -> PackState:
        """The pack's state.json, STOPPED when its supervisor is not alive."""
        state = read_pack_state(pack_paths(self.runs_root, self.registry, pack, "-"))
        return _as_pack_state(self.registry, pack, state, _supervisor_alive(state))

    def job_log(self, run_id: str, component: str) -> Path:
        """`<runs root>/<run>/operate/jobs/<component>.log`."""
        return self.runs_root / run_id / "operate" / "jobs" / f"{component}.log"

    def run_job(self, component: str, argv: list[str], run_id: str, *, extra_env: dict[str, str] | None = None,
                timeout: float = 3600.0, progress: Progress | None = None, check: bool = True) -> JobResult:
        """`python -m runtime <argv>` (`local_argv`) as a child process with the run scope and substrate env."""
        check_job(component, argv)
        check_run_id(run_id)
        log_path = self.job_log(run_id, component)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        scope_key = self.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
        cache = {self.registry.text("ENVVAR_ORACLE_ENGINE_CACHE"): str(self.runs_root / "engine")}
        env = {**os.environ, **cache, **self.environment, **(extra_env or {}), **session_name_env(component),
               scope_key: run_id}
        if progress:
            progress(f"running {component} (log {log_path})")
        start = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            proc = subprocess.Popen(local_argv(argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise PlatformError(f"job {component} (pid {proc.pid}) still running after {timeout:.0f}s; killed",
                                    code="JOB_TIMEOUT", next_step=f"read {log_path}") from None
        failure = None
        if code != 0:
            with log_path.open("rb") as log:
                log.seek(start)
                failure = job_failure(log.read()[-65536:].decode("utf-8", "replace"))
        result = JobResult(component=component, exit_code=code, log_location=str(log_path), pid=proc.pid, failure=failure)
        if check and code != 0:
            raise job_failed(result, f"pid {proc.pid}", "JOB_FAILED")
        return result
