"""The run report: one document an operator, an auditor and the fraud team read first.

It brings together what the other closure files prove (reconciliation, anomalies, decision
quality) with what the run cost in time: each phase's timing from its phase record and each
stage's throughput (events, seconds, events/s, its busiest minute and the lag left at the end of
streaming when the stage measured them), and what it cost in money: the window's cost P11 priced
(`window_cost`). `run_report.json` and the local `obs/platform_run_report.json` carry the same body;
`report_html.render` turns it into the self-contained HTML page. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Phase order of the report (every phase of the run, known or not).
PHASE_ORDER = ("P(-1)", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12")


@dataclass(frozen=True)
class Stage:
    """What one stage of the spine processed and how fast."""

    stage: str
    events: int
    seconds: float | None
    busiest_minute_events: int | None = None
    lag_at_end: int | None = None

    def document(self) -> dict[str, Any]:
        """The stage as the report writes it; events/s is undefined (None) without a duration."""
        rate = round(self.events / self.seconds, 1) if self.seconds else None
        doc: dict[str, Any] = {"stage": self.stage, "events": self.events,
                               "seconds": round(self.seconds, 3) if self.seconds is not None else None,
                               "events_per_s": rate}
        if self.busiest_minute_events is not None:
            doc["busiest_minute_events"] = self.busiest_minute_events
        if self.lag_at_end is not None:
            doc["lag_at_end"] = self.lag_at_end
        return doc


@dataclass(frozen=True)
class StageTimes:
    """The durable timing facts of one stage, as the gatherer reads them from the tables it wrote.

    `first`/`last`: when its first and last event was done (a receipt's recorded time, a decision's
    decided time, a worker's last tally update); `busiest_minute_events`: the most events it did in
    one clock minute (None when its source has no per-event time); `lag_at_end`: its input events
    not yet done when streaming ended (the last admission), None when no durable source says.
    """

    stage: str
    events: int
    first: datetime | None
    last: datetime | None
    busiest_minute_events: int | None = None
    lag_at_end: int | None = None


def timed_stage(times: StageTimes) -> Stage:
    """A stage's throughput from its durable times: events over the span from its first to its last
    event (a stage that did fewer than two events, or all in one instant, has no rate)."""
    seconds = (times.last - times.first).total_seconds() if times.first and times.last else None
    if times.lag_at_end is not None and times.lag_at_end < 0:
        raise ValueError(f"stage {times.stage}: negative lag {times.lag_at_end}")
    return Stage(times.stage, times.events, seconds if seconds and seconds > 0 else None,
                 times.busiest_minute_events, times.lag_at_end)


def lag_at(input_done: int, stage_done: int) -> int:
    """What a stage still had to do at one moment: its input so far minus what it had done (never < 0:
    a stage that emits more than one record per input is not behind)."""
    return max(0, input_done - stage_done)


def phase_rows(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per phase in run order from the phase records (a phase without one is NOT_RUN)."""
    rows = []
    for phase in PHASE_ORDER:
        r = records.get(phase)
        if r is None:
            continue
        state = r.get("state") if r.get("state") in ("PASS", "FAIL", "RUNNING") else "NOT_RUN"
        rows.append({"phase_id": phase, "name": r.get("name") or phase, "state": state,
                     "started_at_utc": r.get("started_at_utc"), "ended_at_utc": r.get("ended_at_utc"),
                     "duration_s": r.get("duration_s"), "error_code": r.get("error_code")})
    return rows


#: The cost basis of a run on the local substrate.
LOCAL_COST_BASIS = "local substrate: no billed resources"
#: The currency of every cost (the price table's, stacks/prices.yaml).
COST_CURRENCY = "USD"


def unbilled_window(start_utc: str | None, end_utc: str | None) -> dict[str, Any]:
    """The cost of a window on the local substrate: explicitly nothing (never null)."""
    hours = None
    if start_utc and end_utc:
        hours = round(max(0.0, (_parse(end_utc) - _parse(start_utc)).total_seconds() / 3600), 4)
    return {"currency": COST_CURRENCY, "total": 0, "basis": LOCAL_COST_BASIS, "window_start_utc": start_utc,
            "window_end_utc": end_utc, "window_hours": hours, "by_resource": []}


def window_cost(environment: str, close_inputs: Mapping[str, Any] | None, *, start_utc: str | None,
                end_utc: str | None) -> dict[str, Any]:
    """The run report's `cost`: the window P11 priced (obs/close_inputs.json); without it, nothing
    on the local substrate, and in dev_min an explicit "not priced" (total null) naming why."""
    priced = (close_inputs or {}).get("window_cost")
    if isinstance(priced, Mapping):
        return dict(priced)
    if environment == "local_parity":
        return unbilled_window(start_utc, end_utc)
    return {"currency": COST_CURRENCY, "total": None, "window_start_utc": start_utc, "window_end_utc": end_utc,
            "basis": "not priced: P11 wrote no obs/close_inputs.json before the reporter ran (run `fp dev-min-run --from P11` "
                     "to close through P11)", "by_resource": []}


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def run_report(*, status: str, environment: str, bus: str, bounded_gate: int | None, phases: Sequence[Mapping[str, Any]],
               stages: Sequence[Stage], reconciliation: Mapping[str, Any], decision_quality: Mapping[str, Any],
               anomaly_counts: Mapping[str, int], counts: Mapping[str, int], cost: Mapping[str, Any],
               html_report: str | None) -> dict[str, Any]:
    """The body of run_report.json (without the common base fields); `cost` as `window_cost` gives it."""
    if status not in ("SPINE_GREEN", "PARTIAL", "FAILED"):
        raise ValueError(f"unknown run status {status!r}")
    if not phases:
        raise ValueError("a run report needs at least one phase")
    starts = [p["started_at_utc"] for p in phases if p.get("started_at_utc")]
    ends = [p["ended_at_utc"] for p in phases if p.get("ended_at_utc")]
    return {
        "status": status, "environment": environment, "bus": bus, "bounded_gate": bounded_gate,
        "started_at_utc": min(starts) if starts else None, "ended_at_utc": max(ends) if ends else None,
        "counts": dict(counts), "phases": [dict(p) for p in phases], "throughput": [s.document() for s in stages],
        "reconciliation": {"status": reconciliation["status"], "failed_hops": list(reconciliation["failed_hops"]),
                           "hops": [{k: h[k] for k in ("hop", "intended", "observed", "ok")}
                                    for h in reconciliation["hops"]]},
        "decision_quality": dict(decision_quality), "anomalies": dict(anomaly_counts),
        "cost": dict(cost), "html_report": html_report,
    }
