"""dev_min_up: core then demo through the runner, then a passing preflight with its snapshot."""

from __future__ import annotations

import json

import pytest

from controller.devmin.kafka import plaintext_admin
from controller.devmin.up import dev_min_up
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError, RegistryError
from runtime.evidence.writer import schema_violations
from tests.controller.devmin.conftest import DevMinWorld


def test_up_applies_core_before_demo_and_writes_a_valid_snapshot(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    result = dev_min_up(w.registry, w.runner, w.aws, kafka_admin=plaintext_admin)
    assert w.runner.applied == ["core", "demo"]
    assert result.preflight.all_ok
    bucket, key = w.registry.text("S3_EVIDENCE_BUCKET"), w.registry.text("DEMO_APPLY_SNAPSHOT_KEY")
    assert result.snapshot_uri == f"s3://{bucket}/{key}"
    stored = json.loads(w.clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert schema_violations("evidence/demo_apply_snapshot.schema.json", stored) == []
    assert stored["all_ok"] is True and stored["nat_gateways"] == 0 and stored["load_balancers"] == 0
    assert stored["budgets_enabled"] is True
    assert stored["terraform"] == {"core_applied": True, "demo_applied": True, "outputs": result.outputs}
    assert stored["platform_run_id"] is None
    # secrets never reach evidence
    ssm = w.clients.client("ssm")
    secret = ssm.get_parameter(Name=w.registry.text("SSM_CONFLUENT_API_SECRET_PATH"), WithDecryption=True)["Parameter"]["Value"]
    assert secret not in json.dumps(stored)


def test_up_refuses_local_parity_registry(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    with pytest.raises(PlatformError) as caught:
        dev_min_up(load_registry("local_parity"), w.runner, w.aws, kafka_admin=plaintext_admin)
    assert caught.value.code == "ENV_NOT_DEV_MIN"
    assert w.runner.applied == []


def test_unknown_environment_is_refused_before_anything_runs() -> None:
    with pytest.raises(RegistryError) as caught:
        load_registry("dev_max")
    assert caught.value.code == "UNKNOWN_ENV"
