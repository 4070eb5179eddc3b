"""The pack supervisor: one process per pack that runs the pack's daemons and keeps them up.

Started by the local compute backend with the run scope in its environment and each daemon's
argv, which the backend derives from the component map (runtime/components.py). It restarts a
crashed daemon with exponential backoff, writes the pack's `state.json` and
`status/last_status.json`, logs each daemon to the run's `operate/<pack>/logs/<process>.log`, and
on SIGTERM stops its daemons and records STOPPED.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.components import session_name_env
from runtime.contracts.ids import utc_iso

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
STATUS_EVERY_S = 2.0


@dataclass
class Daemon:
    """One supervised process."""

    name: str
    argv: list[str]
    pid: int | None = None
    status: str = "STARTING"
    restarts: int = 0
    started_at_utc: str | None = None
    next_start: float = 0.0
    backoff_s: float = BACKOFF_START_S
    last_exit_code: int | None = None


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


class Supervisor:
    """Runs and watches the daemons of one pack."""

    def __init__(self, pack_id: str, run_id: str, pack_dir: Path, log_dir: Path, daemons: list[Daemon]):
        self.pack_id = pack_id
        self.run_id = run_id
        self.pack_dir = pack_dir
        self.log_dir = log_dir
        self.daemons = daemons
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _start(self, daemon: Daemon) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{daemon.name}.log").open("ab")
        proc = subprocess.Popen(daemon.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **session_name_env(daemon.name)})
        log.close()
        self.procs[daemon.name] = proc
        daemon.pid = proc.pid
        daemon.status = "RUNNING"
        daemon.started_at_utc = utc_iso()

    def _watch(self) -> None:
        now = time.monotonic()
        for daemon in self.daemons:
            proc = self.procs.get(daemon.name)
            if proc is not None and proc.poll() is None:
                if daemon.started_at_utc and daemon.backoff_s > BACKOFF_START_S and now - daemon.next_start > 60:
                    daemon.backoff_s = BACKOFF_START_S  # stable for a minute: forget earlier crashes
                continue
            if proc is not None:  # it exited: schedule a restart with backoff
                daemon.last_exit_code = proc.returncode
                daemon.status = "CRASHED"
                daemon.pid = None
                del self.procs[daemon.name]
                daemon.next_start = now + daemon.backoff_s
                daemon.backoff_s = min(daemon.backoff_s * 2, BACKOFF_MAX_S)
                continue
            if now >= daemon.next_start:
                if daemon.started_at_utc is not None:
                    daemon.restarts += 1
                self._start(daemon)

    def _publish(self, state: str) -> None:
        processes = [{k: v for k, v in asdict(d).items() if k not in ("next_start", "backoff_s")} for d in self.daemons]
        running = sum(1 for d in self.daemons if d.status == "RUNNING")
        _write_json(self.pack_dir / "state.json", {
            "pack_id": self.pack_id, "state": state, "supervisor_pid": os.getpid(), "run_scope": self.run_id,
            "processes": processes, "desired_count": len(self.daemons), "running_count": running, "updated_at_utc": utc_iso(),
        })
        _write_json(self.pack_dir / "status" / "last_status.json", {
            "pack_id": self.pack_id, "run_scope": self.run_id, "healthy": state == "RUNNING" and running == len(self.daemons),
            "checked_at_utc": utc_iso(), "running_count": running, "desired_count": len(self.daemons),
        })

    def stop(self, *_: object) -> None:
        """Signal handler: stop the loop."""
        self.stopping = True

    def run(self) -> int:
        """Start every daemon, watch them until SIGTERM, then stop them."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        last_publish = 0.0
        while not self.stopping:
            self._watch()
            if time.monotonic() - last_publish >= STATUS_EVERY_S or any(d.status != "RUNNING" for d in self.daemons):
                self._publish("RUNNING")
                last_publish = time.monotonic()
            time.sleep(0.2)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for daemon in self.daemons:
            daemon.status, daemon.pid = "STOPPED", None
        self._publish("STOPPED")
        return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m controller.compute.supervisor --pack-id X --run R --pack-dir D --log-dir L --daemons JSON`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack-id", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--pack-dir", required=True, type=Path)
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--daemons", required=True, help='JSON object {"name": ["argv", ...]}')
    args = parser.parse_args(argv)
    daemons = [Daemon(name, list(cmd)) for name, cmd in json.loads(args.daemons).items()]
    return Supervisor(args.pack_id, args.run, args.pack_dir, args.log_dir, daemons).run()


if __name__ == "__main__":
    sys.exit(main())
