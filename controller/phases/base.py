"""What every phase shares: its context, its gate checks, and the phase record it leaves.

`execute` writes a RUNNING record, runs the phase, evaluates the gate from the checks the phase
returns (durable state, never a log line), then writes PASS with the sha256 of every evidence
file written, or FAIL with the error code and the operator's next step. Nothing reports PASS
without its evidence.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.compute.port import ComputeBackend
from controller.runs import RunFolders
from runtime.contracts.canonical import sha256_hex
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.evidence.catalog import required_for
from runtime.evidence.writer import EvidenceNotMirrored, EvidenceWriter, WrittenEvidence
from runtime.settings import Settings


class GateFailed(PlatformError):
    """A phase's exit gate is not satisfied."""

    code = "GATE_FAILED"


class PhaseNotBuilt(PlatformError):
    """The component a phase drives does not exist yet: the phase fails closed."""

    code = "PHASE_NOT_BUILT"


@dataclass(frozen=True)
class Check:
    """One gate condition and whether durable state satisfies it."""

    name: str
    ok: bool
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form used in evidence."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class RunContext:
    """Everything a phase needs: registry, run id, folders, evidence writer, settings, options."""

    registry: Registry
    platform_run_id: str
    folders: RunFolders
    writer: EvidenceWriter
    settings: Settings | None
    options: dict[str, Any] = field(default_factory=dict)
    #: The jobs the current phase ran (task ARNs or pids, exit codes, logs): its record keeps them.
    jobs: list[dict[str, Any]] = field(default_factory=list)
    #: The run's compute backend once a phase asked for it (controller.phases.compute).
    backend: ComputeBackend | None = field(default=None, repr=False)
    #: Checks every phase passes before it starts (local: the substrate still holds the run's epoch);
    #: a failing one is the phase's FAIL record.
    preconditions: list[Callable[[RunContext], None]] = field(default_factory=list, repr=False)


@dataclass
class PhaseOutcome:
    """What a phase produced: evidence written and gate checks evaluated."""

    evidence: list[WrittenEvidence]
    checks: list[Check]


class Phase(ABC):
    """A phase: entry action + exit gate + evidence."""

    phase_id: str
    name: str

    @abstractmethod
    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Do the phase's work, write its evidence, and return the gate checks."""

    def failing_gate_code(self) -> str:
        """The error code when a gate check fails."""
        return f"{self.name}_GATE_FAILED"


def substrate_settings(ctx: RunContext) -> Settings:
    """The settings of the live substrate; a phase that needs it fails SUBSTRATE_DOWN without it."""
    if ctx.settings is None:
        raise PlatformError("the substrate is not up", code="SUBSTRATE_DOWN", next_step="run `fp dev-min-up`")
    return ctx.settings


def _record(ctx: RunContext, phase: Phase, **fields: Any) -> dict[str, Any]:
    return {**ctx.writer.base_fields(phase.phase_id, ["PHASE_RECORD_PATH_PATTERN"]), "name": phase.name, **fields}


def previous_record(ctx: RunContext, phase_id: str) -> dict[str, Any] | None:
    """The phase record left by an earlier attempt, if any."""
    return ctx.writer.read("PHASE_RECORD_PATH_PATTERN", phase_id=phase_id)


