"""The one wrapper of the Terraform CLI, and the runner seam every dev_min step goes through.

`TerraformRunner` is what `dev_min_up` and `dev_min_down` call: apply a stack, destroy a stack,
read its outputs. `TerraformCli` implements it with python-terraform against the real binary;
tests substitute a runner that creates the same resources in moto, so the preflight and the
teardown checks run against real AWS API behaviour without a cloud account.

python-terraform predates Terraform 0.15: its `destroy()` adds `-force` (rejected since 0.15)
and its `apply()` takes a directory argument (removed in 0.15). We therefore always run in the
stack's folder and call destroy with `force=IsNotFlagged, auto_approve=True`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from python_terraform import IsFlagged, IsNotFlagged, Terraform

from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

StackName = Literal["core", "demo"]
STACKS: tuple[StackName, ...] = ("core", "demo")

#: stack -> (registry key of its folder, registry key of its state object)
_STACK_HANDLES: dict[str, tuple[str, str]] = {
    "core": ("TF_STACK_CORE_DIR", "TF_STATE_KEY_CORE"),
    "demo": ("TF_STACK_DEMO_DIR", "TF_STATE_KEY_DEMO"),
}


class TerraformError(PlatformError):
    """A Terraform command failed; the message carries the tail of its stderr."""

    code = "TERRAFORM_FAILED"


#: How long apply/destroy wait for the state lock: a lock still being released by the previous
#: command (or held by a colleague's short command) is waited out instead of failing at once; a
#: stale lock still fails, naming its ID, after this long (then `terraform force-unlock`).
LOCK_TIMEOUT = "120s"


@dataclass(frozen=True)
class BackendConfig:
    """Where a stack keeps its state: S3 bucket + key, DynamoDB lock table, region."""

    bucket: str
    key: str
    lock_table: str
    region: str
    #: More S3-backend settings, e.g. for an S3-compatible endpoint (set AWS_ENDPOINT_URL_S3/_DYNAMODB too).
    extra: tuple[tuple[str, str], ...] = ()

    def as_options(self) -> dict[str, str]:
        """The `-backend-config` pairs of `terraform init` for the S3 backend."""
        options = {"bucket": self.bucket, "key": self.key, "dynamodb_table": self.lock_table, "region": self.region}
        options.update(dict(self.extra))
        return options


#: S3-backend settings that let Terraform keep state on an S3-compatible endpoint (moto, LocalStack).
EMULATOR_BACKEND_OPTIONS: tuple[tuple[str, str], ...] = (
    ("use_path_style", "true"),
    ("skip_credentials_validation", "true"),
    ("skip_requesting_account_id", "true"),
    ("skip_metadata_api_check", "true"),
)


@dataclass(frozen=True)
class Stack:
    """One Terraform stack: its name, its folder and (None for a local backend) its state backend."""

    name: str
    directory: Path
    backend: BackendConfig | None


def stack_from_registry(registry: Registry, name: str, root: Path | None = None) -> Stack:
    """The core or demo stack of `registry`'s environment, with its S3 state backend."""
    if name not in _STACK_HANDLES:
        raise PlatformError(f"unknown stack {name!r}; known: {', '.join(STACKS)}", code="UNKNOWN_STACK")
    dir_key, state_key = _STACK_HANDLES[name]
    directory = Path(registry.text(dir_key))
    if root is not None and not directory.is_absolute():
        directory = root / directory
    backend = BackendConfig(
        bucket=registry.text("TF_STATE_BUCKET"),
        key=registry.text(state_key),
        lock_table=registry.text("TF_LOCK_TABLE"),
        region=registry.text("AWS_REGION"),
    )
    return Stack(name=name, directory=directory, backend=backend)


