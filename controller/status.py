"""`fp status [run]`: the phase table of a run, read from its evidence (also for a failed run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runtime.contracts.registry import Registry
from runtime.evidence.catalog import PHASE_NAMES, PHASES

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
