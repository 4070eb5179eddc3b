"""The phase machine: which phases run, in what order, under which retry rules.

Order P1..P11 (P0 is `dev-min-up`, P12 `dev-min-down`). A slice is the whole run, `--to Pn`,
`--from Pn` (resume: every earlier phase must have PASSed, the phases run with the options `run.json`
pinned and the config must not have drifted) or
`--phase Pn` (only the re-runs seed 003 allows: P3 per output, P5 SR, P6 WSP, P11 reporter). The
first failing gate stops the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.phases.base import Phase, RunContext, execute, previous_record
from controller.phases.p01_run_pinned import RunPinned, config_drift
from controller.phases.p02_daemons_ready import DaemonsReady
from controller.phases.p03_oracle_ready import OracleReady
from controller.phases.p04_ingest_ready import IngestReady
from controller.phases.p05_ready_published import ReadyPublished
from controller.phases.p06_streaming_active import StreamingActive
from controller.phases.p07_ingest_committed import IngestCommitted
from controller.phases.p08_rtdl_caught_up import RtdlCaughtUp
from controller.phases.p09_decision_chain_committed import DecisionChainCommitted
from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
from controller.phases.p11_obs_gov_closed import ObsGovClosed
from controller.phases.run_options import apply_pinned, with_defaults
from runtime.errors import PlatformError

RUN_PHASES: tuple[str, ...] = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11")
RERUNNABLE: frozenset[str] = frozenset({"P3", "P5", "P6", "P11"})

#: The packs (seed 001) each phase needs running. The obs_gov pack (the platform_run_reporter and
#: env_conformance daemons, refreshing obs/live/ while the run is in flight) belongs to P11: a slice
#: that reaches P11 starts it at P2 with the others, last; P11 stops it, then its reporter job
#: closes the run (docs/obs.md). Shorter slices do without it (docs/decisions.md).
PACKS_FOR_PHASE: dict[str, tuple[str, ...]] = {
    "P4": ("control_ingress",), "P5": ("control_ingress",), "P6": ("control_ingress",), "P7": ("control_ingress",),
    "P8": ("rtdl_core",), "P9": ("rtdl_decision_lane",), "P10": ("case_labels",), "P11": ("obs_gov",),
}

PhaseFactory = Callable[[], Phase]

PHASES: dict[str, PhaseFactory] = {
    "P1": RunPinned,
    "P2": DaemonsReady,
    "P3": OracleReady,
    "P4": IngestReady,
    "P5": ReadyPublished,
    "P6": StreamingActive,
    "P7": IngestCommitted,
    "P8": RtdlCaughtUp,
    "P9": DecisionChainCommitted,
    "P10": CaseLabelsCommitted,
    "P11": ObsGovClosed,
}


class PlanError(PlatformError):
    """The requested slice of phases cannot run."""

    code = "PHASE_PLAN_INVALID"


@dataclass
class Slice:
    """What the operator asked for."""

    to: str | None = None
    from_: str | None = None
    only: str | None = None

    def validate(self) -> None:
        """Refuse unknown phases and contradictory options."""
        for value in (self.to, self.from_, self.only):
            if value is not None and value not in RUN_PHASES:
                raise PlanError(f"unknown phase {value!r}; dev-min-run runs {', '.join(RUN_PHASES)}", code="UNKNOWN_PHASE",
                                next_step="P0 is dev-min-up and P12 dev-min-down")
        if self.only and (self.to or self.from_):
            raise PlanError("--phase cannot be combined with --to or --from")
        if self.to and self.from_ and RUN_PHASES.index(self.from_) > RUN_PHASES.index(self.to):
            raise PlanError(f"--from {self.from_} comes after --to {self.to}")


def planned_phases(selection: Slice) -> list[str]:
    """The phase ids the slice covers, in order."""
    selection.validate()
    if selection.only:
        return [selection.only]
    start = RUN_PHASES.index(selection.from_) if selection.from_ else 0
    end = RUN_PHASES.index(selection.to) + 1 if selection.to else len(RUN_PHASES)
    return list(RUN_PHASES[start:end])


def packs_in_scope(phases: list[str]) -> list[str]:
    """The packs the phases of a slice need (P2 starts these)."""
    out: list[str] = []
    for phase_id in phases:
        for pack in PACKS_FOR_PHASE.get(phase_id, ()):
            if pack not in out:
                out.append(pack)
    return out


def check_resumable(ctx: RunContext, selection: Slice) -> None:
    """Every phase before the first one of the slice must have PASSed (P(-1) and P0, from
    `dev-min-up`, for a fresh start), a resumed run takes the options `run.json` pinned (another
    value given is CONFIG_DRIFT), and its config must not have drifted."""
    first = selection.only or selection.from_ or RUN_PHASES[0]
    if selection.only and selection.only not in RERUNNABLE:
        raise PlanError(f"{selection.only} cannot be re-run on its own; allowed: {', '.join(p for p in RUN_PHASES if p in RERUNNABLE)}",
                        code="PHASE_RERUN_NOT_ALLOWED", next_step="use --from to resume, or start a fresh run")
    for phase_id in ("P(-1)", "P0", *RUN_PHASES[: RUN_PHASES.index(first)]):
        record = previous_record(ctx, phase_id)
        if not record or record.get("state") != "PASS":
            state = record.get("state") if record else "never run"
            env = " --env dev_min" if ctx.registry.environment == "dev_min" else ""
            step = (f"run `fp dev-min-up{env}` first" if phase_id in ("P(-1)", "P0")
                    else f"resume from the first phase that did not pass (--from {phase_id})")
            raise PlanError(f"cannot start at {first}: {phase_id} has not passed ({state})", code="RESUME_BEFORE_PASS",
                            next_step=step)
    pinned = ctx.writer.read("EVIDENCE_RUN_JSON_KEY")
    ctx.options = apply_pinned(ctx.options, pinned["config"]) if pinned is not None else with_defaults(ctx.options)
    if pinned is not None:
        drift = config_drift(ctx.registry, ctx.options, pinned)
        if drift:
            raise PlanError(f"the run config drifted since P1 ({drift})", code="CONFIG_DRIFT",
                            next_step="start a fresh run instead of resuming this one")


@dataclass
class RunOutcome:
    """What `dev-min-run` did: the records of the phases executed, in order."""

    platform_run_id: str
    records: list[dict[str, Any]] = field(default_factory=list)


def run_phases(ctx: RunContext, selection: Slice, progress: Callable[[str, str], None] | None = None) -> RunOutcome:
    """Execute the slice in order; the first failure is recorded and re-raised."""
    phases = planned_phases(selection)
    check_resumable(ctx, selection)
    ctx.options.setdefault("packs", packs_in_scope([p for p in RUN_PHASES if RUN_PHASES.index(p) <= RUN_PHASES.index(phases[-1])]))
    if selection.only:
        ctx.options["rerun_only"] = selection.only  # P11 refuses a re-run beside the reporter daemon
    outcome = RunOutcome(ctx.platform_run_id)
    for phase_id in phases:
        phase = PHASES[phase_id]()
        if progress:
            progress(phase_id, phase.name)
        outcome.records.append(execute(phase, ctx))
    return outcome
