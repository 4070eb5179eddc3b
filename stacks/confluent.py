"""Typed declarations of the Confluent Cloud resources the demo stack needs.

There is no prebuilt cdktn binding for the `confluentinc/confluent` provider, so each resource is
a plain `TerraformResource` whose attributes are set here, behind keyword-only functions with
types. Provider credentials come from the environment (CONFLUENT_CLOUD_API_KEY/SECRET), never
from the synthesised JSON; the cluster API key's secret only ever exists as a Terraform reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformProvider, TerraformResource
from constructs import Construct

PROVIDER_SOURCE = "confluentinc/confluent"
#: Major-version constraint: the exact build is pinned by .terraform.lock.hcl at the first `terraform init`.
PROVIDER_VERSION = "~> 2.0"


def provider(scope: Construct) -> TerraformProvider:
    """The Confluent provider block (credentials from CONFLUENT_CLOUD_API_KEY/SECRET in the environment)."""
    return TerraformProvider(scope, "confluent", terraform_resource_type="confluent",
                             terraform_provider_source=PROVIDER_SOURCE,
                             terraform_generator_metadata={"provider_name": "confluent", "provider_version": PROVIDER_VERSION})


def _resource(scope: Construct, cid: str, kind: str, attributes: dict[str, object], prov: TerraformProvider,
              depends_on: list[TerraformResource] | None = None) -> TerraformResource:
    resource = TerraformResource(scope, cid, terraform_resource_type=kind, provider=prov, depends_on=depends_on)
    for name, value in attributes.items():
        resource.add_override(name, value)
    return resource


def ref(resource: TerraformResource, attribute: str) -> str:
    """A `${type.id.attribute}` reference to another Confluent resource."""
    return f"${{{resource.terraform_resource_type}.{resource.friendly_unique_id}.{attribute}}}"


@dataclass(frozen=True)
class Cluster:
    """The environment + Basic cluster pair and what topics need to address it."""

    environment: TerraformResource
    cluster: TerraformResource

    @property
    def id(self) -> str:
        return ref(self.cluster, "id")

    @property
    def rest_endpoint(self) -> str:
        return ref(self.cluster, "rest_endpoint")

    @property
    def bootstrap(self) -> str:
        return ref(self.cluster, "bootstrap_endpoint")


def environment(scope: Construct, prov: TerraformProvider, *, display_name: str) -> TerraformResource:
    """A Confluent environment (the demo's namespace; destroyed with it)."""
    return _resource(scope, "confluent_environment", "confluent_environment", {"display_name": display_name}, prov)


def basic_cluster(scope: Construct, prov: TerraformProvider, *, env: TerraformResource, display_name: str, cloud: str,
                  region: str, cluster_type: str) -> Cluster:
    """A single-zone cluster of `cluster_type` (BASIC for dev_min; anything else is refused)."""
    if cluster_type.upper() != "BASIC":
        raise ValueError(f"CONFLUENT_CLUSTER_TYPE {cluster_type!r}: only BASIC fits the dev_min budget")
    cluster = _resource(scope, "confluent_cluster", "confluent_kafka_cluster", {
        "display_name": display_name, "availability": "SINGLE_ZONE", "cloud": cloud, "region": region,
        "basic": [{}], "environment": [{"id": ref(env, "id")}],
    }, prov)
    return Cluster(environment=env, cluster=cluster)


def service_account(scope: Construct, prov: TerraformProvider, *, cid: str, display_name: str) -> TerraformResource:
    """A Confluent identity: the topic manager (cluster admin) or the runtime (ACL-scoped)."""
    return _resource(scope, cid, "confluent_service_account",
                     {"display_name": display_name, "description": "fraud-platform demo-scoped identity"}, prov)


def cluster_api_key(scope: Construct, prov: TerraformProvider, *, cid: str, display_name: str, owner: TerraformResource,
                    cluster: Cluster) -> TerraformResource:
    """A Kafka API key owned by `owner`, valid only on `cluster`."""
    return _resource(scope, cid, "confluent_api_key", {
        "display_name": display_name,
        "owner": [{"id": ref(owner, "id"), "api_version": ref(owner, "api_version"), "kind": ref(owner, "kind")}],
        "managed_resource": [{"id": cluster.id, "api_version": ref(cluster.cluster, "api_version"),
                              "kind": ref(cluster.cluster, "kind"), "environment": [{"id": ref(cluster.environment, "id")}]}],
    }, prov)


def _credentials(key: TerraformResource) -> list[dict[str, str]]:
    return [{"key": ref(key, "id"), "secret": ref(key, "secret")}]


def topic(scope: Construct, prov: TerraformProvider, *, cid: str, cluster: Cluster, name: str, partitions: int,
          retention_hours: int, admin_key: TerraformResource) -> TerraformResource:
    """A topic with its partition count and retention (ms), managed with the admin key."""
    if partitions < 1:
        raise ValueError(f"topic {name}: partitions must be >= 1")
    return _resource(scope, cid, "confluent_kafka_topic", {
        "topic_name": name, "partitions_count": partitions,
        "config": {"retention.ms": str(retention_hours * 3600 * 1000), "cleanup.policy": "delete"},
        "kafka_cluster": [{"id": cluster.id}], "rest_endpoint": cluster.rest_endpoint, "credentials": _credentials(admin_key),
    }, prov)


def acl(scope: Construct, prov: TerraformProvider, *, cid: str, cluster: Cluster, principal: TerraformResource,
        resource_type: str, resource_name: str, pattern_type: str, operation: str, admin_key: TerraformResource) -> TerraformResource:
    """One ALLOW ACL for the service account on a topic or consumer-group pattern."""
    return _resource(scope, cid, "confluent_kafka_acl", {
        "kafka_cluster": [{"id": cluster.id}], "resource_type": resource_type, "resource_name": resource_name,
        "pattern_type": pattern_type, "principal": f"User:{ref(principal, 'id')}", "host": "*", "operation": operation,
        "permission": "ALLOW", "rest_endpoint": cluster.rest_endpoint, "credentials": _credentials(admin_key),
    }, prov)


def role_binding(scope: Construct, prov: TerraformProvider, *, cid: str, principal: TerraformResource, role: str,
                 cluster: Cluster) -> TerraformResource:
    """An RBAC role of `principal` on the cluster (CloudClusterAdmin for the topic-managing key)."""
    return _resource(scope, cid, "confluent_role_binding", {
        "principal": f"User:{ref(principal, 'id')}", "role_name": role, "crn_pattern": ref(cluster.cluster, "rbac_crn"),
    }, prov)
