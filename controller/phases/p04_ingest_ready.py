"""P4 INGEST_READY: the Ingestion Gate (started by P2 in the control_ingress pack) honours its
auth boundary, answers health, publishes to the bus and writes to the object store.

Gate (from durable probes, not logs): unauthenticated health is 401, authenticated health is 200
AMBER/GREEN, a smoke event was admitted with a bus offset, and the S3 write smoke landed.
"""

from __future__ import annotations

import os
import time

import httpx

from controller.compute.local_backend import pack_id
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, substrate_settings
from controller.phases.p05_ready_published import equivalence_key
from runtime.contracts.ids import scenario_run_id
from runtime.errors import PlatformError
from runtime.ig.settings import read_ssm_key
from runtime.ig.summaries import write_ig_ready


def wait_until_answering(url: str, timeout_s: float = 60.0) -> None:
    """Block until IG answers HTTP at all (any status), or fail with IG_NOT_ANSWERING."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError as e:
            if time.monotonic() >= deadline:
                raise PlatformError(f"IG does not answer at {url} after {timeout_s:.0f}s: {e}", code="IG_NOT_ANSWERING",
                                    next_step="read the ig log under runs/fraud-platform/<run>/operate/<pack>/logs/") from e
            time.sleep(0.25)


def ig_base_url(ctx: RunContext) -> str:
    """Where IG answers: the environment override the registry names, else IG_BASE_URL."""
    return os.environ.get(ctx.registry.text("ENVVAR_IG_BASE_URL")) or ctx.registry.text("IG_BASE_URL")


class IngestReady(Phase):
    """P4."""

    phase_id = "P4"
    name = "INGEST_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Probe IG and write ingest/ig_ready.json."""
        settings = substrate_settings(ctx)
        api_key = read_ssm_key(settings)
        if not api_key:
            raise PlatformError("no IG API key at SSM_IG_API_KEY_PATH", code="IG_KEY_MISSING",
                                next_step="re-run `fp dev-min-up` (bootstrap writes the key)")
        wait_until_answering(ig_base_url(ctx).rstrip("/") + ctx.registry.text("IG_HEALTHCHECK_PATH"))
        written = write_ig_ready(
            ctx.writer, base_url=ig_base_url(ctx), api_key=api_key,
            receipts_store=settings.bucket("S3_EVIDENCE_BUCKET"), receipts_bucket=ctx.registry.text("S3_EVIDENCE_BUCKET"),
            scenario_run_id=scenario_run_id(equivalence_key(ctx)), service_name=pack_id(ctx.registry, "control_ingress"),
        )
        document = ctx.writer.read("IG_READY_PATH_PATTERN") or {}
        return PhaseOutcome([written], [
            Check("auth_boundary_401", document.get("auth_check", {}).get("passed") is True, None),
            Check("health_200", document.get("health", {}).get("status_code") == 200, str(document.get("health", {}).get("state"))),
            Check("publish_smoke", document.get("publish_smoke", {}).get("offset") is not None, None),
            Check("s3_write_smoke", document.get("s3_write_smoke", {}).get("ok") is True, None),
        ])