class TerraformRunner(Protocol):
    """Apply, destroy and read a stack. The seam between dev_min orchestration and Terraform."""

    def apply(self, stack: Stack) -> dict[str, Any]:
        """Create or update the stack; return its non-sensitive outputs."""
        ...

    def destroy(self, stack: Stack) -> None:
        """Destroy every resource of the stack; raise when Terraform reports a failure."""
        ...

    def output(self, stack: Stack) -> dict[str, Any]:
        """The stack's non-sensitive outputs (name -> value)."""
        ...


class TerraformCli:
    """`TerraformRunner` over the real `terraform` binary, through python-terraform."""

    def __init__(self, binary: str = "terraform", variables: dict[str, str] | None = None):
        self.binary = binary
        self.variables = dict(variables or {})

    def _terraform(self, stack: Stack) -> Terraform:
        if shutil.which(self.binary) is None:
            raise TerraformError(
                f"the Terraform CLI {self.binary!r} is not on PATH",
                code="TERRAFORM_MISSING",
                next_step="install Terraform >= 1.5 and retry",
            )
        if not stack.directory.is_dir():
            raise TerraformError(
                f"stack folder {stack.directory} of the {stack.name} stack does not exist",
                code="TERRAFORM_STACK_MISSING",
                next_step="synthesise the stacks first (cdktn synth) so the folder exists",
            )
        return Terraform(working_dir=str(stack.directory), terraform_bin_path=self.binary,
                         variables=self.variables or None)

    def _init(self, tf: Terraform, stack: Stack) -> None:
        backend = stack.backend.as_options() if stack.backend else None
        code, _out, err = tf.init(backend_config=backend, reconfigure=IsFlagged, input=False)
        _check(code, err, stack, "init")

    def apply(self, stack: Stack) -> dict[str, Any]:
        """`terraform init` then `terraform apply -auto-approve -input=false` in the stack folder."""
        tf = self._terraform(stack)
        self._init(tf, stack)
        code, _out, err = tf.apply(skip_plan=True, input=False, lock_timeout=LOCK_TIMEOUT)
        _check(code, err, stack, "apply")
        return self.output(stack)

    def destroy(self, stack: Stack) -> None:
        """`terraform destroy -auto-approve` (never `-force`, which Terraform >= 0.15 rejects)."""
        tf = self._terraform(stack)
        self._init(tf, stack)
        code, _out, err = tf.destroy(force=IsNotFlagged, auto_approve=True, input=False, lock_timeout=LOCK_TIMEOUT)
        _check(code, err, stack, "destroy")

    def output(self, stack: Stack) -> dict[str, Any]:
        """`terraform output -json`, with sensitive outputs left out."""
        tf = self._terraform(stack)
        code, out, err = tf.output_cmd(json=IsFlagged)
        _check(code, err, stack, "output")
        return non_sensitive_outputs(_parse_json(out, stack))


def non_sensitive_outputs(raw: dict[str, Any]) -> dict[str, Any]:
    """name -> value for every output not marked sensitive (secrets never reach evidence)."""
    return {name: spec.get("value") for name, spec in raw.items() if isinstance(spec, dict) and not spec.get("sensitive")}


def _parse_json(text: str, stack: Stack) -> dict[str, Any]:
    import json

    try:
        parsed = json.loads(text or "{}")
    except json.JSONDecodeError as e:
        raise TerraformError(f"terraform output of the {stack.name} stack is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise TerraformError(f"terraform output of the {stack.name} stack is not a JSON object")
    return parsed


def _check(code: int | None, err: str | None, stack: Stack, action: str) -> None:
    if code == 0:
        return
    tail = " | ".join(line.strip() for line in (err or "").strip().splitlines()[-6:] if line.strip())
    raise TerraformError(
        f"terraform {action} of the {stack.name} stack ({stack.directory}) failed with exit {code}: {tail}",
        code=f"TERRAFORM_{action.upper()}_FAILED",
        next_step=f"fix the error above and rerun; `terraform -chdir={stack.directory} {action}` shows the full output",
    )
