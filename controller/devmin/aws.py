"""The AWS adapter of dev_min: what exists in the account, as plain data.

Preflight (P0) and teardown (P12) decide from these answers; only this module calls boto3, and a
failing AWS call becomes an AwsCallFailed naming the call (a check that cannot be made fails
closed, it never passes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from runtime.errors import PlatformError

T = TypeVar("T")

#: NAT gateway states that still exist (and bill); `deleted` ones linger in the API for a while.
_NAT_LIVE_STATES = ("pending", "available", "deleting", "failed")


class AwsCallFailed(PlatformError):
    """An AWS API call the check depends on failed, so the check cannot pass."""

    code = "AWS_CALL_FAILED"
    next_step = "check AWS credentials (AWS_PROFILE / role) and the region, then rerun"


@dataclass
class AwsClients:
    """boto3 clients of one region, created on first use (endpoint None = the real AWS endpoints)."""

    region: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """The boto3 client for `service`, created once."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)
        return self._clients[service]


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (ClientError, BotoCoreError) as e:
        raise AwsCallFailed(f"{what} failed: {e}") from e


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class AwsInventory:
    """Questions about the account that preflight and teardown ask, answered through boto3."""

    def __init__(self, clients: AwsClients):
        self.clients = clients

    # --- S3 -------------------------------------------------------------------------------
    def write_probe(self, bucket: str, key: str, body: bytes) -> str | None:
        """Write then read back a marker object; None when it worked, else what went wrong."""
        s3 = self.clients.client("s3")
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
            if s3.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
                return f"s3://{bucket}/{key} read back different bytes"
        except ClientError as e:
            return f"s3://{bucket}/{key}: {_error_code(e) or e}"
        except BotoCoreError as e:
            return f"s3://{bucket}/{key}: {e}"
        return None

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        """Write one JSON object (overwriting); AwsCallFailed when S3 refuses."""
        s3 = self.clients.client("s3")
        put = partial(s3.put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        _call(f"s3:PutObject s3://{bucket}/{key}", put)

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """The bytes of one object, or None when it (or its bucket) does not exist."""
        s3 = self.clients.client("s3")
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as e:
            if _error_code(e) in ("NoSuchKey", "NoSuchBucket", "404"):
                return None
            raise AwsCallFailed(f"s3:GetObject s3://{bucket}/{key} failed: {e}") from e

    def readable_objects(self, bucket: str, prefix: str) -> tuple[int, str | None]:
        """How many objects are under `prefix` and whether the first one can be read (None = yes)."""
        s3 = self.clients.client("s3")
        try:
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
            contents = listing.get("Contents", [])
            if not contents:
                return 0, f"no objects under s3://{bucket}/{prefix}"
            s3.get_object(Bucket=bucket, Key=contents[0]["Key"])["Body"].read()
            return int(listing.get("KeyCount", len(contents))), None
        except ClientError as e:
            return 0, f"s3://{bucket}/{prefix}: {_error_code(e) or e}"

    # --- SSM ------------------------------------------------------------------------------
    def missing_parameters(self, names: list[str]) -> list[str]:
        """The SSM parameter names among `names` that do not exist (values are never read)."""
        ssm = self.clients.client("ssm")
        missing: list[str] = []
        for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
            batch = names[start:start + 10]
            answer = _call("ssm:GetParameters", partial(ssm.get_parameters, Names=batch, WithDecryption=False))
            missing.extend(answer.get("InvalidParameters", []))
        return sorted(set(missing))

    def parameter_value(self, name: str) -> str | None:
        """The decrypted value of one SSM parameter, or None when it does not exist."""
        ssm = self.clients.client("ssm")
        try:
            return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
        except ClientError as e:
            if _error_code(e) == "ParameterNotFound":
                return None
            raise AwsCallFailed(f"ssm:GetParameter {name} failed: {e}") from e

    # --- EC2 / ELB ------------------------------------------------------------------------
    def nat_gateways(self) -> list[str]:
        """Ids of every NAT gateway in the region that still exists."""
        ec2 = self.clients.client("ec2")
        pages = _call("ec2:DescribeNatGateways", lambda: list(ec2.get_paginator("describe_nat_gateways").paginate()))
        return sorted(g["NatGatewayId"] for page in pages for g in page.get("NatGateways", []) if g.get("State") in _NAT_LIVE_STATES)

    def load_balancers(self) -> list[str]:
        """Names of every load balancer in the region: ALB/NLB (elbv2) and classic (elb)."""
        elbv2 = self.clients.client("elbv2")
        elb = self.clients.client("elb")
        v2 = _call("elbv2:DescribeLoadBalancers", lambda: list(elbv2.get_paginator("describe_load_balancers").paginate()))
        classic = _call("elb:DescribeLoadBalancers", lambda: list(elb.get_paginator("describe_load_balancers").paginate()))
        names = [f"elbv2:{lb['LoadBalancerName']}" for page in v2 for lb in page.get("LoadBalancers", [])]
        names += [f"elb:{lb['LoadBalancerName']}" for page in classic for lb in page.get("LoadBalancerDescriptions", [])]
        return sorted(names)

    # --- Budgets --------------------------------------------------------------------------
    def budget_exists(self, name: str) -> bool:
        """True when the account has a budget called `name`."""
        account = _call("sts:GetCallerIdentity", lambda: self.clients.client("sts").get_caller_identity()["Account"])
        budgets = self.clients.client("budgets")
        try:
            budgets.describe_budget(AccountId=account, BudgetName=name)
            return True
        except ClientError as e:
            if _error_code(e) == "NotFoundException":
                return False
            raise AwsCallFailed(f"budgets:DescribeBudget {name} failed: {e}") from e

    # --- ECS ------------------------------------------------------------------------------
    def ecs_cluster_active(self, cluster: str) -> bool:
        """True when the ECS cluster exists and is ACTIVE."""
        ecs = self.clients.client("ecs")
        answer = _call("ecs:DescribeClusters", lambda: ecs.describe_clusters(clusters=[cluster]))
        return any(c.get("status") == "ACTIVE" for c in answer.get("clusters", []))

    def ecs_services(self, cluster: str) -> list[str]:
        """Names of the services still defined in `cluster` (asked even when the cluster is INACTIVE)."""
        ecs = self.clients.client("ecs")
        arns = self._ecs_list(cluster, "list_services", "serviceArns")
        names: list[str] = []
        for start in range(0, len(arns), 10):  # DescribeServices takes at most 10 services
            batch = arns[start:start + 10]
            answer = _call("ecs:DescribeServices", partial(ecs.describe_services, cluster=cluster, services=batch))
            names += [s["serviceName"] for s in answer.get("services", []) if s.get("status") != "INACTIVE"]
        return sorted(names)

    def ecs_tasks(self, cluster: str) -> list[str]:
        """ARNs of tasks still running or pending in `cluster`."""
        return sorted(self._ecs_list(cluster, "list_tasks", "taskArns"))

    def _ecs_list(self, cluster: str, operation: str, field: str) -> list[str]:
        ecs = self.clients.client("ecs")
        try:
            return [a for page in ecs.get_paginator(operation).paginate(cluster=cluster) for a in page.get(field, [])]
        except ClientError as e:
            if _error_code(e) == "ClusterNotFoundException":
                return []
            raise AwsCallFailed(f"ecs:{operation} {cluster} failed: {e}") from e
        except BotoCoreError as e:
            raise AwsCallFailed(f"ecs:{operation} {cluster} failed: {e}") from e

    # --- RDS ------------------------------------------------------------------------------
    def db_instance_status(self, instance_id: str) -> str | None:
        """The status of the RDS instance, or None when it does not exist."""
        rds = self.clients.client("rds")
        try:
            answer = rds.describe_db_instances(DBInstanceIdentifier=instance_id)
        except ClientError as e:
            if _error_code(e) == "DBInstanceNotFound":
                return None
            raise AwsCallFailed(f"rds:DescribeDBInstances {instance_id} failed: {e}") from e
        instances = answer.get("DBInstances", [])
        return str(instances[0].get("DBInstanceStatus", "unknown")) if instances else None
