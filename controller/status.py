"""`fp status [run]`: the phase table of a run, read from its evidence (also for a failed run), the
stream workers' table (health, lag, dead letters) read from their `last_health.json`, and for a run
P11 closed its closure (`run_completed.json`: SPINE_GREEN or the conditions it did not meet)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runtime.contracts.registry import Registry
from runtime.evidence.catalog import PHASE_NAMES, PHASES
from runtime.evidence.writer import schema_violations
from runtime.obs.closure import failed_conditions
from runtime.worker.run import DAEMON_DIRS, WORKER_COMPONENTS

#: run.json config key -> the name `fp status` shows (the dev-min-run option that sets it).
_PINNED_SHOWN = (("gate_events_per_output", "gate"), ("engine_seed", "seed"), ("engine_scale", "scale"),
                 ("traffic_mode", "mode"), ("bus", "bus"))


@dataclass(frozen=True)
class PhaseRow:
    """One row of the status table."""

    phase_id: str
    name: str
    state: str
    started: str
    duration_s: float | None
    evidence: str
    error_code: str
    next_step: str
    message: str = ""


def phase_rows(registry: Registry, evidence_dir: Path) -> list[PhaseRow]:
    """Every phase, in order, with what its record says (NOT RUN when there is none)."""
    rows = []
    for phase_id in PHASES:
        path = evidence_dir / registry.render("PHASE_RECORD_PATH_PATTERN", phase_id=phase_id)
        if not path.is_file():
            rows.append(PhaseRow(phase_id, PHASE_NAMES[phase_id], "NOT RUN", "", None, "", "", ""))
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rows.append(PhaseRow(phase_id, PHASE_NAMES[phase_id], "UNREADABLE", "", None, str(path), "", ""))
            continue
        rows.append(PhaseRow(
            phase_id, str(record.get("name") or PHASE_NAMES[phase_id]), str(record.get("state", "?")),
            str(record.get("started_at_utc", "")), record.get("duration_s"),
            " ".join(e["path"].rsplit("/", 1)[-1] for e in record.get("evidence", [])),
            str(record.get("error_code") or ""), str(record.get("next_step") or ""), str(record.get("message") or ""),
        ))
    return rows


def pinned_line(run_json: Path) -> str | None:
    """What P1 pinned for the run's options (gate, seed, scale, mode, bus), as `gate=20 seed=42 ...`;
    None before P1 (or when run.json is unreadable)."""
    try:
        config = json.loads(run_json.read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError):
        return None
    return " ".join(f"{shown}={'none' if config.get(key) is None else config.get(key)}" for key, shown in _PINNED_SHOWN)


@dataclass(frozen=True)
class ComponentRow:
    """One stream worker as its last health document says."""

    component: str
    health: str
    lag: int | None
    dead_letters: int | None
    written: str


def component_rows(registry: Registry, run_dir: Path) -> list[ComponentRow]:
    """Each stream worker (and DL) with a health document in the run folder (`<component_dir>/health/`, where
    the local worker writes it) or in the run's evidence copy; workers without one are left out."""
    rows = []
    directories = [*((c, d) for c, (_, d) in WORKER_COMPONENTS.items()), *DAEMON_DIRS.items()]
    for component, directory in directories:
        relative = registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=directory)
        path = next((p for p in (run_dir / relative, run_dir / "evidence" / relative) if p.is_file()), None)
        if path is None:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rows.append(ComponentRow(component, "UNREADABLE", None, None, ""))
            continue
        counters = doc.get("counters", {})
        rows.append(ComponentRow(component, str(doc.get("health_state", "?")), doc.get("lag_total"),
                                 counters.get("dead_letters_total"), str(doc.get("written_at_utc", ""))))
    return rows


@dataclass(frozen=True)
class Closure:
    """What a run's closure marker says: SPINE_GREEN, PARTIAL (with the conditions not met), or
    INVALID when the marker cannot be read or breaks its schema (`fp evidence validate` says more)."""

    status: str
    completed_at_utc: str = ""
    bounded_gate: int | None = None
    not_met: tuple[str, ...] = ()
    problem: str = ""


def closure(registry: Registry, evidence_dir: Path) -> Closure | None:
    """The run's `run_completed.json` (RUN_CLOSURE_MARKER_PATH_PATTERN), schema-checked; None before P11 wrote it."""
    path = evidence_dir / registry.text("RUN_CLOSURE_MARKER_PATH_PATTERN")
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return Closure("INVALID", problem=f"{path.name} is not readable JSON ({e})")
    problems = schema_violations("evidence/run_completed.schema.json", doc)
    if problems:
        return Closure("INVALID", problem=f"{path.name} breaks its schema: {problems[0]}")
    return Closure(str(doc["status"]), str(doc["completed_at_utc"]), doc.get("bounded_gate"),
                   tuple(failed_conditions(doc)))
