"""A mocked dev_min account for ECS tests (moto in-process: ECS and EC2 have no server here):
the demo VPC, subnets and security groups by their registry names, the cluster, a task definition
per job and per daemon of the component map, and a service per daemon at desired count 0, as the
demo stack makes them. `planned_daemons` adds stand-ins for the daemons later planes will add, so
packs of several services can be drilled before their components exist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.ecs.models import ecs_backends

from controller.compute.ecs_backend import EcsBackend
from controller.devmin.aws import AwsClients
from runtime.components import COMPONENTS, Component, of_kind
from runtime.contracts.registry import Registry

ACCOUNT = "123456789012"


@dataclass
class Env:
    """The mocked dev_min account: registry, boto3 clients, backend, and the ids moto gave out."""

    registry: Registry
    ecs: Any
    backend: EcsBackend
    subnet_ids: list[str]
    sg_id: str
    progress: list[str]

    @property
    def cluster(self) -> str:
        return self.registry.text("ECS_CLUSTER_NAME")

    def moto_task(self, arn: str) -> Any:
        region = self.registry.text("AWS_REGION")
        return ecs_backends[ACCOUNT][region].tasks[self.cluster][arn]

    def moto_service(self, name: str) -> Any:
        region = self.registry.text("AWS_REGION")
        return ecs_backends[ACCOUNT][region].services[f"{self.cluster}:{name}"]

    def schedule(self, service: str) -> str:
        """What ECS's scheduler does for a scaled-up service: start a task of its current revision."""
        current = self.ecs.describe_services(cluster=self.cluster, services=[service])["services"][0]
        return str(self.ecs.run_task(
            cluster=self.cluster, taskDefinition=current["taskDefinition"], launchType="FARGATE", group=f"service:{service}",
            networkConfiguration={"awsvpcConfiguration": {"subnets": self.subnet_ids, "securityGroups": [self.sg_id]}},
        )["tasks"][0]["taskArn"])


#: Daemons of later planes (rtdl_core, case_labels) -> (service, role handle keys).
PLANNED_DAEMONS: dict[str, tuple[str, str]] = {
    "archive_writer": ("SVC_RTDL_CORE_ARCHIVE_WRITER", "ROLE_RTDL_CORE"), "ieg": ("SVC_RTDL_CORE_IEG", "ROLE_RTDL_CORE"),
    "ofp": ("SVC_RTDL_CORE_OFP", "ROLE_RTDL_CORE"), "csfb": ("SVC_RTDL_CORE_CSFB", "ROLE_RTDL_CORE"),
    "case_trigger": ("SVC_CASE_LABELS_CASE_TRIGGER", "ROLE_CASE_LABELS"), "cm": ("SVC_CM", "ROLE_CASE_LABELS"),
    "ls": ("SVC_LS", "ROLE_CASE_LABELS"),
}


def planned_daemon(name: str) -> Component:
    """A stand-in map entry for a daemon a later plane adds (its handles are in the registry already)."""
    service, role = PLANNED_DAEMONS[name]
    return Component(name=name, kind="daemon", app="runtime.ig.cli:app", argv=("ig", "serve"), ecs_key=service, role_key=role)


def _container(registry: Registry, component: str, family: str) -> dict[str, Any]:
    """A container as the demo stack writes it: env values, secrets only as SSM references."""
    region = registry.text("AWS_REGION")
    ssm = f"arn:aws:ssm:{region}:{ACCOUNT}:parameter"
    return {
        "name": component, "image": "repo:git-0123", "essential": True, "memory": 512,  # memory: moto needs it
        "command": list(COMPONENTS[component].argv),
        "environment": [{"name": registry.text("ENVVAR_PLATFORM_ENV"), "value": "dev_min"}],
        "secrets": [{"name": registry.text("ENVVAR_DB_DSN"), "valueFrom": f"{ssm}{registry.text('SSM_DB_DSN_PATH')}"},
                    {"name": registry.text("ENVVAR_IG_API_KEY"), "valueFrom": f"{ssm}{registry.text('SSM_IG_API_KEY_PATH')}"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": f"/logs/{family}", "awslogs-region": region, "awslogs-stream-prefix": component}},
    }


def register_task_definition(ecs: Any, registry: Registry, component: str, family: str, **extra: Any) -> str:
    answer = ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/exec", taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/task",
        containerDefinitions=[{**_container(registry, component, family), **extra}], tags=[{"key": "project", "value": "fp"}])
    return str(answer["taskDefinition"]["taskDefinitionArn"])


@contextmanager
def ecs_account(registry: Registry) -> Iterator[Env]:
    """Build the account inside an active `mock_aws()`; yields the Env."""
    region = registry.text("AWS_REGION")
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": registry.text("VPC_ID")}])
    subnet_ids = []
    for i, name in enumerate(registry.names("SUBNET_IDS")):
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sid], Tags=[{"Key": "Name", "Value": name}])
        subnet_ids.append(sid)
    sg_id = ""
    for name in registry.names("SECURITY_GROUP_IDS"):
        sg_id = ec2.create_security_group(GroupName=name, Description="app", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs", region_name=region)
    cluster = registry.text("ECS_CLUSTER_NAME")
    ecs.create_cluster(clusterName=cluster)
    for job in of_kind("job"):
        register_task_definition(ecs, registry, job.name, registry.text(str(job.ecs_key)))
    for daemon in of_kind("daemon"):
        name = registry.text(str(daemon.ecs_key))
        arn = register_task_definition(ecs, registry, daemon.name, name)
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=arn, desiredCount=0, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": subnet_ids, "securityGroups": [sg_id]}})
    progress: list[str] = []
    backend = EcsBackend(registry, AwsClients(region=region), poll_seconds=0.0)
    yield Env(registry, ecs, backend, subnet_ids, sg_id, progress)


