"""Task definitions of the demo stack take secrets from SSM (valueFrom), never as plain values.

The ECS backend relies on this: it copies a service's task definition to scope it to a run, and
refuses one that carries a secret's variable in `environment`. Both are checked on the JSON the
demo stack actually synthesises.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from controller.compute.ecs_backend import SECRET_ENV_KEYS, EcsBackend
from controller.devmin.aws import AwsClients
from runtime.components import of_kind
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from tests.stacks.conftest import Synthesised


def _definitions(synthesised: Synthesised) -> dict[str, dict[str, Any]]:
    return dict(synthesised.stacks["demo"]["resource"]["aws_ecs_task_definition"])


def test_every_task_definition_injects_secrets_from_ssm_only(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    region = registry.text("AWS_REGION")
    ssm_paths = {registry.text(k) for k in ("SSM_DB_DSN_PATH", "SSM_CONFLUENT_BOOTSTRAP_PATH", "SSM_IG_API_KEY_PATH")}
    secret_names = {registry.text(k) for k in SECRET_ENV_KEYS}
    definitions = _definitions(synthesised)
    assert len(definitions) == len(of_kind("daemon")) + len(of_kind("job"))
    for logical_id, body in definitions.items():
        for container in json.loads(body["container_definitions"]):
            secrets = container.get("secrets") or []
            assert {s["name"] for s in secrets} == secret_names, logical_id
            for secret in secrets:
                arn = re.fullmatch(rf"arn:aws:ssm:{region}:[^:]+:parameter(/.+)", secret["valueFrom"])
                assert arn and arn.group(1) in ssm_paths, (logical_id, secret)
                assert set(secret) == {"name", "valueFrom"}  # no inline value next to the reference
            plain = {e["name"] for e in container.get("environment", [])}
            assert not plain & secret_names, (logical_id, plain & secret_names)
            assert not any("random_password" in str(e["value"]) or "aws_ssm_parameter" in str(e["value"])
                           for e in container.get("environment", [])), logical_id


def test_ecs_backend_accepts_the_synthesised_definitions_and_refuses_a_plain_secret(synthesised: Synthesised) -> None:
    backend = EcsBackend(load_registry("dev_min"), AwsClients(region="eu-west-2"))
    for body in _definitions(synthesised).values():
        containers = json.loads(body["container_definitions"])
        backend.refuse_plain_secrets({"containerDefinitions": containers})
        leaked = [{**containers[0], "environment": [*containers[0]["environment"], {"name": "FP_DB_DSN", "value": "x"}]}]
        with pytest.raises(PlatformError) as e:
            backend.refuse_plain_secrets({"containerDefinitions": leaked})
        assert e.value.code == "SECRET_IN_PLAIN_ENV"
