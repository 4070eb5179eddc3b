"""The compute-backend port: what the phase machine asks of wherever the runtime runs.

Two adapters satisfy it: the local backend (supervised processes on this machine) and the ECS
backend (services and one-shot tasks on Fargate). Phases talk only to this port so one phase
module serves both environments; the results are plain data a phase can put in its evidence.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.components import COMPONENTS
from runtime.contracts.ids import is_platform_run_id
from runtime.errors import PlatformError

#: Called while a backend waits, with one short line of progress (e.g. an ECS task's status).
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProcessState:
    """One daemon of a pack: a local process (pid) or an ECS service and its running task."""

    name: str
    status: str
    pid: int | None = None
    task_arn: str | None = None
    service: str | None = None
    run_scope: str | None = None

    def to_evidence(self) -> dict[str, Any]:
        """The `processes[]` row of `operate/daemons_ready.json`."""
        return {"name": self.name, "status": self.status, "pid": self.pid, "task_arn": self.task_arn, "service": self.service}


@dataclass(frozen=True)
class PackState:
    """A pack as the backend sees it now: state, counts, run scope and its daemons."""

    pack: str
    pack_id: str
    state: str
    run_scope: str | None
    desired_count: int
    running_count: int
    processes: tuple[ProcessState, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """Every daemon runs (and there is at least one)."""
        return self.state == "RUNNING" and self.desired_count > 0 and self.running_count == self.desired_count

    def to_evidence(self) -> dict[str, Any]:
        """The `packs[]` row of `operate/daemons_ready.json`."""
        return {"pack_id": self.pack_id, "state": self.state, "processes": [p.to_evidence() for p in self.processes],
                "desired_count": self.desired_count, "running_count": self.running_count}


@dataclass(frozen=True)
class TaskDefinitionImages:
    """A task definition a run's tasks run (a job family's or a daemon service's current revision)
    and the images its containers reference."""

    component: str
    task_definition: str
    images: tuple[str, ...]
    service: str | None = None

    def to_evidence(self) -> dict[str, Any]:
        """The `task_definitions[]` row of P11's obs/close_inputs.json."""
        return {"component": self.component, "service": self.service, "task_definition": self.task_definition,
                "images": list(self.images)}


@dataclass(frozen=True)
class JobResult:
    """A finished one-shot job: exit code and where to look (task ARN or pid, log location)."""

    component: str
    exit_code: int
    log_location: str
    task_arn: str | None = None
    pid: int | None = None
    stopped_reason: str | None = None
    failure: JobFailure | None = None

    def to_evidence(self) -> dict[str, Any]:
        """Plain-data form for a phase's evidence."""
        return {"component": self.component, "exit_code": self.exit_code, "task_arn": self.task_arn, "pid": self.pid,
                "log_location": self.log_location, "stopped_reason": self.stopped_reason,
                "error_code": self.failure.code if self.failure else None}


#: The line every runtime entrypoint prints for a PlatformError (runtime/cli_errors.py).
_FAILURE_LINE = re.compile(r"^error ([A-Z][A-Z0-9_]*): (.*?)(?: -> (.*))?$")


@dataclass(frozen=True)
class JobFailure:
    """The error a failed job reported on its last operator line: its code, message and next step."""

    code: str
    message: str
    next_step: str | None = None


def job_failure(log_text: str) -> JobFailure | None:
    """The last `error CODE: message -> next step` line of a job's output, if it printed one.

    A job that fails with a PlatformError says why in that line; carrying its code up lets the
    phase fail with the component's own code (MANIFEST_MISMATCH, LEASE_BUSY, ...) instead of a
    generic 'job exited 1', in both environments (a local log file, a CloudWatch stream)."""
    for line in reversed(log_text.splitlines()):
        match = _FAILURE_LINE.match(line.strip())
        if match:
            return JobFailure(match.group(1), match.group(2), match.group(3))
    return None


class JobFailed(PlatformError):
    """A job exited non-zero; carries its result so the phase record can still name the task or pid."""

    def __init__(self, message: str, *, code: str, next_step: str, result: JobResult):
        super().__init__(message, code=code, next_step=next_step)
        self.result = result


