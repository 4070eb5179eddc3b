"""P11 OBS_GOV_CLOSED: the single-writer reporter closed the run, and its closure holds.

The reporter runs as a job where the database lives (a local process, the TD_REPORTER ECS task in
dev_min): `reporter close` takes the run's lock, gathers durable state and writes the closure files,
run_completed.json last (runtime/obs/close.py). The phase collects them into every target of the
bundle, copies the report and conformance to the local run folder (local_parity: seed 001's
`obs/platform_run_report.json`, `obs/environment_conformance.json`) and the HTML report next to the
bundle, then gates on what the reporter wrote: the closure marker exists; every hop reconciles
(a hop that does not is named); the replay anchors agree with P7's and P8's snapshots (an edited
snapshot is named); the environment conformance passed. Spine Green or PARTIAL is the marker's
verdict, shown by `fp status` and `fp report`; P11 itself gates on the closure being sound.

Before the job, P11 writes `obs/close_inputs.json` for the reporter: what only the controller can
see. The cost of the run's window, from its first phase record to now: in dev_min what the stacks
keep up, priced from stacks/prices.yaml by stacks/cost.py; locally explicitly nothing. In dev_min
also the images of the ECS task definitions scoped to the run, which the reporter checks against
the image digest P1 pinned. The reporter stays the single writer of the closure files: it copies
the cost into run_report.json and judges the images in environment_conformance.json.

Also before the job, the obs_gov pack: its platform_run_reporter daemon holds the run's single-writer
lock while it runs (runtime/obs/daemons.py). In the normal flow (a whole run, `--from`), P11 stops
the pack when it runs for this run (both daemons: a pack stops as a whole, and P11's own
conformance supersedes env_conformance's), then closes. `--phase P11` (a re-run) is refused with
REPORTER_LOCK_HELD while the pack runs for this run: seed 003 allows re-running P11 only when the
reporter daemon is not running.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import compute_backend, run_job
from runtime.contracts.ids import utc_now
from runtime.evidence.catalog import PHASES
from runtime.evidence.writer import WrittenEvidence, encode, schema_violations
from runtime.obs.errors import ReporterLockHeld
from runtime.obs.reconcile import failure_summary
from runtime.obs.run_report import unbilled_window

#: The job component of P11 (runtime/components.py).
REPORTER_JOB = "reporter"
#: The pack whose reporter daemon holds the run's lock while it runs (registry PACKS).
OBS_GOV_PACK = "obs_gov"
#: The closure files, in the order the reporter writes them (run_completed.json last).
CLOSURE_KEYS = ("RECONCILIATION_PATH_PATTERN", "REPLAY_ANCHORS_PATH_PATTERN", "ENV_CONFORMANCE_PATH_PATTERN",
                "ANOMALY_SUMMARY_PATH_PATTERN", "RUN_REPORT_PATH_PATTERN", "RUN_CLOSURE_MARKER_PATH_PATTERN")


class ObsGovClosed(Phase):
    """P11."""

    phase_id = "P11"
    name = "OBS_GOV_CLOSED"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Stop the obs_gov pack (or refuse a re-run beside it), run the reporter job, collect its
        files, gate on them."""
        stopped = stop_obs_gov(ctx)
        inputs = write_close_inputs(ctx)
        run_job(ctx, REPORTER_JOB, ["reporter", "close", "--platform-run-id", ctx.platform_run_id], default_timeout=3600)
        evidence = [*inputs, *collected(ctx, *CLOSURE_KEYS)]
        collected(ctx, "RUN_REPORT_HTML_PATH_PATTERN")
        docs = {key: ctx.writer.read(key) or {} for key in CLOSURE_KEYS}
        if ctx.registry.environment == "local_parity":
            _local_copies(ctx, docs)
        recon, anchors = docs["RECONCILIATION_PATH_PATTERN"], docs["REPLAY_ANCHORS_PATH_PATTERN"]
        conformance, marker = docs["ENV_CONFORMANCE_PATH_PATTERN"], docs["RUN_CLOSURE_MARKER_PATH_PATTERN"]
        failed_hops = list(recon.get("failed_hops") or [])
        inconsistent = [s for s in anchors.get("consistent_with") or [] if not s.get("consistent")]
        return PhaseOutcome(evidence, [
            *([stopped] if stopped else []),
            Check("closure_marker_written", bool(marker.get("status")),
                  f"run_completed {marker.get('status', 'missing')}"
                  + "".join(f"; not met: {c.get('name')}" for c in marker.get("conditions") or [] if not c.get("ok"))),
            Check("every_hop_reconciles", recon.get("status") == "PASS" and not failed_hops,
                  f"reconciliation {recon.get('status', 'missing')}"
                  + (f"; failed hops: {', '.join(failed_hops)} ({failure_summary(recon)})"[:1500] if failed_hops else "")),
            Check("replay_anchors_consistent", bool(anchors.get("offset_ranges")) and not inconsistent,
                  f"{len(anchors.get('offset_ranges') or [])} range(s)"
                  + "".join(f"; {s.get('path')} inconsistent: {s.get('detail')}" for s in inconsistent)),
            Check("environment_conformance_pass", conformance.get("status") == "PASS",
                  f"environment conformance {conformance.get('status', 'missing')}"
                  + (f"; failed: {', '.join(conformance.get('failed_checks') or [])}" if conformance.get("failed_checks") else "")),
        ])


