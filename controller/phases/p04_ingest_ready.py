"""P4 INGEST_READY: the Ingestion Gate (started by P2 in the control_ingress pack) honours its
auth boundary, answers health, publishes to the bus and writes to the object store.

The probes run as a job on IG's side of the network (`ig ready-check` under the reporter task
definition, which in dev_min sits in the VPC where IG's Cloud Map name resolves; locally a
process next to the substrate). Gate, from the evidence the job wrote: unauthenticated health is
401, authenticated health is 200 AMBER/GREEN, a smoke event was admitted with a bus offset, and
the receipt write landed.
"""

from __future__ import annotations

from controller.compute.local_backend import pack_id
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, collected
from controller.phases.compute import compute_backend, run_job
from controller.phases.p05_ready_published import equivalence_key
from runtime.contracts.ids import scenario_run_id
from runtime.errors import PlatformError

#: The job component whose task definition runs the in-network checks of P4 and P7.
VERIFIER_JOB = "reporter"


class IngestReady(Phase):
    """P4."""

    phase_id = "P4"
    name = "INGEST_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Run the readiness probe job against IG and collect ingest/ig_ready.json."""
        pack = compute_backend(ctx).pack_state("control_ingress")
        ig = next((p for p in pack.processes if p.name == "ig"), None)
        if ig is None or ig.status != "RUNNING":
            raise PlatformError(f"IG is not running in pack control_ingress ({ig.status if ig else 'absent'})",
                                code="IG_NOT_RUNNING", next_step="re-run from P2 (`fp dev-min-run --from P2`)")
        argv = ["ig", "ready-check", "--platform-run-id", ctx.platform_run_id,
                "--scenario-run-id", scenario_run_id(equivalence_key(ctx)),
                "--service-name", ig.service or pack_id(ctx.registry, "control_ingress")]
        argv += ["--pid", str(ig.pid)] if ig.pid else []
        argv += ["--task-arn", ig.task_arn] if ig.task_arn else []
        run_job(ctx, VERIFIER_JOB, argv, default_timeout=600)
        evidence = collected(ctx, "IG_READY_PATH_PATTERN")
        document = ctx.writer.read("IG_READY_PATH_PATTERN") or {}
        return PhaseOutcome(evidence, [
            Check("auth_boundary_401", document.get("auth_check", {}).get("passed") is True, None),
            Check("health_200", document.get("health", {}).get("status_code") == 200, str(document.get("health", {}).get("state"))),
            Check("publish_smoke", document.get("publish_smoke", {}).get("offset") is not None, None),
            Check("s3_write_smoke", document.get("s3_write_smoke", {}).get("ok") is True, None),
        ])