def job_failed(result: JobResult, where: str, fallback_code: str) -> JobFailed:
    """The error a phase sees for a non-zero job: the job's own code when it printed one."""
    failure = result.failure
    if failure is not None:
        return JobFailed(f"job {result.component} ({where}) exited {result.exit_code}: {failure.message}",
                         code=failure.code, next_step=failure.next_step or f"read {result.log_location}, then rerun the phase",
                         result=result)
    reason = f" (reason: {result.stopped_reason})" if result.stopped_reason else ""
    return JobFailed(f"job {result.component} ({where}) exited {result.exit_code}{reason}", code=fallback_code,
                     next_step=f"read {result.log_location}, fix the cause, rerun the phase", result=result)


def check_run_id(run_id: str) -> None:
    """Refuse a run scope that is not a platform_run_id (a daemon would filter on garbage)."""
    if not isinstance(run_id, str) or not is_platform_run_id(run_id):
        raise PlatformError(f"run scope {run_id!r} is not a platform_run_id (platform_<yyyymmdd>T<hhmmss>Z)",
                            code="RUN_ID_INVALID", next_step="pass the run id that P1 pinned")


def check_job(component: str, argv: list[str]) -> None:
    """Refuse a job that is not one (a typo or a pack daemon would run nothing useful) or an argv
    that is not one of the job's commands (runtime/components.py), so what runs is what the
    composition test proved parses."""
    entry = COMPONENTS.get(component)
    if entry is None or entry.kind != "job":
        jobs = sorted(c.name for c in COMPONENTS.values() if c.kind == "job")
        hint = f" (a {entry.kind}, not a job{': start its pack instead' if entry.kind == 'daemon' else ''})" if entry else ""
        raise PlatformError(f"unknown job component {component!r}{hint}; jobs: {', '.join(jobs)}",
                            code="UNKNOWN_COMPONENT", next_step="use a job of runtime/components.py COMPONENTS")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise PlatformError(f"job {component}: argv must be a non-empty list of non-empty strings, got {argv!r}",
                            code="JOB_ARGV_INVALID", next_step="pass the runtime entrypoint and its arguments")
    if not entry.runs(argv):
        commands = "; ".join(" ".join(c) for c in entry.commands)
        raise PlatformError(f"job {component} runs `{commands}`, not `{' '.join(argv[:3])}`", code="JOB_ARGV_INVALID",
                            next_step=f"start the argv with one of the commands of {component} in runtime/components.py")


class ComputeBackend(ABC):
    """Start and stop packs of daemons, run one-shot jobs, and report what runs."""

    #: "local" or "ecs": recorded in evidence so a reader knows what pid/task_arn mean.
    kind: str

    @abstractmethod
    def start_pack(self, pack: str, run_id: str, *, timeout: float = 120.0, progress: Progress | None = None) -> PackState:
        """Run every daemon of `pack` scoped to `run_id` and wait until all run; a pack already
        running for this run is kept (no duplicate consumers), one running for another run is
        restarted for this one."""

    @abstractmethod
    def stop_pack(self, pack: str, *, timeout: float = 60.0) -> bool:
        """Stop the pack's daemons; False when nothing was running."""

    @abstractmethod
    def pack_state(self, pack: str) -> PackState:
        """The pack's state as the compute platform reports it now (durable, not a log line)."""

    def run_task_definitions(self, run_id: str) -> tuple[list[TaskDefinitionImages], list[str]] | None:
        """The task definitions scoped to `run_id` that its tasks run, with their images, and the
        names whose current revision is not scoped to it; None where there are no task definitions
        (local processes run this checkout's code)."""
        return None

    @abstractmethod
    def run_job(self, component: str, argv: list[str], run_id: str, *, extra_env: dict[str, str] | None = None,
                timeout: float = 3600.0, progress: Progress | None = None, check: bool = True) -> JobResult:
        """Run `python -m runtime <argv>` once as `component`, scoped to `run_id`, and wait for it.
        With `check`, a non-zero or missing exit code raises a PlatformError naming where to look
        (the job's own error code when it printed one)."""
