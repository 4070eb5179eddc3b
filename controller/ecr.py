"""The ECR adapter of P(-1): the repository's URI, a registry login, and the digest a tag points at.

Only this module calls boto3 for ECR; controller.packaging decides from the plain answers. Each
failing call becomes a PackagingError with its own code and next step, so a dev_min P(-1) never
guesses: a repository it cannot see or a login it cannot get stops the phase.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runtime.contracts.registry import Registry
from runtime.errors import PlatformError


class EcrError(PlatformError):
    """An ECR call P(-1) depends on failed."""

    code = "ECR_CALL_FAILED"
    next_step = "check AWS credentials (AWS_PROFILE / role), the region and the core stack, then rerun"


@dataclass(frozen=True)
class RegistryLogin:
    """What `docker login` needs; `password` is a short-lived token and must only travel on stdin."""

    endpoint: str
    username: str
    password: str

    def __repr__(self) -> str:  # never print the token
        return f"RegistryLogin(endpoint={self.endpoint!r}, username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True)
class Repository:
    """An ECR repository as P(-1) needs it: its name, URI and owning account."""

    name: str
    uri: str
    account_id: str


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class EcrImages:
    """ECR through one boto3 client (created by `ecr_client` from the environment's settings)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def repository(self, name: str) -> Repository:
        """The repository `name`; ECR_REPOSITORY_MISSING when it does not exist (core stack not applied)."""
        try:
            found = self.client.describe_repositories(repositoryNames=[name])["repositories"]
        except ClientError as e:
            if _error_code(e) == "RepositoryNotFoundException":
                raise EcrError(f"ECR repository {name} does not exist", code="ECR_REPOSITORY_MISSING",
                               next_step="apply the core stack (`fp dev-min-up --env dev_min` or `fp devmin up`), then rerun P(-1)") from e
            raise EcrError(f"ecr:DescribeRepositories {name} failed: {e}") from e
        except BotoCoreError as e:
            raise EcrError(f"ecr:DescribeRepositories {name} failed: {e}") from e
        if not found:
            raise EcrError(f"ECR repository {name} does not exist", code="ECR_REPOSITORY_MISSING",
                           next_step="apply the core stack, then rerun P(-1)")
        repo = found[0]
        return Repository(name=str(repo["repositoryName"]), uri=str(repo["repositoryUri"]), account_id=str(repo["registryId"]))

    def tag_digest(self, name: str, tag: str) -> str | None:
        """The digest (`sha256:...`) tag `tag` of repository `name` points at, or None when the tag is absent."""
        try:
            details = self.client.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"]
        except ClientError as e:
            if _error_code(e) == "ImageNotFoundException":
                return None
            raise EcrError(f"ecr:DescribeImages {name}:{tag} failed: {e}") from e
        except BotoCoreError as e:
            raise EcrError(f"ecr:DescribeImages {name}:{tag} failed: {e}") from e
        digests = {str(d["imageDigest"]) for d in details if d.get("imageDigest")}
        if len(digests) > 1:
            raise EcrError(f"ECR tag {name}:{tag} resolves to {len(digests)} digests: {', '.join(sorted(digests))}",
                           code="IMAGE_DIGEST_MISMATCH", next_step="delete the stray image by hand; an immutable tag names one image")
        return digests.pop() if digests else None

    def login(self) -> RegistryLogin:
        """A registry login from ecr:GetAuthorizationToken (base64 `AWS:<password>` + proxy endpoint)."""
        try:
            data = self.client.get_authorization_token()["authorizationData"]
        except (ClientError, BotoCoreError) as e:
            raise EcrError(f"ecr:GetAuthorizationToken failed: {e}", code="ECR_LOGIN_FAILED",
                           next_step="the operator role needs ecr:GetAuthorizationToken; check AWS credentials, then rerun") from e
        if not data:
            raise EcrError("ecr:GetAuthorizationToken returned no authorization data", code="ECR_LOGIN_FAILED",
                           next_step="check the region and credentials, then rerun")
        try:
            decoded = base64.b64decode(str(data[0]["authorizationToken"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, KeyError) as e:
            raise EcrError("ecr:GetAuthorizationToken returned a token that is not base64 `user:password`",
                           code="ECR_LOGIN_FAILED", next_step="rerun; if it persists, log in with `aws ecr get-login-password`") from e
        username, sep, password = decoded.partition(":")
        endpoint = str(data[0].get("proxyEndpoint") or "")
        if not sep or not username or not password or not endpoint:
            raise EcrError("ecr:GetAuthorizationToken returned an incomplete login (user, password or endpoint missing)",
                           code="ECR_LOGIN_FAILED", next_step="rerun; if it persists, log in with `aws ecr get-login-password`")
        return RegistryLogin(endpoint=endpoint, username=username, password=password)


def ecr_images(registry: Registry) -> EcrImages:
    """The production adapter: boto3 ECR in the environment's region (and endpoint, when one is set)."""
    from runtime.settings import load_settings

    return EcrImages(load_settings(environment=registry.environment).aws_client("ecr"))
