"""P(-1) PACKAGING_READY: identify what the run will execute and prove its entrypoint starts.

local_parity records the installed package digest (no image); dev_min records the tag and the
digest ECR holds for the built (or reused) image, and fails closed without a Docker engine, from a
dirty tree, or when any step (build, smoke test, login, push, digest check) fails (controller.packaging).
"""

from __future__ import annotations

from collections.abc import Callable

from controller.packaging import PackagingResult, package
from controller.phases.base import Check, Phase, PhaseOutcome, RunContext
from runtime.contracts.registry import Registry


class PackagingReady(Phase):
    """P(-1)."""

    phase_id = "P(-1)"
    name = "PACKAGING_READY"

    def __init__(self, packager: Callable[[Registry], PackagingResult] = package) -> None:
        """`packager` is controller.packaging.package; tests pass one wired to their docker seam."""
        self.packager = packager

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Package identity + smoke test, written as packaging/packaging_ready.json."""
        result = self.packager(ctx.registry)
        document = {
            **ctx.writer.base_fields("P(-1)", ["IMAGE_TAG_GIT_SHA_PATTERN", "IMAGE_DIGEST_EVIDENCE_FIELD", "PACKAGING_READY_PATH_PATTERN",
                                                *(["ECR_REPO_NAME", "ECR_REPO_URI"] if result.image_uri else [])]),
            "environment": ctx.registry.environment,
            "image_tag": result.image_tag,
            "image_digest": result.image_digest,
            "git_sha": result.git_sha,
            "git_dirty": result.git_dirty,
            "package_digest": result.package_digest,
            "smoke_ok": result.smoke_ok,
        }
        if result.image_uri is not None:
            document["image_uri"] = result.image_uri
            document["image_reused"] = result.image_reused
        written = ctx.writer.write("PACKAGING_READY_PATH_PATTERN", document)
        checks = [Check("entrypoint_smoke_test", result.smoke_ok, "python -m runtime --help")]
        if result.image_uri is not None:
            checks.append(Check("image_tag_in_ecr", result.image_digest is not None, f"{result.image_uri} = {result.image_digest}"))
        return PhaseOutcome([written], checks)
