"""Start a server process, wait until its port answers, stop it by pid.

Only processes this code started are ever stopped: a pid is stopped only if its command line
still matches the one recorded when it was started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import SubstrateError


@dataclass(frozen=True)
class StartedProcess:
    """A process we started: its pid, the port it serves and its command line."""

    name: str
    pid: int
    port: int
    argv: tuple[str, ...]
    log: str


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start(name: str, argv: list[str], *, host: str, port: int, log: Path, timeout: float = 60.0,
          env: dict[str, str] | None = None, user: str | None = None) -> StartedProcess:
    """Start `argv`, logging to `log`, and wait until host:port accepts connections."""
    if not port_is_free(host, port):
        raise SubstrateError(
            f"{name}: port {host}:{port} is already taken",
            code="PORT_TAKEN",
            next_step=f"stop what listens on {port} or set another port for {name}",
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True, user=user)
        except OSError as e:
            raise SubstrateError(f"{name}: cannot start {argv[0]}: {e.strerror}") from e
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            raise SubstrateError(f"{name} exited with code {proc.returncode} during start-up; log {log}: {tail.strip()}")
        if port_answers(host, port):
            return StartedProcess(name, proc.pid, port, tuple(argv), str(log))
        time.sleep(0.1)
    stop_pid(proc.pid, tuple(argv))
    raise SubstrateError(f"{name} did not answer on {host}:{port} within {timeout:.0f}s; see {log}")


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def is_running(pid: int, argv: tuple[str, ...]) -> bool:
    """True when `pid` is alive and still runs the command we started."""
    current = _cmdline(pid)
    if not current:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        if state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return current[: len(argv)] == argv[: len(current)] or current[0] == argv[0]


def stop_pid(pid: int, argv: tuple[str, ...], timeout: float = 15.0) -> bool:
    """Stop a process we started (SIGTERM, then SIGKILL); False if it was not ours or gone."""
    if not is_running(pid, argv):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not is_running(pid, argv):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return True
