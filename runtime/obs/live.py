"""What the obs_gov pack's daemons write while a run is in flight: pure documents, no I/O.

Two derived summaries, refreshed every OBS_LIVE_REFRESH_INTERVAL_MS and never closure files:

- `run_in_progress.json` (LIVE_RUN_REPORT_PATH_PATTERN, the platform_run_reporter daemon): the
  phases so far, the spine's counts, the reconciliation *so far* (a hop that does not hold yet is
  work in flight, not a failure: only P11's `reconciliation.json` judges) and the anomalies;
- `environment_conformance.json` under `obs/live/` (LIVE_ENV_CONFORMANCE_PATH_PATTERN, the
  env_conformance daemon): the same checks P11 judges (runtime/obs/conformance.py), with a check
  that only lacks its observation yet (no decision reports the policy pin, a worker has not written
  its health) marked pending. Status PASS, FAIL (a check contradicted) or PENDING.

P11 keeps its own final evaluation; these documents are what `fp status` shows on a run in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runtime.obs.conformance import Check

#: The schema of each live document (schemas/operate/).
LIVE_SCHEMAS = {"LIVE_RUN_REPORT_PATH_PATTERN": "operate/live_run_report.schema.json",
                "LIVE_ENV_CONFORMANCE_PATH_PATTERN": "operate/live_env_conformance.schema.json"}
#: A run-scope problem that only says a member has not reported yet.
_NO_HEALTH = ": no health document"


def pending(check: Check) -> bool:
    """A failed check whose observation simply is not there yet (it may still pass): a pin no
    component reports yet, or pack members that have not written their health yet."""
    if check.ok:
        return False
    if check.category == "pinned_versions_in_use":
        return isinstance(check.observed, Mapping) and not any(check.observed.values())
    if check.category == "run_scope_enforced":
        problems = check.observed if isinstance(check.observed, list) else []
        return bool(problems) and all(str(p).endswith(_NO_HEALTH) for p in problems)
    return False


def live_conformance(platform_run_id: str, environment: str, checks: Sequence[Check], *, written_at_utc: str,
                     refresh: int, interval_s: float, phase_reached: str | None) -> dict[str, Any]:
    """The env_conformance daemon's latest evaluation: FAIL when any check is contradicted, PENDING
    when the only failures lack their observation yet, PASS when every check holds."""
    failed = [c.name for c in checks if not c.ok]
    waiting = [c.name for c in checks if pending(c)]
    contradicted = [n for n in failed if n not in waiting]
    status = "FAIL" if contradicted else "PENDING" if waiting else "PASS"
    return {"platform_run_id": platform_run_id, "written_at_utc": written_at_utc, "final": False,
            "component": "env_conformance", "refresh": refresh, "interval_s": interval_s, "phase_reached": phase_reached,
            "environment": environment, "status": status, "failed_checks": contradicted, "pending_checks": waiting,
            "checks": [c.document() for c in checks]}


def live_run_report(platform_run_id: str, *, written_at_utc: str, refreshed_by: str, refresh: int, interval_s: float,
                    phases: Sequence[Mapping[str, Any]], counts: Mapping[str, int], hops: Sequence[Mapping[str, Any]],
                    groups_pending: Mapping[str, str], anomaly_counts: Mapping[str, int]) -> dict[str, Any]:
    """The platform_run_reporter daemon's run-in-progress report: phases so far, counts, each hop's
    intended and observed so far (`settled` = it holds or is explained; the hop documents of
    runtime/obs/reconcile.py), the consumer groups not reconciled yet because their worker cannot
    be built yet (component -> error code, e.g. DF before P1's policy pin is readable), anomalies."""
    rows = [{"hop": h["hop"], "intended": h["intended"], "observed": h["observed"], "difference": h["difference"],
             "settled": bool(h["ok"])} for h in hops]
    return {"platform_run_id": platform_run_id, "written_at_utc": written_at_utc, "final": False,
            "component": "platform_run_reporter", "refreshed_by": refreshed_by, "refresh": refresh,
            "interval_s": interval_s, "phase_reached": phase_reached(phases), "phases": list(phases),
            "counts": dict(counts), "reconciliation_so_far": {
                "hops": rows, "unsettled_hops": [h["hop"] for h in rows if not h["settled"]],
                "groups_pending": dict(sorted(groups_pending.items())),
                "note": "a hop that does not hold yet is work in flight; P11's reconciliation.json judges"},
            "anomalies": dict(anomaly_counts)}


def phase_reached(phases: Sequence[Mapping[str, Any]]) -> str | None:
    """The last phase that passed, from `run_report.phase_rows`."""
    passed = [p["phase_id"] for p in phases if p.get("state") == "PASS"]
    return passed[-1] if passed else None


def status_line(report: Mapping[str, Any] | None, conformance: Mapping[str, Any] | None, *, now_s: float) -> str | None:
    """One line (under 80 columns) for `fp status` on a run in flight from the latest live
    documents: environment conformance status, hops settled so far, anomalies, and the age of the older one
    (a stopped daemon shows a stale age, not a live one). None when neither exists."""
    from datetime import datetime

    parts, ages = [], []
    if conformance:
        waiting = len(conformance.get("pending_checks") or [])
        parts.append(f"env {conformance.get('status')}" + (f" ({waiting} pending)" if waiting else ""))
        ages.append(str(conformance.get("written_at_utc")))
    if report:
        hops = (report.get("reconciliation_so_far") or {}).get("hops") or []
        parts.append(f"hops {sum(1 for h in hops if h.get('settled'))}/{len(hops)} settled")
        parts.append(f"{(report.get('anomalies') or {}).get('total', 0)} anomalies")
        ages.append(str(report.get("written_at_utc")))
    if not parts:
        return None
    oldest = min(datetime.fromisoformat(a.replace("Z", "+00:00")).timestamp() for a in ages)
    return f"obs_gov: {', '.join(parts)}, {max(0, now_s - oldest):.0f}s ago"
