"""DemoStack: destroy-by-default resources, every name and number from `DemoConfig`."""

from __future__ import annotations

import json
from typing import Any

from cdktn import (
    DataTerraformRemoteStateS3,
    Fn,
    S3Backend,
    TerraformOutput,
    TerraformProvider,
    TerraformResource,
    TerraformResourceLifecycle,
    TerraformStack,
)
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.data_aws_availability_zones import DataAwsAvailabilityZones
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.db_instance import DbInstance
from cdktn_provider_aws.db_subnet_group import DbSubnetGroup
from cdktn_provider_aws.default_security_group import DefaultSecurityGroup
from cdktn_provider_aws.ecs_cluster import EcsCluster, EcsClusterSetting
from cdktn_provider_aws.ecs_service import EcsService, EcsServiceNetworkConfiguration, EcsServiceServiceRegistries
from cdktn_provider_aws.ecs_task_definition import EcsTaskDefinition, EcsTaskDefinitionVolume
from cdktn_provider_aws.internet_gateway import InternetGateway
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from cdktn_provider_aws.route_table import RouteTable, RouteTableRoute
from cdktn_provider_aws.route_table_association import RouteTableAssociation
from cdktn_provider_aws.security_group import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress
from cdktn_provider_aws.service_discovery_private_dns_namespace import ServiceDiscoveryPrivateDnsNamespace
from cdktn_provider_aws.service_discovery_service import (
    ServiceDiscoveryService,
    ServiceDiscoveryServiceDnsConfig,
    ServiceDiscoveryServiceDnsConfigDnsRecords,
)
from cdktn_provider_aws.ssm_parameter import SsmParameter
from cdktn_provider_aws.subnet import Subnet
from cdktn_provider_aws.vpc import Vpc
from constructs import Construct

from stacks import confluent
from stacks.common import construct_id
from stacks.config import DemoConfig, TaskSpec

#: Services are created idle: P2 scales each to its run-scoped revision (controller.compute.ecs_backend),
#: so nothing runs (or bills) between `apply` and the run, and no task ever starts without a run scope.
SERVICE_DESIRED_COUNT_AT_APPLY = 0
#: What the controller owns on a service at run time; a later `terraform apply` must not revert it.
SERVICE_RUNTIME_OWNED = ("task_definition", "desired_count")
#: Writable scratch (Fargate ephemeral storage) on an otherwise read-only root filesystem: the
#: oracle seed job's engine run and DuckDB's spill go to /tmp, tool caches to the user's home.
SCRATCH_MOUNTS = {"scratch": "/tmp", "home": "/home/fp"}
#: Where the DB master username comes from: not a secret, not a resource name.
DB_MASTER_USER = "fp_admin"
#: Postgres listens here inside the VPC.
DB_PORT = 5432
#: hashicorp/random generates the DB password and the IG API key inside Terraform (never in the JSON).
RANDOM_VERSION = "~> 3.6"


