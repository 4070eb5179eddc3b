"""Options shared by several commands (environment, bus), resolved the same way everywhere."""

from __future__ import annotations

import os

from runtime.contracts.handle_keys import ENVIRONMENTS
from runtime.contracts.registry import Registry, load_registry
from runtime.errors import PlatformError


def resolve_env(env: str | None) -> str:
    """--env, else $FP_ENV, else local_parity; an unknown name is refused."""
    value = env or os.environ.get("FP_ENV") or "local_parity"
    if value not in ENVIRONMENTS:
        raise PlatformError(f"unknown environment {value!r}; known: {', '.join(ENVIRONMENTS)}", code="UNKNOWN_ENV",
                            next_step="use --env local_parity or --env dev_min")
    return value


def registry_for(env: str | None) -> Registry:
    """The registry of the resolved environment."""
    return load_registry(resolve_env(env))


def resolve_bus(bus: str | None, registry: Registry) -> str:
    """--bus, else $FP_BUS, else the environment's default bus."""
    value = bus or os.environ.get(registry.text("ENVVAR_BUS_KIND")) or (
        registry.text("LOCAL_DEFAULT_BUS") if "LOCAL_DEFAULT_BUS" in registry else "kafka")
    if value not in ("kafka", "kinesis"):
        raise PlatformError(f"unknown bus {value!r}; known: kafka, kinesis", code="UNKNOWN_BUS",
                            next_step="use --bus kafka or --bus kinesis")
    return value


def require_local(registry: Registry, command: str) -> None:
    """Refuse a local-only command for another environment."""
    if registry.environment != "local_parity":
        raise PlatformError(f"`{command}` manages the embedded local substrate; environment is {registry.environment}",
                            code="WRONG_ENV", next_step="use --env local_parity (dev_min uses Terraform: fp dev-min-up --env dev_min)")
