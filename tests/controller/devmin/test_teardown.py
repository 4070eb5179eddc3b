"""P12 teardown against a moto dev_min account: billing-safe or a named, non-zero stop."""

from __future__ import annotations

import json

import pytest

from controller.devmin.checks import DevMinCheckFailed
from controller.devmin.kafka import plaintext_admin
from controller.devmin.teardown import dev_min_down
from controller.devmin.up import dev_min_up
from runtime.errors import PlatformError
from runtime.evidence.writer import schema_violations
from tests.controller.devmin.conftest import DevMinWorld


def _up(w: DevMinWorld) -> None:
    dev_min_up(w.registry, w.runner, w.aws, kafka_admin=plaintext_admin)
    w.plant_run_evidence()


def _proof_key(w: DevMinWorld) -> str:
    root = w.registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=w.run_id)
    return root + w.registry.text("TEARDOWN_PROOF_PATH_PATTERN")


def _proof_exists(w: DevMinWorld) -> bool:
    listing = w.clients.client("s3").list_objects_v2(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"), Prefix=_proof_key(w))
    return bool(listing.get("Contents"))


def test_happy_path_destroys_demo_only_and_writes_a_valid_proof(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    result = dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    assert w.runner.destroyed == ["demo"]
    stored = json.loads(w.clients.client("s3").get_object(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"), Key=_proof_key(w))["Body"].read())
    assert schema_violations("evidence/teardown_proof.schema.json", stored) == []
    assert stored["destroy_status"] == "SUCCESS" and stored["platform_run_id"] == w.run_id
    assert stored["confirmed_absent"] == {"ecs_services": True, "ecs_tasks": True, "db": True, "demo_ssm_secrets": True,
                                          "nat_gateway": True, "load_balancer": True, "confluent_cluster": True}
    assert result.proof["evidence_readable"] is True
    # core survives: the evidence bucket, the demo snapshot and the budget are still there
    s3 = w.clients.client("s3")
    s3.head_object(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"), Key=w.registry.text("DEMO_APPLY_SNAPSHOT_KEY"))
    assert w.aws.budget_exists(w.registry.text("AWS_BUDGET_NAME"))


def test_stray_ecs_service_fails_teardown_naming_it_and_writes_no_proof(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    cluster = w.registry.text("ECS_CLUSTER_NAME")
    w.clients.client("ecs").create_service(cluster=cluster, serviceName="hand-made-stray", taskDefinition=w.registry.text("TD_SR"),
                                           desiredCount=1)
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    assert caught.value.code == "TEARDOWN_LEFTOVER"
    assert "hand-made-stray" in caught.value.message
    assert "ecs service hand-made-stray" in caught.value.next_step
    assert {c.name for c in caught.value.failed} >= {"ecs_services", "terraform_destroy_demo"}
    assert not _proof_exists(w)


def test_leftover_db_and_secret_are_named(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    r = w.registry
    original = w.runner.destroy

    def leaky_destroy(stack):  # resources Terraform lost track of survive its destroy
        original(stack)
        w.clients.client("rds").create_db_instance(DBInstanceIdentifier=r.text("RDS_INSTANCE_ID"), DBInstanceClass="db.t4g.micro",
                                                   Engine="postgres", AllocatedStorage=20, MasterUsername="u",
                                                   MasterUserPassword="p12345678")
        w.clients.client("ssm").put_parameter(Name=r.text("SSM_CONFLUENT_API_KEY_PATH"), Value="stale", Type="SecureString")

    w.runner.destroy = leaky_destroy  # type: ignore[method-assign]
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_down(r, w.runner, w.aws, w.run_id)
    assert caught.value.code == "TEARDOWN_LEFTOVER"
    assert {c.name for c in caught.value.failed} == {"db", "demo_ssm_secrets"}
    assert r.text("RDS_INSTANCE_ID") in caught.value.message
    assert "SSM_CONFLUENT_API_KEY_PATH" in caught.value.message
    assert "stale" not in caught.value.message
    assert not _proof_exists(w)


def test_confluent_cluster_still_answering_is_a_leftover(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_down(w.registry, w.runner, w.aws, w.run_id, cluster_probe=lambda bootstrap: True)
    assert caught.value.code == "TEARDOWN_LEFTOVER"
    assert w.registry.text("CONFLUENT_CLUSTER_NAME") in caught.value.message
    assert not _proof_exists(w)


def test_missing_run_evidence_fails_teardown(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    dev_min_up(w.registry, w.runner, w.aws, kafka_admin=plaintext_admin)  # no run evidence planted
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    assert caught.value.code == "EVIDENCE_UNREADABLE"
    assert not _proof_exists(w)


def test_rerun_after_fixing_leftover_passes(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    cluster = w.registry.text("ECS_CLUSTER_NAME")
    ecs = w.clients.client("ecs")
    ecs.create_service(cluster=cluster, serviceName="hand-made-stray", taskDefinition=w.registry.text("TD_SR"), desiredCount=1)
    with pytest.raises(DevMinCheckFailed):
        dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    ecs.delete_service(cluster=cluster, service="hand-made-stray", force=True)  # the operator removes it by hand
    result = dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    assert result.proof["destroy_status"] == "SUCCESS"


@pytest.mark.parametrize("bad", ["", "run-1", "platform_2026", "../platform_20260101T000000Z"])
def test_bad_run_id_is_refused_before_destroying_anything(dev_min_world: DevMinWorld, bad: str) -> None:
    w = dev_min_world
    with pytest.raises(PlatformError) as caught:
        dev_min_down(w.registry, w.runner, w.aws, bad)
    assert caught.value.code == "BAD_RUN_ID"
    assert w.runner.destroyed == []


def test_writer_refuses_a_success_proof_that_lists_something_present(dev_min_world: DevMinWorld) -> None:
    from controller.devmin.teardown import evidence_writer
    from runtime.errors import EvidenceInvalid

    w = dev_min_world
    _up(w)
    writer = evidence_writer(w.registry, w.aws, w.run_id)
    doc = {**writer.base_fields("P12", []), "environment": "dev_min", "destroy_status": "SUCCESS",
           "confirmed_absent": {"ecs_services": False, "db": True, "demo_ssm_secrets": True, "nat_gateway": True,
                                "load_balancer": True, "confluent_cluster": True},
           "checks": [{"name": "ecs_services", "ok": False}], "evidence_readable": True}
    with pytest.raises(EvidenceInvalid):
        writer.write("TEARDOWN_PROOF_PATH_PATTERN", doc)
    assert not _proof_exists(w)


def test_cluster_check_uses_the_snapshot_bootstrap_when_ssm_is_already_gone(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    assert w.runner.broker is not None
    expected = f"127.0.0.1:{w.runner.broker.port}"
    w.clients.client("ssm").delete_parameter(Name=w.registry.text("SSM_CONFLUENT_BOOTSTRAP_PATH"))
    seen: list[str] = []

    def probe(bootstrap: str) -> bool:
        seen.append(bootstrap)
        from controller.devmin.kafka import bootstrap_answers

        return bootstrap_answers(bootstrap)

    result = dev_min_down(w.registry, w.runner, w.aws, w.run_id, cluster_probe=probe)
    assert seen == [expected]
    assert result.proof["confirmed_absent"]["confluent_cluster"] is True


def test_no_recorded_bootstrap_anywhere_is_unverified_not_absent(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    r = w.registry
    w.clients.client("ssm").delete_parameter(Name=r.text("SSM_CONFLUENT_BOOTSTRAP_PATH"))
    w.clients.client("s3").delete_object(Bucket=r.text("S3_EVIDENCE_BUCKET"), Key=r.text("DEMO_APPLY_SNAPSHOT_KEY"))
    with pytest.raises(DevMinCheckFailed) as caught:
        dev_min_down(r, w.runner, w.aws, w.run_id)
    assert caught.value.code == "TEARDOWN_UNVERIFIED"
    assert not _proof_exists(w)


def test_second_teardown_of_the_same_run_is_idempotent(dev_min_world: DevMinWorld) -> None:
    w = dev_min_world
    _up(w)
    first = dev_min_down(w.registry, w.runner, w.aws, w.run_id)
    second = dev_min_down(w.registry, w.runner, w.aws, w.run_id)  # destroy of an empty demo is a no-op
    assert first.proof["confirmed_absent"] == second.proof["confirmed_absent"]
    import hashlib

    stored = w.clients.client("s3").get_object(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"), Key=_proof_key(w))["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == first.written.sha256  # base truth kept, not rewritten
