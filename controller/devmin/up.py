"""dev_min bring-up: apply core, then demo, then prove the substrate with the P0 preflight.

Core first because demo refers to it (state bucket, lock table, evidence bucket); a failed
apply stops before anything else runs. The result carries the outputs and the preflight so the
phase machine can record P0 from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.devmin.aws import AwsInventory
from controller.devmin.checks import require_dev_min
from controller.devmin.kafka import KafkaAdminFactory, confluent_cloud_admin
from controller.devmin.preflight import PreflightResult, preflight
from controller.devmin.terraform import STACKS, TerraformRunner, stack_from_registry
from runtime.contracts.registry import Registry


@dataclass(frozen=True)
class UpResult:
    """What `dev_min_up` did: each stack's non-sensitive outputs and the passing preflight."""

    outputs: dict[str, dict[str, Any]]
    preflight: PreflightResult

    @property
    def snapshot_uri(self) -> str:
        """Where the demo apply snapshot was written."""
        return self.preflight.snapshot_uri


def dev_min_up(registry: Registry, runner: TerraformRunner, aws: AwsInventory, *,
               kafka_admin: KafkaAdminFactory = confluent_cloud_admin, stacks_root: Path | None = None,
               platform_run_id: str | None = None) -> UpResult:
    """Apply core then demo through the runner, then run the P0 preflight (raises if any check fails)."""
    require_dev_min(registry)
    outputs: dict[str, dict[str, Any]] = {}
    applied: dict[str, bool] = {}
    for name in STACKS:
        outputs[name] = runner.apply(stack_from_registry(registry, name, stacks_root))
        applied[name] = True
    result = preflight(registry, aws, kafka_admin, terraform_outputs=outputs, applied=applied, platform_run_id=platform_run_id)
    return UpResult(outputs=outputs, preflight=result)
