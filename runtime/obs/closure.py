"""Closure: the conditions of Spine Green and `run_completed.json`, the marker written last.

Seed 001 section 11.1 names what a strict closeout needs: environment conformance PASS; DF health
GREEN; AL health GREEN with intake equal to outcomes; DLA health GREEN with no unresolved lineage;
WSP emitted, for every output in scope, the count the run asked for (the gate of a bounded run,
every row of the stream view for a full-cap run). On top, every phase P0..P10 passed and P11's own
closure files hold (reconciliation PASS, replay anchors consistent). SPINE_GREEN is claimed only
when all of them hold; otherwise the run is PARTIAL and the marker says which condition failed.
The marker pins the sha256 of every closure file written before it, so an edit afterwards is
caught by `fp evidence validate`. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.contracts.canonical import sha256_hex
from runtime.evidence.writer import encode

CONDITION_NAMES = ("environment_conformance_pass", "df_health_green", "al_health_green_with_parity",
                   "dla_health_green_lineage_resolved", "wsp_emitted_gate_per_output", "every_phase_passed")
#: The phases a closed run must have passed before P11 writes its closure.
PHASES_BEFORE_CLOSURE = ("P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10")


@dataclass(frozen=True)
class Condition:
    """One condition of Spine Green and whether the run met it."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ClosureFacts:
    """What the reporter read to judge the conditions (from evidence and health documents)."""

    conformance_status: str | None
    df_health: str | None
    al_health: str | None
    al_intake: int | None
    al_outcomes: int | None
    dla_health: str | None
    lineage_unresolved_total: int | None
    #: Output id -> events WSP emitted for it.
    wsp_emitted: Mapping[str, int]
    #: Output id -> events the run asked for (the gate, or the stream view's rows at full cap).
    expected_per_output: Mapping[str, int]
    #: Phase id -> its recorded state (PASS, FAIL, ...).
    phase_states: Mapping[str, str]
    reconciliation_status: str | None
    anchors_consistent: bool | None


def _green(name: str, component: str, state: str | None, extra_ok: bool = True, extra: str = "") -> Condition:
    ok = state == "GREEN" and extra_ok
    return Condition(name, ok, f"{component} health {state or 'missing'}{extra}")


def conditions(f: ClosureFacts) -> list[Condition]:
    """The six conditions of Spine Green, in the seed's order."""
    out = [Condition("environment_conformance_pass", f.conformance_status == "PASS",
                     f"environment conformance {f.conformance_status or 'missing'}"),
           _green("df_health_green", "DF", f.df_health)]
    parity = f.al_intake is not None and f.al_intake == f.al_outcomes
    out.append(_green("al_health_green_with_parity", "AL", f.al_health, parity,
                      f"; intake {f.al_intake}, outcomes {f.al_outcomes}"))
    resolved = f.lineage_unresolved_total == 0
    out.append(_green("dla_health_green_lineage_resolved", "DLA", f.dla_health, resolved,
                      f"; lineage_unresolved_total {f.lineage_unresolved_total}"))
    short = sorted(f"{o}: emitted {f.wsp_emitted.get(o, 0)} of {n}" for o, n in f.expected_per_output.items()
                   if f.wsp_emitted.get(o, 0) != n)
    out.append(Condition("wsp_emitted_gate_per_output", bool(f.expected_per_output) and not short,
                         "; ".join(short) if short else
                         f"{len(f.expected_per_output)} output(s) emitted what the run asked for"
                         if f.expected_per_output else "no output in scope"))
    not_passed = [p for p in PHASES_BEFORE_CLOSURE if f.phase_states.get(p) != "PASS"]
    closure_ok = f.reconciliation_status == "PASS" and f.anchors_consistent is True
    detail = []
    if not_passed:
        detail.append("not passed: " + ", ".join(f"{p} ({f.phase_states.get(p, 'not run')})" for p in not_passed))
    if not closure_ok:
        detail.append(f"P11 closure: reconciliation {f.reconciliation_status or 'missing'}, replay anchors "
                      f"{'consistent' if f.anchors_consistent else 'inconsistent or missing'}")
    out.append(Condition("every_phase_passed", not not_passed and closure_ok,
                         "; ".join(detail) or "P0..P10 passed; P11 reconciliation PASS, anchors consistent"))
    return out


def run_completed(conds: Sequence[Condition], *, phases_passed: Sequence[str], bounded_gate: int | None,
                  closure_files: Mapping[str, Mapping[str, Any]], completed_at_utc: str) -> dict[str, Any]:
    """The body of run_completed.json: SPINE_GREEN only when every condition holds."""
    names = [c.name for c in conds]
    if sorted(names) != sorted(CONDITION_NAMES):
        raise ValueError(f"the conditions must be exactly {', '.join(CONDITION_NAMES)}")
    if not closure_files:
        raise ValueError("a closure marker pins at least one closure file")
    return {"status": "SPINE_GREEN" if all(c.ok for c in conds) else "PARTIAL",
            "completed_at_utc": completed_at_utc, "phases_passed": list(dict.fromkeys(phases_passed)),
            "bounded_gate": bounded_gate,
            "conditions": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in conds],
            "closure_files": [{"path": p, "sha256": sha256_hex(encode(dict(d)))} for p, d in sorted(closure_files.items())]}


def failed_conditions(doc: Mapping[str, Any]) -> list[str]:
    """The names and details of the conditions a run_completed document did not meet."""
    return [f"{c.get('name')}: {c.get('detail')}" for c in doc.get("conditions") or [] if not c.get("ok")]
