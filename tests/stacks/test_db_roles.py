"""dev_min's database roles in the stacks: runtime tasks get the least-privilege role's DSN and may
read nothing else of the database's secrets; only the migrations job reads the owner's."""

from __future__ import annotations

from typing import Any

from runtime.contracts.registry import load_registry
from stacks.config import RUNTIME_ROLE_KEYS, core_config
from tests.stacks.conftest import Synthesised

OWNER_SECRETS = ("SSM_DB_USER_PATH", "SSM_DB_PASSWORD_PATH", "SSM_DB_RUNTIME_PASSWORD_PATH")


def _parameters(synthesised: Synthesised) -> dict[str, dict[str, Any]]:
    return {body["name"]: body for body in synthesised.stacks["demo"]["resource"]["aws_ssm_parameter"].values()}


def test_the_runtime_dsn_names_the_runtime_role_and_its_own_generated_password(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    parameters = _parameters(synthesised)
    dsn = str(parameters[registry.text("SSM_DB_DSN_PATH")]["value"])
    assert dsn.startswith(f"postgresql://{registry.text('DB_RUNTIME_ROLE')}:${{random_password.db_runtime_password.result}}@")
    assert parameters[registry.text("SSM_DB_RUNTIME_PASSWORD_PATH")]["value"] == "${random_password.db_runtime_password.result}"
    assert "db_runtime_password" in synthesised.stacks["demo"]["resource"]["random_password"]


def test_only_the_migrations_role_may_read_the_owner_credentials() -> None:
    registry = load_registry("dev_min")
    owner_paths = {registry.text(k) for k in OWNER_SECRETS}
    roles = {role.key: role for role in core_config().runtime_roles}
    assert set(roles) == set(RUNTIME_ROLE_KEYS)
    for key, role in roles.items():
        readable = set(role.ssm_paths)
        if key == "ROLE_DB_MIGRATIONS":
            assert owner_paths <= readable and registry.text("SSM_DB_DSN_PATH") in readable
        else:
            assert not readable & owner_paths, key