class DemoStack(TerraformStack):
    """Confluent + network + ECS + RDS for one demo window; core is read via remote state only."""

    def __init__(self, scope: Construct, stack_id: str, *, config: DemoConfig):
        super().__init__(scope, stack_id)
        c = config
        self.config = c
        tags = c.tags.as_dict()
        AwsProvider(self, "aws", region=c.region, default_tags=[AwsProviderDefaultTags(tags=tags)])
        S3Backend(self, bucket=c.state.bucket, key=c.state.key, region=c.state.region,
                  dynamodb_table=c.state.lock_table, encrypt=True)
        self.core = DataTerraformRemoteStateS3(self, "core", bucket=c.state.bucket, key=c.core_state_key, region=c.state.region)
        self.account_id = DataAwsCallerIdentity(self, "current").account_id
        self.random = TerraformProvider(self, "random", terraform_resource_type="random", terraform_provider_source="hashicorp/random",
                                        terraform_generator_metadata={"provider_name": "random", "provider_version": RANDOM_VERSION})

        # ---- Confluent Cloud ---------------------------------------------------------------
        prov = confluent.provider(self)
        env = confluent.environment(self, prov, display_name=c.confluent_env)
        cluster = confluent.basic_cluster(self, prov, env=env, display_name=c.confluent_cluster, cloud=c.confluent_cloud,
                                          region=c.confluent_region, cluster_type=c.confluent_cluster_type)
        manager = confluent.service_account(self, prov, display_name=c.confluent_manager_account, cid="confluent_manager_account")
        admin_binding = confluent.role_binding(self, prov, cid="confluent_manager_admin", principal=manager,
                                               role="CloudClusterAdmin", cluster=cluster)
        admin_key = confluent.cluster_api_key(self, prov, cid="confluent_manager_key", display_name=c.confluent_manager_account,
                                              owner=manager, cluster=cluster)
        admin_key.add_override("depends_on", [f"{admin_binding.terraform_resource_type}.{admin_binding.friendly_unique_id}"])
        runtime = confluent.service_account(self, prov, display_name=c.confluent_service_account, cid="confluent_runtime_account")
        runtime_key = confluent.cluster_api_key(self, prov, cid="confluent_runtime_key", display_name=c.confluent_service_account,
                                                owner=runtime, cluster=cluster)
        for t in c.topics:
            tid = construct_id(t.key)
            confluent.topic(self, prov, cid=f"topic_{tid}", cluster=cluster, name=t.name, partitions=t.partitions,
                            retention_hours=t.retention_hours, admin_key=admin_key)
            for op in ("READ", "WRITE"):
                confluent.acl(self, prov, cid=f"acl_{tid}_{op.lower()}", cluster=cluster, principal=runtime,
                              resource_type="TOPIC", resource_name=t.name, pattern_type="LITERAL", operation=op,
                              admin_key=admin_key)
        confluent.acl(self, prov, cid="acl_consumer_groups", cluster=cluster, principal=runtime, resource_type="GROUP",
                      resource_name=c.consumer_group_prefix, pattern_type="PREFIXED", operation="READ", admin_key=admin_key)

        ssm = c.ssm_paths
        self._param("SSM_CONFLUENT_BOOTSTRAP_PATH", ssm, cluster.bootstrap)
        self._param("SSM_CONFLUENT_API_KEY_PATH", ssm, confluent.ref(runtime_key, "id"))
        self._param("SSM_CONFLUENT_API_SECRET_PATH", ssm, confluent.ref(runtime_key, "secret"))

        # ---- network: public subnets only, no NAT, no load balancer ---------------------
        zones = DataAwsAvailabilityZones(self, "zones", state="available")
        vpc = Vpc(self, "vpc", cidr_block=c.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                  tags={**tags, "Name": c.vpc_name})
        DefaultSecurityGroup(self, "vpc_default_sg_closed", vpc_id=vpc.id, ingress=[], egress=[], tags=tags)
        igw = InternetGateway(self, "igw", vpc_id=vpc.id, tags=tags)
        table = RouteTable(self, "public_routes", vpc_id=vpc.id, tags=tags,
                           route=[RouteTableRoute(cidr_block="0.0.0.0/0", gateway_id=igw.id)])
        subnets = []
        for i, name in enumerate(c.subnet_names):
            subnet = Subnet(self, f"subnet_public_{i}", vpc_id=vpc.id, cidr_block=Fn.cidrsubnet(c.vpc_cidr, 8, i),
                            availability_zone=Fn.element(zones.names, i), map_public_ip_on_launch=False,
                            tags={**tags, "Name": name})
            RouteTableAssociation(self, f"subnet_public_{i}_routes", subnet_id=subnet.id, route_table_id=table.id)
            subnets.append(subnet)
        app_sg = SecurityGroup(self, "sg_app", name=c.app_sg, vpc_id=vpc.id, tags=tags,
                               description="runtime tasks: IG port inside the VPC only; egress to AWS APIs and Confluent",
                               ingress=[SecurityGroupIngress(description="IG from tasks in the VPC", protocol="tcp", from_port=c.ig_port,
                                                              to_port=c.ig_port, cidr_blocks=[c.vpc_cidr])],
                               egress=[SecurityGroupEgress(description="HTTPS to AWS APIs and Confluent (no NAT: public egress)",
                                                           protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"]),
                                       SecurityGroupEgress(description="Confluent Kafka", protocol="tcp", from_port=9092,
                                                           to_port=9092, cidr_blocks=["0.0.0.0/0"]),
                                       SecurityGroupEgress(description="Postgres and IG inside the VPC", protocol="tcp",
                                                           from_port=0, to_port=65535, cidr_blocks=[c.vpc_cidr])])
        db_sg = SecurityGroup(self, "sg_db", name=c.db_sg, vpc_id=vpc.id, tags=tags, egress=[],
                              description="runtime DB: Postgres from the app security group only",
                              ingress=[SecurityGroupIngress(description="Postgres from runtime tasks", protocol="tcp", from_port=DB_PORT,
                                                             to_port=DB_PORT, security_groups=[app_sg.id])])

        # ---- runtime DB (demo-scoped) -----------------------------------------------------
        password = TerraformResource(self, "db_password", terraform_resource_type="random_password",
                                     provider=self.random)
        password.add_override("length", 32)
        password.add_override("special", False)
        password_ref = "${random_password.db_password.result}"
        subnet_group = DbSubnetGroup(self, "db_subnets", name=c.db_subnet_group, subnet_ids=[s.id for s in subnets], tags=tags)
        db = DbInstance(self, "db", identifier=c.db_instance_id, engine=c.db_engine, engine_version=c.db_engine_version,
                        instance_class=c.db_instance_class, allocated_storage=c.db_storage_gb, storage_type="gp3",
                        db_name=c.db_name, username=DB_MASTER_USER, password=password_ref,
                        db_subnet_group_name=subnet_group.name, vpc_security_group_ids=[db_sg.id], multi_az=False,
                        publicly_accessible=False, skip_final_snapshot=True, deletion_protection=False,
                        storage_encrypted=True, backup_retention_period=1, delete_automated_backups=True, auto_minor_version_upgrade=True,
                        copy_tags_to_snapshot=True, iam_database_authentication_enabled=True, apply_immediately=True,
                        tags=tags)
        # The master user owns the tables and runs the migrations job only; every runtime task
        # connects as the least-privilege runtime role, which that job creates with this password.
        runtime_password = TerraformResource(self, "db_runtime_password", terraform_resource_type="random_password",
                                             provider=self.random)
        runtime_password.add_override("length", 32)
        runtime_password.add_override("special", False)
        runtime_password_ref = "${random_password.db_runtime_password.result}"
        self._param("SSM_DB_USER_PATH", ssm, DB_MASTER_USER)
        self._param("SSM_DB_PASSWORD_PATH", ssm, password_ref)
        self._param("SSM_DB_RUNTIME_PASSWORD_PATH", ssm, runtime_password_ref)
        self._param("SSM_DB_DSN_PATH", ssm, f"postgresql://{c.db_runtime_role}:{runtime_password_ref}@{db.address}:{DB_PORT}"
                                            f"/{c.db_name}?sslmode=require")
        ig_key = TerraformResource(self, "ig_api_key", terraform_resource_type="random_password", provider=self.random)
        ig_key.add_override("length", 40)
        ig_key.add_override("special", False)
        self._param("SSM_IG_API_KEY_PATH", ssm, "${random_password.ig_api_key.result}")

        # ---- ECS: one image, one task definition per entrypoint, services for daemons ------
        ecs = EcsCluster(self, "ecs_cluster", name=c.ecs_cluster, tags=tags,
                         setting=[EcsClusterSetting(name="containerInsights", value="disabled")])
        namespace = ServiceDiscoveryPrivateDnsNamespace(self, "namespace", name=c.namespace, vpc=vpc.id, tags=tags,
                                                        description="private names of demo services (IG_BASE_URL)")
        ig_discovery = ServiceDiscoveryService(self, "ig_discovery", name=c.ig_service_host, tags=tags, force_destroy=True,
                                               dns_config=ServiceDiscoveryServiceDnsConfig(
                                                   namespace_id=namespace.id, routing_policy="MULTIVALUE",
                                                   dns_records=[ServiceDiscoveryServiceDnsConfigDnsRecords(ttl=10, type="A")]),
                                               health_check_custom_config={"failure_threshold": 1})
        image = f"{self.core.get_string('ecr_repository_url')}:{c.image_tag}"
        execution_arn = self.core.get_string("role_ecs_task_execution_arn")
        for task in c.tasks:
            tid = construct_id(task.key)
            CloudwatchLogGroup(self, f"logs_{tid}", name=task.log_group, retention_in_days=c.log_retention_days, tags=tags)
            definition = EcsTaskDefinition(
                self, f"td_{tid}", family=task.family, requires_compatibilities=["FARGATE"], network_mode="awsvpc",
                cpu=str(c.task_cpu), memory=str(c.task_memory), execution_role_arn=execution_arn,
                task_role_arn=self.core.get_string(f"{construct_id(task.role_key)}_arn"),
                container_definitions=self._containers(task, image), tags=tags,
                volume=[EcsTaskDefinitionVolume(name=name) for name in SCRATCH_MOUNTS],
            )
            if not task.daemon:
                continue
            registries = EcsServiceServiceRegistries(registry_arn=ig_discovery.arn) if task.port else None
            EcsService(self, f"svc_{tid}", name=task.family, cluster=ecs.id, task_definition=definition.arn,
                       desired_count=SERVICE_DESIRED_COUNT_AT_APPLY, launch_type="FARGATE", propagate_tags="SERVICE",
                       lifecycle=TerraformResourceLifecycle(ignore_changes=list(SERVICE_RUNTIME_OWNED)),
                       enable_ecs_managed_tags=True, wait_for_steady_state=False, tags=tags,
                       network_configuration=EcsServiceNetworkConfiguration(
                           subnets=[s.id for s in subnets], security_groups=[app_sg.id], assign_public_ip=True),
                       service_registries=registries)
        TerraformOutput(self, "rds_endpoint", value=db.address)
        TerraformOutput(self, "ecs_cluster_arn", value=ecs.arn)
        TerraformOutput(self, "vpc_id", value=vpc.id)

    def _param(self, key: str, ssm: dict[str, str], value: str) -> SsmParameter:
        """A demo-scoped SecureString at the registry path; destroyed with the demo (seed 004 P12.2)."""
        return SsmParameter(self, f"ssm_{construct_id(key)}", name=ssm[key], type="SecureString",
                            value=value, tags=self.config.tags.as_dict())

    def _containers(self, task: TaskSpec, image: str) -> str:
        """The container of one component: its argv as `command`, after the image's ENTRYPOINT
        (`python -m runtime`, never repeated here); secrets only as SSM references."""
        c = self.config
        names = c.env_var_names
        ssm_arn = f"arn:aws:ssm:{c.region}:{self.account_id}:parameter"
        env = [
            {"name": names["ENVVAR_PLATFORM_ENV"], "value": c.environment},
            {"name": names["ENVVAR_AWS_REGION"], "value": c.region},
            {"name": names["ENVVAR_BUS_KIND"], "value": "kafka"},
            {"name": names["ENVVAR_IG_BASE_URL"], "value": c.ig_base_url},
        ]
        secrets = [
            {"name": names["ENVVAR_DB_DSN"], "valueFrom": f"{ssm_arn}{c.ssm_paths['SSM_DB_DSN_PATH']}"},
            {"name": names["ENVVAR_KAFKA_BOOTSTRAP"], "valueFrom": f"{ssm_arn}{c.ssm_paths['SSM_CONFLUENT_BOOTSTRAP_PATH']}"},
            {"name": names["ENVVAR_IG_API_KEY"], "valueFrom": f"{ssm_arn}{c.ssm_paths['SSM_IG_API_KEY_PATH']}"},
        ]
        container: dict[str, Any] = {
            "name": task.component, "image": image, "essential": True,
            "command": list(task.command),
            "environment": env, "secrets": secrets, "readonlyRootFilesystem": True,
            "mountPoints": [{"sourceVolume": name, "containerPath": path, "readOnly": False}
                            for name, path in sorted(SCRATCH_MOUNTS.items())],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": task.log_group, "awslogs-region": c.region, "awslogs-stream-prefix": task.component}},
        }
        if task.port:
            container["portMappings"] = [{"containerPort": task.port, "protocol": "tcp"}]
        return json.dumps([container], sort_keys=True)
