"""The production adapters of dev_min in one place, so every caller wires them the same way.

`fp devmin ...` and the phase machine's `fp dev-min-up/down --env dev_min` both call
`adapters(registry)` and pass the pieces to `dev_min_up` / `dev_min_down`; tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.devmin.aws import AwsClients, AwsInventory
from controller.devmin.kafka import KafkaAdminFactory, confluent_cloud_admin
from controller.devmin.terraform import TerraformCli, TerraformRunner
from runtime.contracts.registry import Registry
from runtime.settings import load_settings


@dataclass(frozen=True)
class DevMinAdapters:
    """Terraform runner, AWS inventory and Kafka admin factory for one environment."""

    runner: TerraformRunner
    aws: AwsInventory
    kafka_admin: KafkaAdminFactory


def adapters(registry: Registry) -> DevMinAdapters:
    """The real adapters: Terraform CLI, boto3 on the settings' region/endpoint, Confluent Cloud admin."""
    settings = load_settings(environment=registry.environment)
    clients = AwsClients(region=settings.aws_region, endpoint_url=settings.object_store_endpoint)
    return DevMinAdapters(runner=TerraformCli(), aws=AwsInventory(clients), kafka_admin=confluent_cloud_admin)
