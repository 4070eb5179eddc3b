"""P0 preflight against a moto dev_min account: every forbidden or missing thing is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.devmin.checks import DevMinCheckFailed
from controller.devmin.kafka import plaintext_admin
from controller.devmin.preflight import preflight
from controller.devmin.terraform import stack_from_registry
from controller.devmin.up import dev_min_up
from runtime.evidence.writer import schema_violations
from tests.controller.devmin.conftest import DevMinWorld


def _applied(w: DevMinWorld) -> None:
    for name in ("core", "demo"):
        w.runner.apply(stack_from_registry(w.registry, name))


def _stored_snapshot(w: DevMinWorld) -> dict:
    body = w.clients.client("s3").get_object(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"),
                                             Key=w.registry.text("DEMO_APPLY_SNAPSHOT_KEY"))["Body"].read()
    return dict(json.loads(body))


def _plant_nat_gateway(w: DevMinWorld) -> str:
    ec2 = w.clients.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return str(ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"])


def test_planted_nat_gateway_fails_preflight_naming_it(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _applied(w)
    nat_id = _plant_nat_gateway(w)
    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, plaintext_admin)
    assert caught.value.code == "NAT_GATEWAY_PRESENT"
    assert nat_id in caught.value.message
    snapshot = _stored_snapshot(w)
    assert schema_violations("evidence/demo_apply_snapshot.schema.json", snapshot) == []
    assert snapshot["all_ok"] is False and snapshot["nat_gateways"] == 1


def test_nat_gateway_planted_during_up_stops_up_after_the_apply(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _plant_nat_gateway(w)
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_up(w.registry, w.runner, w.aws, kafka_admin=plaintext_admin)
    assert caught.value.code == "NAT_GATEWAY_PRESENT"
    assert _stored_snapshot(w)["terraform"]["demo_applied"] is True


def test_load_balancer_fails_preflight(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _applied(w)
    w.clients.client("elb").create_load_balancer(
        LoadBalancerName="stray-classic-lb", AvailabilityZones=["eu-west-2a"],
        Listeners=[{"Protocol": "http", "LoadBalancerPort": 80, "InstancePort": 8080}])
    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, plaintext_admin)
    assert caught.value.code == "LOAD_BALANCER_PRESENT"
    assert "elb:stray-classic-lb" in caught.value.message


def test_missing_secret_and_missing_budget_are_both_named(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _applied(w)
    w.clients.client("ssm").delete_parameter(Name=w.registry.text("SSM_DB_PASSWORD_PATH"))
    account = w.clients.client("sts").get_caller_identity()["Account"]
    w.clients.client("budgets").delete_budget(AccountId=account, BudgetName=w.registry.text("AWS_BUDGET_NAME"))
    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, plaintext_admin)
    assert caught.value.code == "P0_PREFLIGHT_FAILED"
    assert "SSM_DB_PASSWORD_PATH" in caught.value.message and "budget_enabled" in caught.value.message
    assert {c.name for c in caught.value.failed} == {"ssm_secrets_present", "budget_enabled"}
    assert _stored_snapshot(w)["budgets_enabled"] is False


def test_missing_topic_is_named_by_its_handle(dev_min_world: DevMinWorld) -> None:
    from confluent_kafka.admin import AdminClient

    w = dev_min_world
    _applied(w)
    assert w.runner.broker is not None
    topic = w.registry.topic("FP_BUS_AUDIT_V1").name
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{w.runner.broker.port}"})
    for f in admin.delete_topics([topic]).values():
        f.result(30)
    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, plaintext_admin)
    assert caught.value.code == "TOPIC_MISSING"
    assert "FP_BUS_AUDIT_V1" in caught.value.message


def test_nothing_applied_names_the_failed_checks_even_when_the_snapshot_cannot_be_written(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, plaintext_admin)
    assert caught.value.code == "P0_PREFLIGHT_FAILED"
    names = {c.name for c in caught.value.failed}
    assert {"ssm_secrets_present", "topics_present", "budget_enabled", "ecs_cluster_active", "runtime_db_present"} <= names
    assert f"bucket_writable:{w.registry.text('S3_EVIDENCE_BUCKET')}" in names
    assert "snapshot not written" in caught.value.next_step
    assert "nat_gateways_zero" not in names  # an empty account has no NAT gateway


def test_unreachable_kafka_is_a_failed_check_not_a_pass(dev_min_world: DevMinWorld, tmp_path: Path) -> None:
    w = dev_min_world
    _applied(w)
    w.runner.close()  # the broker disappears; SSM still names it
    from controller.devmin.kafka import ConfluentKafkaAdmin, KafkaAccess

    def quick_admin(access: KafkaAccess) -> ConfluentKafkaAdmin:
        return ConfluentKafkaAdmin({"bootstrap.servers": access.bootstrap}, timeout_s=2.0)

    with pytest.raises(DevMinCheckFailed) as caught:
        preflight(w.registry, w.aws, quick_admin)
    assert caught.value.code == "BUS_UNAVAILABLE"
