"""LocalParityStack: buckets, Kinesis streams (the topics) and SSM parameters on a local endpoint."""

from __future__ import annotations

from cdktn import LocalBackend, TerraformStack, TerraformVariable
from cdktn_provider_aws.kinesis_stream import KinesisStream
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints
from cdktn_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct

from stacks.common import construct_id, secure_bucket
from stacks.config import LocalParityConfig

#: Local state file, relative to the stack's directory in cdktn.out (no shared state for a laptop).
STATE_FILE = "terraform.tfstate"
#: Kinesis keeps data at least this long; shorter registry retention is rounded up to it.
KINESIS_MIN_RETENTION_HOURS = 24
#: SSM parameters whose values are secrets: given as sensitive Terraform variables, never in the JSON.
SECRET_PARAMETERS = ("SSM_IG_API_KEY_PATH", "SSM_DB_DSN_PATH", "SSM_DB_PASSWORD_PATH", "SSM_DB_RUNTIME_PASSWORD_PATH",
                     "SSM_CONFLUENT_API_KEY_PATH", "SSM_CONFLUENT_API_SECRET_PATH")


class LocalParityStack(TerraformStack):
    """Local twin of core's buckets + the bus as Kinesis streams + the runtime's SSM parameters."""

    def __init__(self, scope: Construct, stack_id: str, *, config: LocalParityConfig):
        super().__init__(scope, stack_id)
        c = config
        tags = c.tags.as_dict()
        AwsProvider(self, "aws", region=c.region, default_tags=[AwsProviderDefaultTags(tags=tags)], s3_use_path_style=True,
                    skip_credentials_validation=True, skip_requesting_account_id=True, skip_metadata_api_check="true",
                    endpoints=[AwsProviderEndpoints(s3=c.endpoint, kinesis=c.endpoint, ssm=c.endpoint, sts=c.endpoint,
                                                   iam=c.endpoint)])
        LocalBackend(self, path=STATE_FILE)
        for spec in c.buckets:
            secure_bucket(self, spec, c.tags)
        for topic in c.topics:
            KinesisStream(self, f"stream_{construct_id(topic.key)}", name=topic.name, shard_count=topic.partitions,
                          retention_period=max(KINESIS_MIN_RETENTION_HOURS, topic.retention_hours),
                          encryption_type="KMS", kms_key_id="alias/aws/kinesis", tags=tags)
        for key, path in c.ssm_paths.items():
            cid = construct_id(key)
            if key in SECRET_PARAMETERS:
                variable = TerraformVariable(self, cid, type="string", sensitive=True, description=f"value of {key}")
                SsmParameter(self, f"ssm_{cid}", name=path, type="SecureString", value=variable.string_value, tags=tags)
            elif key == "SSM_CONFLUENT_BOOTSTRAP_PATH":
                SsmParameter(self, f"ssm_{cid}", name=path, type="SecureString", value=c.kafka_bootstrap, tags=tags)
            else:
                SsmParameter(self, f"ssm_{cid}", name=path, type="SecureString", value=c.db_user, tags=tags)