def execute(phase: Phase, ctx: RunContext) -> dict[str, Any]:
    """Run `phase` under its gate and leave its phase record; re-raises the failure after recording it.

    The record always reaches every target that can take it: an object store lost before, during or
    after the phase fails the phase (OBJECT_STORE_UNAVAILABLE), and the run folder's FAIL record
    says what was not mirrored (`evidence_mirror_error`)."""
    earlier = previous_record(ctx, phase.phase_id)
    attempt = int(earlier["attempt"]) + 1 if earlier else 1
    started = utc_iso()
    t0 = time.monotonic()
    base = {"attempt": attempt, "started_at_utc": started, "bounded_gate": ctx.options.get("gate")}
    ctx.jobs = []
    try:
        for precondition in ctx.preconditions:
            precondition(ctx)
        ctx.writer.write("PHASE_RECORD_PATH_PATTERN", _record(ctx, phase, state="RUNNING", evidence=[], ended_at_utc=None, **base),
                         phase_id=phase.phase_id)
        outcome = phase.run(ctx)
        failed = [c for c in outcome.checks if not c.ok]
        if failed:
            raise GateFailed("; ".join(f"{c.name}: {c.detail or 'not satisfied'}" for c in failed),
                             code=phase.failing_gate_code(), next_step=f"fix the failing checks, then re-run {phase.phase_id}")
        written = {e.relative_path for e in outcome.evidence}
        missing = [ctx.writer.relative_path(e.path_key) for e in required_for(phase.phase_id)
                   if ctx.writer.relative_path(e.path_key) not in written]
        if missing:
            raise GateFailed(f"{phase.phase_id} wrote no {', '.join(missing)}", code="EVIDENCE_MISSING",
                             next_step="a phase cannot pass without its evidence")
        record = _record(ctx, phase, state="PASS", ended_at_utc=utc_iso(), duration_s=round(time.monotonic() - t0, 3),
                         evidence=[{"path": e.relative_path, "sha256": e.sha256} for e in outcome.evidence],
                         gate=[c.to_dict() for c in outcome.checks], error_code=None, message=None, next_step=None,
                         jobs=ctx.jobs, **base)
        ctx.writer.write("PHASE_RECORD_PATH_PATTERN", record, phase_id=phase.phase_id)
    except PlatformError as e:
        record = _record(ctx, phase, state="FAIL", evidence=[], ended_at_utc=utc_iso(),
                         duration_s=round(time.monotonic() - t0, 3), error_code=e.code, message=e.message,
                         next_step=e.next_step or None, jobs=ctx.jobs, **base)
        _record_failure(ctx, phase, record, e)
        raise
    return record


def _record_failure(ctx: RunContext, phase: Phase, record: dict[str, Any], error: PlatformError) -> None:
    """Write the FAIL record wherever it can land; one that could not be mirrored is rewritten, in the
    targets that took it, saying so. The phase's own error stays the one raised."""
    try:
        ctx.writer.write("PHASE_RECORD_PATH_PATTERN", record, phase_id=phase.phase_id)
        return
    except EvidenceNotMirrored as not_mirrored:
        record["evidence_mirror_error"] = not_mirrored.message
        try:
            ctx.writer.write("PHASE_RECORD_PATH_PATTERN", record, only=not_mirrored.landed, phase_id=phase.phase_id)
        except PlatformError as again:
            error.add_note(f"the FAIL record could not be rewritten: {again.operator_line()}")
        error.add_note(f"the FAIL record is in the run folder only: {not_mirrored.message}")
    except PlatformError as record_error:  # no target took it; keep the first error
        error.add_note(f"the FAIL record could not be written: {record_error.operator_line()}")


def collected(ctx: RunContext, *path_keys: str) -> list[WrittenEvidence]:
    """Evidence a component wrote itself (possibly to one target only), copied byte-for-byte to every
    target of the run's bundle, with the sha256 the phase record will hold. Missing files are left out,
    so the phase's required-evidence check names them."""
    out = []
    for path_key in path_keys:
        relative = ctx.writer.relative_path(path_key)
        data = None
        for target in ctx.writer.targets:
            if target.store.exists(target.key(relative)):
                data = target.store.get(target.key(relative))
                break
        if data is None:
            continue
        uris = []
        for target in ctx.writer.targets:
            key = target.key(relative)
            if not target.store.exists(key) or target.store.get(key) != data:
                target.store.put(key, data)
            uris.append(target.store.uri(key))
        out.append(WrittenEvidence(relative, sha256_hex(data), tuple(uris)))
    return out