def write_close_inputs(ctx: RunContext) -> list[WrittenEvidence]:
    """obs/close_inputs.json: the priced window and (dev_min) the run's task-definition images. A
    run closed already keeps the inputs its closure used (collected, not rewritten); one closed by
    a reporter run outside P11 had none, and gets them now as what P11 observed (its run report
    keeps the cost its closure wrote)."""
    if (ctx.writer.read("RUN_CLOSURE_MARKER_PATH_PATTERN") is not None
            and ctx.writer.read("CLOSE_INPUTS_PATH_PATTERN") is not None):
        return collected(ctx, "CLOSE_INPUTS_PATH_PATTERN")
    end = utc_now()
    start = window_start(ctx) or end
    handles = ["CLOSE_INPUTS_PATH_PATTERN", "PHASE_RECORD_PATH_PATTERN", "EVIDENCE_RUN_JSON_KEY"]
    observed = None
    if ctx.registry.environment == "dev_min":
        from stacks.cost import estimate, window_cost

        cost = window_cost(estimate(ctx.registry.environment, registry_file=ctx.registry.source), start, end).document()
        observed = compute_backend(ctx).run_task_definitions(ctx.platform_run_id)
        handles += ["ECS_CLUSTER_NAME"]
    else:
        cost = unbilled_window(*(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (start, end)))
    document = {**ctx.writer.base_fields("P11", handles), "window_cost": cost,
                "task_definitions": [t.to_evidence() for t in observed[0]] if observed is not None else None}
    if observed is not None:
        document["task_definitions_not_of_the_run"] = observed[1]
    return [ctx.writer.write("CLOSE_INPUTS_PATH_PATTERN", document)]


def window_start(ctx: RunContext) -> datetime | None:
    """When the run's window opened: the earliest start among its phase records (P(-1) on, the
    stacks are up from dev-min-up) and run.json."""
    starts = [str(r["started_at_utc"]) for r in (ctx.writer.read("PHASE_RECORD_PATH_PATTERN", phase_id=p) for p in PHASES)
              if r and r.get("started_at_utc")]
    run = ctx.writer.read("EVIDENCE_RUN_JSON_KEY") or {}
    if run.get("started_at_utc"):
        starts.append(str(run["started_at_utc"]))
    return min((datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC) for s in starts), default=None)


def stop_obs_gov(ctx: RunContext) -> Check | None:
    """The obs_gov pack of this run must not run beside the closing reporter: stop it in the normal
    flow; refuse `--phase P11` while it runs (REPORTER_LOCK_HELD). A pack never started (a slice
    without it) or running for another run is left alone."""
    if OBS_GOV_PACK not in ctx.options.get("packs", []):
        return None
    backend = compute_backend(ctx)
    state = backend.pack_state(OBS_GOV_PACK)
    if state.state == "STOPPED" or state.run_scope != ctx.platform_run_id:
        return None
    if ctx.options.get("rerun_only") == "P11":
        raise ReporterLockHeld(
            f"the obs_gov pack runs for {ctx.platform_run_id}: its platform_run_reporter daemon holds the reporter lock "
            f"{ctx.registry.render('REPORTER_LOCK_KEY_PATTERN', platform_run_id=ctx.platform_run_id)}, so P11 cannot re-run beside it",
            next_step="stop the obs_gov pack first: `fp dev-min-run --from P11` stops it and closes the run "
                      "(`fp dev-min-down` stops every pack)")
    progress = ctx.options.get("job_progress")
    if progress:
        progress(f"stopping pack {OBS_GOV_PACK} (its reporter daemon holds the run's lock) before the reporter closes the run")
    backend.stop_pack(OBS_GOV_PACK)
    after = backend.pack_state(OBS_GOV_PACK)
    return Check("obs_gov_stopped_before_close", after.state == "STOPPED",
                 f"pack {state.pack_id} {state.state} -> {after.state} before the reporter job")


def _local_copies(ctx: RunContext, docs: dict[str, dict[str, Any]]) -> None:
    """Seed 001 section 11.1's local artefacts: the run report and the conformance, in the run folder's obs/."""
    run_dir = ctx.folders.run_dir(ctx.platform_run_id)
    for key, doc, schema in (("LOCAL_PLATFORM_RUN_REPORT_PATH_PATTERN", docs["RUN_REPORT_PATH_PATTERN"], "platform_run_report"),
                             ("LOCAL_ENV_CONFORMANCE_PATH_PATTERN", docs["ENV_CONFORMANCE_PATH_PATTERN"],
                              "environment_conformance")):
        if not doc or schema_violations(f"evidence/{schema}.schema.json", doc):
            continue
        path = run_dir / ctx.registry.text(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(json.loads(json.dumps(doc))))
