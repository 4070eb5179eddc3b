"""Pick the compute backend for an environment, so phases never branch on the environment.

`local_parity` runs packs and jobs on this machine; `dev_min` runs them on ECS. The choice is
keyed by the registry's environment, the one source of which world a run lives in.
"""

from __future__ import annotations

from pathlib import Path

from controller.compute.port import ComputeBackend
from controller.devmin.aws import AwsClients
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError


def backend_for(registry: Registry, *, runs_root: Path | None = None, environment: dict[str, str] | None = None,
                clients: AwsClients | None = None, commands: dict[str, list[str]] | None = None,
                image: str | None = None, poll_seconds: float | None = None) -> ComputeBackend:
    """LocalBackend for local_parity (needs runs_root + substrate env), EcsBackend for dev_min
    (every task on `image`, the digest P(-1) pinned, when given)."""
    if registry.environment == "local_parity":
        from controller.compute.local_backend import LocalBackend

        if runs_root is None:
            raise PlatformError("the local backend needs the runs root", code="BACKEND_CONFIG_INVALID",
                                next_step="pass runs_root (the run folders' root)")
        return LocalBackend(registry, runs_root, environment or {}, commands=commands)
    if registry.environment == "dev_min":
        from controller.compute.ecs_backend import EcsBackend

        return EcsBackend(registry, clients or AwsClients(region=registry.text("AWS_REGION")), image=image,
                          poll_seconds=5.0 if poll_seconds is None else poll_seconds)
    raise PlatformError(f"no compute backend for environment {registry.environment!r}", code="UNKNOWN_ENV",
                        next_step="use --env local_parity or --env dev_min")
