"""CoreStack: persistent, cheap resources, every name and number from `CoreConfig`."""

from __future__ import annotations

import json
from typing import Any

from cdktn import S3Backend, TerraformOutput, TerraformStack, TerraformVariable
from cdktn_provider_aws.budgets_budget import BudgetsBudget, BudgetsBudgetNotification
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.dynamodb_table import DynamodbTable, DynamodbTableAttribute
from cdktn_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktn_provider_aws.ecr_repository import EcrRepository, EcrRepositoryEncryptionConfiguration
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from stacks.common import construct_id, policy_json, secure_bucket
from stacks.config import CoreConfig, RoleSpec

#: Terraform variable that carries the budget alert address (never written into the JSON).
BUDGET_EMAIL_VARIABLE = "budget_alert_email"


def _ecs_trust() -> str:
    return policy_json([{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}])


class CoreStack(TerraformStack):
    """Buckets, state, budget, ECR and IAM. Outputs feed the demo stack's remote state."""

    def __init__(self, scope: Construct, stack_id: str, *, config: CoreConfig):
        super().__init__(scope, stack_id)
        c = config
        tags = c.tags.as_dict()
        AwsProvider(self, "aws", region=c.region, default_tags=[AwsProviderDefaultTags(tags=tags)])
        S3Backend(self, bucket=c.state.bucket, key=c.state.key, region=c.state.region,
                  dynamodb_table=c.state.lock_table, encrypt=True)
        identity = DataAwsCallerIdentity(self, "current")
        self.account_id = identity.account_id

        self.buckets = {spec.key: secure_bucket(self, spec, c.tags) for spec in c.buckets}
        secure_bucket(self, c.state_bucket, c.tags)
        DynamodbTable(self, "tf_lock_table", name=c.state.lock_table, billing_mode="PAY_PER_REQUEST", hash_key="LockID",
                      attribute=[DynamodbTableAttribute(name="LockID", type="S")], point_in_time_recovery={"enabled": True},
                      server_side_encryption={"enabled": True}, deletion_protection_enabled=True, tags=tags)

        email = TerraformVariable(self, BUDGET_EMAIL_VARIABLE, type="string", sensitive=True,
                                  description=f"budget alert address ({c.budget.email_source})")
        BudgetsBudget(
            self, "monthly_budget", name=c.budget.name, budget_type="COST", time_unit="MONTHLY",
            limit_amount=str(c.budget.limit), limit_unit=c.budget.currency, tags=tags,
            notification=[BudgetsBudgetNotification(comparison_operator="GREATER_THAN", threshold=t, threshold_type="ABSOLUTE_VALUE",
                                                    notification_type="ACTUAL", subscriber_email_addresses=[email.string_value])
                          for t in c.budget.thresholds],
        )

        repo = EcrRepository(self, "ecr_repo", name=c.ecr_repo, image_tag_mutability="IMMUTABLE", force_delete=False,
                             image_scanning_configuration={"scan_on_push": True},
                             encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS")], tags=tags)
        EcrLifecyclePolicy(self, "ecr_repo_lifecycle", repository=repo.name, policy=_ecr_lifecycle())

        ssm_arn = f"arn:aws:ssm:{c.region}:{self.account_id}:parameter"
        logs_arn = f"arn:aws:logs:{c.region}:{self.account_id}:log-group:{c.log_group_prefix}*"
        execution = IamRole(self, "role_ecs_task_execution", name=c.execution_role, assume_role_policy=_ecs_trust(), tags=tags)
        all_ssm = sorted(set(c.ssm_paths.values()))
        IamRolePolicy(self, "role_ecs_task_execution_policy", role=execution.id, name="pull-log-inject", policy=policy_json([
            # GetAuthorizationToken has no resource-level scope in IAM: AWS only accepts "*" here.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
            {"Sid": "EcrPull", "Effect": "Allow", "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                                             "ecr:GetDownloadUrlForLayer"], "Resource": [repo.arn]},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [logs_arn, f"{logs_arn}:log-stream:*"]},
            {"Sid": "InjectSecrets", "Effect": "Allow", "Action": ["ssm:GetParameters"],
             "Resource": [f"{ssm_arn}{p}" for p in all_ssm]},
        ]))

        self.roles: dict[str, IamRole] = {}
        for spec in c.runtime_roles:
            self.roles[spec.key] = self._runtime_role(spec, ssm_arn, tags)

        terraform = IamRole(self, "role_terraform_apply", name=c.terraform_role, tags=tags, assume_role_policy=policy_json([
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.account_id}:root"}, "Action": "sts:AssumeRole"}]))
        IamRolePolicy(self, "role_terraform_apply_policy", role=terraform.id, name="provision-core-and-demo",
                      policy=self._terraform_policy(c, repo.arn))

        for key, bucket in self.buckets.items():
            TerraformOutput(self, f"{construct_id(key)}_arn", value=bucket.arn)
            TerraformOutput(self, f"{construct_id(key)}_name", value=bucket.bucket)
        TerraformOutput(self, "ecr_repository_url", value=repo.repository_url)
        TerraformOutput(self, "role_ecs_task_execution_arn", value=execution.arn)
        for key, role in self.roles.items():
            TerraformOutput(self, f"{construct_id(key)}_arn", value=role.arn)

    def _runtime_role(self, spec: RoleSpec, ssm_arn: str, tags: dict[str, str]) -> IamRole:
        """A task role allowed exactly its buckets/prefixes and SSM paths; no wildcard action or resource."""
        role = IamRole(self, construct_id(spec.key), name=spec.name, assume_role_policy=_ecs_trust(), tags=tags)
        statements: list[dict[str, Any]] = []
        for i, grant in enumerate(spec.s3):
            bucket = self.buckets[grant.bucket_key]
            actions = (["s3:GetObject"] if grant.read else []) + (["s3:PutObject"] if grant.write else [])
            statements.append({"Sid": f"Objects{i}", "Effect": "Allow", "Action": actions,
                               "Resource": [f"{bucket.arn}/{grant.prefix}*"]})
            statements.append({"Sid": f"List{i}", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket.arn],
                               "Condition": {"StringLike": {"s3:prefix": [f"{grant.prefix}*"]}}})
        if spec.ssm_paths:
            statements.append({"Sid": "ReadOwnParameters", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                               "Resource": [f"{ssm_arn}{p}" for p in spec.ssm_paths]})
        IamRolePolicy(self, f"{construct_id(spec.key)}_policy", role=role.id, name="least-privilege", policy=policy_json(statements))
        return role

    def _terraform_policy(self, c: CoreConfig, repo_arn: str) -> str:
        """The provisioning role: what `terraform apply/destroy` of core and demo needs. Not a runtime role."""
        state_bucket = f"arn:aws:s3:::{c.state.bucket}"
        lock_table = f"arn:aws:dynamodb:{c.state.region}:{self.account_id}:table/{c.state.lock_table}"
        role_arns = [f"arn:aws:iam::{self.account_id}:role/{name}" for name in
                     [c.execution_role, *[r.name for r in c.runtime_roles]]]
        bucket_arns = [f"arn:aws:s3:::{b.name}" for b in (*c.buckets, c.state_bucket)]
        budget_arn = f"arn:aws:budgets::{self.account_id}:budget/{c.budget.name}"
        return policy_json([
            {"Sid": "State", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
             "Resource": [state_bucket, f"{state_bucket}/*"]},
            {"Sid": "Lock", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                                                          "dynamodb:CreateTable", "dynamodb:DescribeTable",
                                                          "dynamodb:UpdateTable", "dynamodb:UpdateContinuousBackups",
                                                          "dynamodb:DescribeContinuousBackups", "dynamodb:TagResource",
                                                          "dynamodb:ListTagsOfResource", "dynamodb:DescribeTimeToLive"],
             "Resource": [lock_table]},
            # Core's own buckets: configure, never delete objects (the evidence policy denies it anyway).
            {"Sid": "CoreBuckets", "Effect": "Allow", "Resource": bucket_arns, "Action": [
                "s3:CreateBucket", "s3:ListBucket", "s3:GetBucket*", "s3:PutBucket*", "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
                "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:GetAccelerateConfiguration",
                "s3:GetReplicationConfiguration"]},
            {"Sid": "CoreRoles", "Effect": "Allow", "Resource": [*role_arns, f"arn:aws:iam::{self.account_id}:role/{c.terraform_role}"],
             "Action": ["iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
                        "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
                        "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"]},
            {"Sid": "PassRuntimeRoles", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": role_arns},
            {"Sid": "Repository", "Effect": "Allow", "Resource": [repo_arn], "Action": [
                "ecr:CreateRepository", "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy",
                "ecr:ListTagsForResource", "ecr:TagResource"]},
            {"Sid": "Budget", "Effect": "Allow", "Resource": [budget_arn],
             "Action": ["budgets:ViewBudget", "budgets:ModifyBudget", "budgets:ListTagsForResource", "budgets:TagResource"]},
            # Demo resources are created and destroyed each window: their ids are unknown before apply,
            # and these services do not support resource-level scoping for Create*/Describe* calls.
            {"Sid": "DemoLifecycle", "Effect": "Allow", "Resource": ["*"], "Action": [
                "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:CreateSubnet", "ec2:DeleteSubnet",
                "ec2:CreateInternetGateway", "ec2:AttachInternetGateway", "ec2:DetachInternetGateway",
                "ec2:DeleteInternetGateway", "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:CreateRoute",
                "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags", "ec2:Describe*",
                "ecs:CreateCluster", "ecs:DeleteCluster", "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition",
                "ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:Describe*", "ecs:TagResource",
                "rds:CreateDBInstance", "rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:CreateDBSubnetGroup",
                "rds:DeleteDBSubnetGroup", "rds:Describe*", "rds:AddTagsToResource", "rds:ListTagsForResource",
                "ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParameter", "ssm:GetParameters",
                "ssm:AddTagsToResource", "ssm:ListTagsForResource", "ssm:DescribeParameters",
                "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DescribeLogGroups",
                "logs:TagResource", "logs:ListTagsForResource",
                "servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:DeleteNamespace",
                "servicediscovery:CreateService", "servicediscovery:DeleteService", "servicediscovery:Get*",
                "servicediscovery:List*", "servicediscovery:TagResource", "route53:CreateHostedZone",
                "route53:DeleteHostedZone", "route53:GetHostedZone", "route53:ChangeResourceRecordSets",
                "sts:GetCallerIdentity",
            ]},
        ])


def _ecr_lifecycle() -> str:
    """Keep the repository small: untagged layers go after a day (tags are immutable `git-<sha>`)."""
    return json.dumps({"rules": [{"rulePriority": 1, "description": "expire untagged images",
                                  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                "countUnit": "days", "countNumber": 1},
                                  "action": {"type": "expire"}}]})
