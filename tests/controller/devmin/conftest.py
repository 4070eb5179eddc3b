"""The dev_min world in one consistent moto mock, and a Terraform runner that builds it.

`MotoTerraformRunner` stands where `TerraformCli` stands in production: `apply(core)` creates the
core resources, `apply(demo)` the demo ones (ECS cluster + services, RDS instance, SSM secrets,
a VPC without NAT, and the "Confluent cluster": a real Tansu broker with the registry's topics),
`destroy(demo)` deletes what it created. Preflight and teardown then query moto's real API.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from moto import mock_aws

from controller.devmin.aws import AwsClients, AwsInventory
from controller.devmin.checks import DEMO_SECRET_HANDLES
from controller.devmin.terraform import Stack, TerraformError
from controller.substrate.processes import StartedProcess, free_port, stop_pid
from controller.substrate.servers import start_tansu
from runtime.contracts.ids import new_platform_run_id
from runtime.contracts.registry import Registry, load_registry

HOST = "127.0.0.1"
SERVICE_HANDLES = ("SVC_IG", "SVC_RTDL_CORE_IEG", "SVC_DECISION_LANE_DF")


@dataclass
class MotoTerraformRunner:
    """A TerraformRunner whose stacks are created and destroyed in moto (plus a local broker)."""

    registry: Registry
    clients: AwsClients
    workdir: Path
    applied: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    broker: StartedProcess | None = None
    _outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _services: list[str] = field(default_factory=list)
    _state: set[str] = field(default_factory=set)

    def c(self, service: str) -> Any:
        return self.clients.client(service)

    # --- TerraformRunner ----------------------------------------------------------------
    def apply(self, stack: Stack) -> dict[str, Any]:
        assert stack.backend is not None and stack.backend.bucket == self.registry.text("TF_STATE_BUCKET")
        outputs = self._apply_core() if stack.name == "core" else self._apply_demo()
        self.applied.append(stack.name)
        self._outputs[stack.name] = outputs
        return outputs

    def destroy(self, stack: Stack) -> None:
        assert stack.name == "demo", "dev_min_down must only ever destroy the demo stack"
        r = self.registry
        cluster = r.text("ECS_CLUSTER_NAME")
        # Like Terraform, destroy only what the state holds; an empty state is a no-op.
        for name in list(self._services):
            self.c("ecs").update_service(cluster=cluster, service=name, desiredCount=0)
            self.c("ecs").delete_service(cluster=cluster, service=name)
            self._services.remove(name)
        if "ecs_cluster" in self._state:
            # AWS refuses to delete a cluster that still has services (moto does not enforce it);
            # Terraform then fails the destroy, as it would in the cloud.
            left = self.c("ecs").list_services(cluster=cluster)["serviceArns"]
            active = [s for s in self.c("ecs").describe_services(cluster=cluster, services=left)["services"]
                      if s["status"] != "INACTIVE"] if left else []
            if active:
                raise TerraformError("Error: deleting ECS Cluster: ClusterContainsServicesException", code="TERRAFORM_DESTROY_FAILED")
            self.c("ecs").delete_cluster(cluster=cluster)
            self._state.discard("ecs_cluster")
        if "rds" in self._state:
            self.c("rds").delete_db_instance(DBInstanceIdentifier=r.text("RDS_INSTANCE_ID"), SkipFinalSnapshot=True)
            self._state.discard("rds")
        if "ssm" in self._state:
            self.c("ssm").delete_parameters(Names=[r.text(k) for k in (*DEMO_SECRET_HANDLES, "SSM_IG_API_KEY_PATH")])
            self._state.discard("ssm")
        self.close()
        self.destroyed.append("demo")

    def output(self, stack: Stack) -> dict[str, Any]:
        return dict(self._outputs.get(stack.name, {}))

    # --- the stacks ---------------------------------------------------------------------
    def _apply_core(self) -> dict[str, Any]:
        r = self.registry
        if "core" in self._outputs:  # like terraform: applying an applied stack changes nothing
            return dict(self._outputs["core"])
        s3 = self.c("s3")
        names = sorted({r.text(k) for k in ("S3_ORACLE_BUCKET", "S3_ARCHIVE_BUCKET", "S3_QUARANTINE_BUCKET",
                                              "S3_EVIDENCE_BUCKET", "TF_STATE_BUCKET")})
        for name in names:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": r.text("AWS_REGION")})
        account = self.c("sts").get_caller_identity()["Account"]
        self.c("budgets").create_budget(AccountId=account, Budget={
            "BudgetName": r.text("AWS_BUDGET_NAME"), "BudgetLimit": {"Amount": "30", "Unit": "GBP"},
            "TimeUnit": "MONTHLY", "BudgetType": "COST"})
        return {"buckets": names}

    def _apply_demo(self) -> dict[str, Any]:
        r = self.registry
        self.broker = start_tansu(HOST, free_port(), self.workdir / f"tansu-{uuid.uuid4().hex[:6]}")
        bootstrap = f"{HOST}:{self.broker.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in r.topics()])
        for f in futures.values():
            f.result(30)
        ssm = self.c("ssm")
        values = {"SSM_CONFLUENT_BOOTSTRAP_PATH": bootstrap, "SSM_CONFLUENT_API_KEY_PATH": "key-" + uuid.uuid4().hex[:8],
                  "SSM_CONFLUENT_API_SECRET_PATH": uuid.uuid4().hex, "SSM_DB_USER_PATH": "fp",
                  "SSM_DB_PASSWORD_PATH": uuid.uuid4().hex, "SSM_DB_RUNTIME_PASSWORD_PATH": uuid.uuid4().hex,
                  "SSM_DB_DSN_PATH": "postgresql://fp_runtime@db:5432/fp",
                  "SSM_IG_API_KEY_PATH": uuid.uuid4().hex}
        for key, value in values.items():
            ssm.put_parameter(Name=r.text(key), Value=value, Type="SecureString", Overwrite=True)
        self._state.add("ssm")
        ec2 = self.c("ec2")
        vpc = ec2.create_vpc(CidrBlock=r.text("VPC_CIDR"))["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
        cluster = r.text("ECS_CLUSTER_NAME")
        ecs = self.c("ecs")
        ecs.create_cluster(clusterName=cluster)
        self._state.add("ecs_cluster")
        ecs.register_task_definition(family=r.text("TD_SR"), containerDefinitions=[
            {"name": "platform", "image": "platform:git-0", "memory": 512}])
        for handle in SERVICE_HANDLES:
            ecs.create_service(cluster=cluster, serviceName=r.text(handle), taskDefinition=r.text("TD_SR"), desiredCount=1)
            self._services.append(r.text(handle))
        self.c("rds").create_db_instance(DBInstanceIdentifier=r.text("RDS_INSTANCE_ID"), DBInstanceClass=r.text("RDS_INSTANCE_CLASS"),
                                         Engine="postgres", AllocatedStorage=20, MasterUsername="fp", MasterUserPassword=uuid.uuid4().hex)
        self._state.add("rds")
        return {"vpc_id": vpc, "subnet_id": subnet, "ecs_cluster": cluster}

    def close(self) -> None:
        if self.broker is not None:
            stop_pid(self.broker.pid, self.broker.argv)
            self.broker = None


@dataclass
class DevMinWorld:
    """Everything a dev_min test needs, inside one moto mock."""

    registry: Registry
    clients: AwsClients
    aws: AwsInventory
    runner: MotoTerraformRunner
    run_id: str

    def plant_run_evidence(self) -> None:
        """Put one object in the run's evidence root, as earlier phases would have."""
        root = self.registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=self.run_id)
        self.clients.client("s3").put_object(Bucket=self.registry.text("S3_EVIDENCE_BUCKET"), Key=f"{root}run.json", Body=b"{}")


@pytest.fixture
def dev_min_world(tmp_path: Path) -> Iterator[DevMinWorld]:
    """An empty dev_min account (moto) with a runner that can build core and demo in it."""
    registry = load_registry("dev_min")
    with mock_aws():
        clients = AwsClients(region=registry.text("AWS_REGION"))
        assert boto3.client("sts", region_name="eu-west-2").get_caller_identity()["Account"]
        runner = MotoTerraformRunner(registry, clients, tmp_path)
        try:
            yield DevMinWorld(registry, clients, AwsInventory(clients), runner, new_platform_run_id())
        finally:
            runner.close()
