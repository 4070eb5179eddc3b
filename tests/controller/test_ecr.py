"""The ECR adapter of P(-1) against the moto server: repository lookup, tag digests, registry login."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from controller.ecr import EcrImages
from runtime.errors import PlatformError

REGION = "eu-west-2"


@pytest.fixture
def ecr(moto_endpoint: str) -> Any:
    return boto3.client("ecr", endpoint_url=moto_endpoint, region_name=REGION)


def test_repository_gives_uri_and_account(ecr: Any, unique_name: str) -> None:
    ecr.create_repository(repositoryName=unique_name)
    repo = EcrImages(ecr).repository(unique_name)
    assert repo.name == unique_name and repo.uri == f"{repo.account_id}.dkr.ecr.{REGION}.amazonaws.com/{unique_name}"


def test_missing_repository_is_ecr_repository_missing(ecr: Any, unique_name: str) -> None:
    with pytest.raises(PlatformError) as caught:
        EcrImages(ecr).repository(unique_name)
    assert caught.value.code == "ECR_REPOSITORY_MISSING" and unique_name in caught.value.message


def test_tag_digest_is_none_until_the_tag_exists_then_ecrs_digest(ecr: Any, unique_name: str) -> None:
    ecr.create_repository(repositoryName=unique_name)
    images = EcrImages(ecr)
    assert images.tag_digest(unique_name, "git-" + "a" * 40) is None
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "c" * 64, "size": 1}, "layers": []})
    pushed = ecr.put_image(repositoryName=unique_name, imageManifest=manifest, imageTag="git-" + "a" * 40)["image"]
    assert images.tag_digest(unique_name, "git-" + "a" * 40) == pushed["imageId"]["imageDigest"]


def test_tag_digest_of_a_missing_repository_fails_closed(ecr: Any, unique_name: str) -> None:
    with pytest.raises(PlatformError) as caught:
        EcrImages(ecr).tag_digest(unique_name, "git-" + "a" * 40)
    assert caught.value.code == "ECR_CALL_FAILED"


def test_login_decodes_the_token_and_never_shows_the_password(ecr: Any) -> None:
    login = EcrImages(ecr).login()
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert f"{login.username}:{login.password}" == base64.b64decode(data["authorizationToken"]).decode()
    assert login.username == "AWS" and login.endpoint == data["proxyEndpoint"]
    assert login.password not in repr(login) and "redacted" in repr(login)


class _TokenAnswer:
    """A client whose only call returns a fixed GetAuthorizationToken answer (to exercise the parser)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def get_authorization_token(self) -> dict[str, Any]:
        return self.answer


@pytest.mark.parametrize("data", [
    [],
    [{"authorizationToken": "%%%not-base64", "proxyEndpoint": "https://x"}],
    [{"authorizationToken": base64.b64encode(b"no-colon").decode(), "proxyEndpoint": "https://x"}],
    [{"authorizationToken": base64.b64encode(b"AWS:pw").decode()}],
])
def test_malformed_login_answers_are_ecr_login_failed(data: list[dict[str, str]]) -> None:
    with pytest.raises(PlatformError) as caught:
        EcrImages(_TokenAnswer({"authorizationData": data})).login()
    assert caught.value.code == "ECR_LOGIN_FAILED" and caught.value.next_step
