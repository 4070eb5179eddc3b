"""P1 RUN_PINNED: pin the run's config payload and its digest in `run.json` before heavy work.

The payload names the environment, the bus, the bounded gate, the oracle's seed, scale and
traffic mode (controller.phases.run_options), the registry handles the run uses (by key and
value) and the sha256 of the registry file they come from, the code identity and the decision
policy bundle (id, version, digest) DF must decide with. Its sha256 over canonical JSON is the
config digest; a later invocation of the same run whose payload digests differently is refused
(CONFIG_DRIFT). A bundle file that no longer matches its reviewed digest is refused here, before
anything is pinned (POLICY_TAMPERED).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.packaging import git_sha, image_tag, package_digest
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from runtime.contracts.canonical import canonical_digest
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.decision.bundle import DEFAULT_POLICY, load_policy
from runtime.errors import PlatformError

PINNED_GROUPS = ("buckets", "topics", "ssm", "object_prefixes", "oracle", "event_classes", "ig", "wsp", "rtdl", "packs")


def pinned_policy(path: Path = DEFAULT_POLICY) -> dict[str, Any]:
    """The shipped policy bundle as run.json pins it (id, version, digest); POLICY_TAMPERED when the
    file no longer matches its reviewed digest."""
    return load_policy(path).ref()


def run_config(registry: Registry, options: dict[str, Any], code: dict[str, Any],
               policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run config payload: everything that, changed mid-run, would change what the run means."""
    return {
        "env": registry.environment,
        "bus": options.get("bus"),
        "gate_events_per_output": options.get("gate"),
        "engine_seed": options.get("seed"),
        "engine_scale": options.get("scale"),
        "traffic_mode": options.get("mode"),
        "handles": {group: registry.group(group) for group in PINNED_GROUPS},
        "registry_sha256": registry.source_sha256,
        "code": code,
        "policy": policy if policy is not None else pinned_policy(),
    }


def code_identity(packaging: dict[str, Any]) -> dict[str, Any]:
    """The part of P(-1)'s evidence that pins the code: sha, tag, image and package digests."""
    return {k: packaging.get(k) for k in ("git_sha", "image_tag", "image_digest", "package_digest")}


def config_drift(registry: Registry, options: dict[str, Any], pinned: dict[str, Any],
                 policy_path: Path = DEFAULT_POLICY) -> str | None:
    """None when the current payload (code re-identified now, without re-running P(-1)'s smoke test)
    digests like the pinned one, else what differs. `options` are the run's options as they will be
    used (run_options.apply_pinned has held them to the pinned ones)."""
    sha, _dirty = git_sha()
    # The image digest is pinned by P(-1) and is not re-derivable without a registry; compare the rest.
    code = code_identity({"git_sha": sha, "image_tag": image_tag(registry, sha),
                          "image_digest": pinned["config"].get("code", {}).get("image_digest"), "package_digest": package_digest()})
    current = run_config(registry, options, code, pinned_policy(policy_path))
    if canonical_digest(current) == pinned["config_digest"]:
        return None
    changed = sorted(k for k in current if current.get(k) != pinned["config"].get(k))
    return ", ".join(changed) or "config"


class RunPinned(Phase):
    """P1."""

    phase_id = "P1"
    name = "RUN_PINNED"

    def __init__(self, policy_path: Path = DEFAULT_POLICY):
        self.policy_path = policy_path

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Write run.json (once) with the payload and digest; refuse a tampered policy bundle or a drifted re-pin."""
        policy = pinned_policy(self.policy_path)
        pinned = ctx.writer.read("EVIDENCE_RUN_JSON_KEY")
        if pinned is not None:
            drift = config_drift(ctx.registry, ctx.options, pinned, self.policy_path)
            if drift:
                raise PlatformError(f"the run config drifted since P1 ({drift})", code="CONFIG_DRIFT",
                                    next_step="start a fresh run (`fp dev-min-run` without --from) instead of resuming")
        packaging = ctx.writer.read("PACKAGING_READY_PATH_PATTERN")
        if packaging is None:
            raise PlatformError("P(-1) left no packaging evidence in this run", code="PACKAGING_EVIDENCE_MISSING",
                                next_step="run `fp dev-min-up` (it runs P(-1) and P0) before dev-min-run")
        config = run_config(ctx.registry, ctx.options, code_identity(packaging), policy)
        document = {
            **ctx.writer.base_fields("P1", ["EVIDENCE_RUN_JSON_KEY", "CONFIG_DIGEST_ALGO", "IMAGE_TAG_GIT_SHA_PATTERN"]),
            "env": ctx.registry.environment,
            "started_at_utc": pinned["started_at_utc"] if pinned else utc_iso(),
            "ended_at_utc": None,
            "config": config,
            "config_digest": canonical_digest(config),
            "config_digest_algo": ctx.registry.text("CONFIG_DIGEST_ALGO"),
            ctx.registry.text("IMAGE_GIT_SHA_EVIDENCE_FIELD"): config["code"]["git_sha"],
            ctx.registry.text("IMAGE_TAG_EVIDENCE_FIELD"): config["code"]["image_tag"],
            ctx.registry.text("IMAGE_DIGEST_EVIDENCE_FIELD"): config["code"]["image_digest"],
        }
        if pinned is not None:
            document["written_at_utc"] = pinned["written_at_utc"]
        written = ctx.writer.write("EVIDENCE_RUN_JSON_KEY", document)
        run_dir = ctx.folders.run_dir(ctx.platform_run_id)
        active = ctx.folders.active_file.read_text().strip() if ctx.folders.active_file.exists() else None
        return PhaseOutcome([written], [
            Check("run_folder_exists", run_dir.is_dir(), str(run_dir)),
            Check("active_run_id_points_here", active == ctx.platform_run_id, f"ACTIVE_RUN_ID={active}"),
        ])
