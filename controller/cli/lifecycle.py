"""`fp dev-min-up` and `fp dev-min-down`: the operator's bring-up (P0) and teardown (P12)."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import ENV_HELP, console, operator_errors
from controller.cli.options import registry_for, resolve_bus
from controller.lifecycle import dev_min_down_local, dev_min_up_local
from controller.substrate.local import Ports
from runtime.errors import PlatformError

EnvOpt = Annotated[str | None, typer.Option("--env", help=ENV_HELP)]


def dev_min_up(
    env: EnvOpt = None,
    bus: Annotated[str | None, typer.Option(help="local bus: kinesis or kafka")] = None,
) -> None:
    """P0: bring the substrate up (local: embedded servers; dev_min: Terraform core + demo) and prove it."""
    with operator_errors():
        registry = registry_for(env)
        if registry.environment != "local_parity":
            raise PlatformError("dev_min bring-up is not wired into this command yet", code="PHASE_NOT_BUILT",
                                next_step="use --env local_parity")
        with console.status("P0: substrate up, bootstrap, live checks..."):
            result = dev_min_up_local(registry, bus=resolve_bus(bus, registry), ports=Ports.from_registry(registry))
    console.print(f"P0 SUBSTRATE_READY: PASS for run {result.platform_run_id}")
    console.print(f"evidence: {result.evidence_dir}")


def dev_min_down(env: EnvOpt = None) -> None:
    """P12: stop/destroy what is costly, prove nothing is left, keep the evidence."""
    with operator_errors():
        registry = registry_for(env)
        if registry.environment != "local_parity":
            raise PlatformError("dev_min teardown is not wired into this command yet", code="PHASE_NOT_BUILT",
                                next_step="use --env local_parity")
        result = dev_min_down_local(registry)
    if result.already_torn_down:
        console.print(f"run {result.platform_run_id} was already torn down; nothing to do")
    else:
        console.print(f"P12 TEARDOWN: PASS for run {result.platform_run_id}")
    console.print(f"evidence: {result.evidence_dir}")
