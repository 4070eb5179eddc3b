"""The Terraform wrapper against the real binary, on a provider-free local-backend config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from controller.devmin.terraform import Stack, TerraformCli, TerraformError, non_sensitive_outputs, stack_from_registry
from runtime.contracts.registry import load_registry
from runtime.errors import HandleMissing

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")

# terraform_data is built into Terraform: no provider download is needed.
CONFIG = """
variable "label" {
  type    = string
  default = "first"
}
resource "terraform_data" "marker" {
  input = var.label
}
output "label" {
  value = terraform_data.marker.output
}
output "secret_thing" {
  value     = "do-not-leak"
  sensitive = true
}
"""


def _stack(tmp_path: Path) -> Stack:
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "main.tf").write_text(CONFIG)
    return Stack(name="demo", directory=folder, backend=None)


def _state_resources(stack: Stack) -> list[dict]:
    state = json.loads((stack.directory / "terraform.tfstate").read_text())
    return list(state["resources"])


def test_apply_creates_resources_and_returns_only_non_sensitive_outputs(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    outputs = TerraformCli().apply(stack)
    assert outputs == {"label": "first"}
    assert [r["type"] for r in _state_resources(stack)] == ["terraform_data"]
    assert TerraformCli().output(stack) == {"label": "first"}


def test_destroy_uses_flags_modern_terraform_accepts_and_empties_the_state(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    TerraformCli(variables={"label": "second"}).apply(stack)
    assert _state_resources(stack)
    TerraformCli().destroy(stack)  # python-terraform's default `-force` would make this exit 1
    assert _state_resources(stack) == []
    assert TerraformCli().output(stack) == {}


def test_apply_failure_raises_with_code_and_terraform_message(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    (stack.directory / "broken.tf").write_text('resource "terraform_data" "x" {\n  input = undefined_thing\n}\n')
    with pytest.raises(TerraformError) as caught:
        TerraformCli().apply(stack)
    assert caught.value.code in ("TERRAFORM_INIT_FAILED", "TERRAFORM_APPLY_FAILED")
    assert "demo stack" in caught.value.message


def test_missing_stack_folder_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(TerraformError) as caught:
        TerraformCli().apply(Stack(name="core", directory=tmp_path / "nope", backend=None))
    assert caught.value.code == "TERRAFORM_STACK_MISSING"


def test_missing_binary_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(TerraformError) as caught:
        TerraformCli(binary="terraform-not-installed-here").apply(_stack(tmp_path))
    assert caught.value.code == "TERRAFORM_MISSING"


def test_dev_min_stacks_take_their_backend_from_the_registry(tmp_path: Path) -> None:
    registry = load_registry("dev_min")
    demo = stack_from_registry(registry, "demo", root=tmp_path)
    assert demo.backend is not None
    assert demo.backend.as_options() == {
        "bucket": registry.text("TF_STATE_BUCKET"),
        "key": registry.text("TF_STATE_KEY_DEMO"),
        "dynamodb_table": registry.text("TF_LOCK_TABLE"),
        "region": registry.text("AWS_REGION"),
    }
    assert demo.directory == tmp_path / registry.text("TF_STACK_DEMO_DIR")
    core = stack_from_registry(registry, "core")
    assert core.backend is not None and core.backend.key == registry.text("TF_STATE_KEY_CORE")


def test_local_parity_has_no_terraform_backend_handles() -> None:
    with pytest.raises(HandleMissing):
        stack_from_registry(load_registry("local_parity"), "demo")


def test_non_sensitive_outputs_drops_secrets() -> None:
    raw = {"a": {"value": 1, "sensitive": False}, "b": {"value": "x", "sensitive": True}}
    assert non_sensitive_outputs(raw) == {"a": 1}


def test_python_terraform_default_destroy_is_rejected_by_modern_terraform(tmp_path: Path) -> None:
    """Why the wrapper exists: the library's own destroy() passes `-force`, which Terraform refuses."""
    from python_terraform import Terraform

    stack = _stack(tmp_path)
    TerraformCli().apply(stack)
    code, _out, err = Terraform(working_dir=str(stack.directory)).destroy()
    assert code != 0 and "force" in err
    assert _state_resources(stack)  # nothing was destroyed


def test_s3_backend_config_keeps_state_in_the_bucket_with_a_lock_table(tmp_path: Path, moto_endpoint: str, unique_name: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """init -backend-config, apply and destroy through the S3 backend (the moto server stands in for S3 + DynamoDB)."""
    import boto3

    from controller.devmin.terraform import EMULATOR_BACKEND_OPTIONS, BackendConfig

    registry = load_registry("dev_min")
    region = registry.text("AWS_REGION")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=region)
    s3.create_bucket(Bucket=unique_name, CreateBucketConfiguration={"LocationConstraint": region})
    boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=region).create_table(
        TableName=unique_name, KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n' + CONFIG)
    state_key = registry.text("TF_STATE_KEY_DEMO")
    stack = Stack("demo", folder, BackendConfig(unique_name, state_key, unique_name, region, EMULATOR_BACKEND_OPTIONS))

    assert TerraformCli().apply(stack) == {"label": "first"}
    state = json.loads(s3.get_object(Bucket=unique_name, Key=state_key)["Body"].read())
    assert [r["type"] for r in state["resources"]] == ["terraform_data"]
    assert not (folder / "terraform.tfstate").exists()  # remote state only

    TerraformCli().destroy(stack)
    state = json.loads(s3.get_object(Bucket=unique_name, Key=state_key)["Body"].read())
    assert state["resources"] == []
