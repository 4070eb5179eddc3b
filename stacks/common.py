"""Constructs every stack shares: the hardened bucket and IAM policy JSON."""

from __future__ import annotations

import json
from typing import Any

from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktn_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls, S3BucketOwnershipControlsRule
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from constructs import Construct

from stacks.config import BucketSpec, Tags


def construct_id(name: str) -> str:
    """A Terraform-safe logical id from a handle key or name (lower case, underscores)."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def policy_json(statements: list[dict[str, Any]]) -> str:
    """An IAM policy document; tokens inside (ARNs of other resources) resolve at synth."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def secure_bucket(scope: Construct, spec: BucketSpec, tags: Tags) -> S3Bucket:
    """A bucket that is private, encrypted, owner-enforced, and (per spec) versioned, expiring
    and delete-protected. Every bucket of every stack goes through here, so none can miss a guard."""
    cid = construct_id(spec.key)
    bucket = S3Bucket(scope, cid, bucket=spec.name, force_destroy=False, tags=tags.as_dict())
    S3BucketPublicAccessBlock(scope, f"{cid}_public_access_block", bucket=bucket.id, block_public_acls=True,
                              block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    S3BucketOwnershipControls(scope, f"{cid}_ownership", bucket=bucket.id,
                              rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
    S3BucketServerSideEncryptionConfigurationA(
        scope, f"{cid}_encryption", bucket=bucket.id,
        rule=[S3BucketServerSideEncryptionConfigurationRuleA(
            apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="aws:kms"),
            bucket_key_enabled=True)],
    )
    S3BucketVersioningA(scope, f"{cid}_versioning", bucket=bucket.id,
                        versioning_configuration={"status": "Enabled" if spec.versioned else "Suspended"})
    def everything() -> list[S3BucketLifecycleConfigurationRuleFilter]:
        return [S3BucketLifecycleConfigurationRuleFilter(prefix="")]

    rules = [S3BucketLifecycleConfigurationRule(
        id="abort-incomplete-uploads", status="Enabled", filter=everything(),
        abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=1)],
    )]
    if spec.expiry_days is not None:
        rules.append(S3BucketLifecycleConfigurationRule(
            id="expire-run-data", status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=spec.expiry_prefix or "")],
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=spec.expiry_days)]))
    if spec.versioned:
        rules.append(S3BucketLifecycleConfigurationRule(
            id="bound-old-versions", status="Enabled", filter=everything(),
            noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=spec.noncurrent_days)]))
    S3BucketLifecycleConfiguration(scope, f"{cid}_lifecycle", bucket=bucket.id, rule=rules)
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket.arn, f"{bucket.arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    if spec.deny_delete:
        statements.append({
            "Sid": "DenyEvidenceDeletion", "Effect": "Deny", "Principal": "*",
            "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket"],
            "Resource": [bucket.arn, f"{bucket.arn}/*"],
        })
    S3BucketPolicy(scope, f"{cid}_policy", bucket=bucket.id, policy=policy_json(statements))
    return bucket
