"""P12 TEARDOWN (local_parity): stop what we started, prove it is gone, keep the evidence.

Gate: none of the processes the substrate recorded still runs, their ports are free, and the
run's local evidence bundle is still readable. The proof is written to the run folder (the
embedded object store is gone by then; the folder is the local "core").
"""

from __future__ import annotations

import json

from controller.compute.local_backend import running_packs, stop_pack
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from controller.substrate.local import down
from runtime.errors import PlatformError


class Teardown(Phase):
    """P12 for local_parity."""

    phase_id = "P12"
    name = "TEARDOWN"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Stop the substrate, verify, and write the teardown proof."""
        packs_stopped = [p for p in running_packs(ctx.registry, ctx.folders.root) if stop_pack(ctx.registry, p, ctx.folders.root)]
        packs_left = running_packs(ctx.registry, ctx.folders.root)
        result = down(ctx.registry, ctx.options.get("base"))
        evidence_dir = ctx.folders.evidence_dir(ctx.platform_run_id)
        unreadable = []
        files = sorted(evidence_dir.rglob("*.json")) if evidence_dir.is_dir() else []
        for path in files:
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                unreadable.append(str(path))
        evidence_ok = bool(files) and not unreadable
        checks = [
            Check("packs_stopped", not packs_left, f"still running: {', '.join(packs_left)}" if packs_left else None),
            Check("substrate_processes_stopped", not result.still_running,
                  f"still running: {', '.join(result.still_running)}" if result.still_running else None),
            Check("substrate_ports_free", not result.ports_still_taken,
                  f"ports still taken: {result.ports_still_taken}" if result.ports_still_taken else None),
            Check("evidence_readable", evidence_ok,
                  None if evidence_ok else (f"unreadable: {', '.join(unreadable)}" if unreadable else f"no evidence in {evidence_dir}")),
        ]
        leftovers = [*(f"pack {p}" for p in packs_left), *result.still_running,
                     *(f"port {p}" for p in result.ports_still_taken), *unreadable]
        if leftovers:
            raise PlatformError(f"teardown left {', '.join(leftovers)}", code="TEARDOWN_LEFTOVER",
                                next_step="stop the listed processes by hand, then re-run `fp dev-min-down`")
        document = {
            **ctx.writer.base_fields("P12", ["LOCAL_SUBSTRATE_DIR", "TEARDOWN_PROOF_PATH_PATTERN"]),
            "environment": ctx.registry.environment,
            "destroy_status": "SUCCESS",
            "confirmed_absent": {"pack_processes": not packs_left, "substrate_processes": not result.still_running,
                                 "substrate_ports": not result.ports_still_taken},
            "checks": [c.to_dict() for c in checks],
            "evidence_readable": evidence_ok,
            "leftovers": leftovers,
            "stopped": [*(f"pack {p}" for p in packs_stopped), *result.stopped],
        }
        written = ctx.writer.write("TEARDOWN_PROOF_PATH_PATTERN", document)
        return PhaseOutcome([written], checks)
