"""IG settings: one object, required secrets without defaults, placeholders refused.

The API key comes from SSM (registry `SSM_IG_API_KEY_PATH`) or, for tests and local runs, from
the `FP_IG_API_KEY` environment variable (registry `ENVVAR_IG_API_KEY`). The run pin comes from
`REQUIRED_PLATFORM_RUN_ID` (registry `REQUIRED_PLATFORM_RUN_ID_ENV_KEY`). IG's clients (WSP, the
P4 ready check) find the key and IG's address through `read_ig_api_key` and `ig_base_url` here.
Nothing here connects to anything at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.contracts.ids import is_platform_run_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError, SecretStoreUnavailable
from runtime.settings import Settings, load_settings, read_parameter

_PLACEHOLDERS = {"changeme", "change-me", "placeholder", "secret", "password", "todo", "xxx", "none", "null", "test"}
MIN_KEY_LENGTH = 16


class IgConfigInvalid(PlatformError):
    """A required IG setting is missing or is a placeholder."""

    code = "IG_CONFIG_INVALID"
    next_step = "set the value (see docs/ig.md: settings) and restart IG"


def check_api_key(key: str | None, source: str) -> str:
    """The key itself, or IgConfigInvalid when it is absent, short or a placeholder."""
    if not key or not key.strip():
        raise IgConfigInvalid(f"the IG API key is missing ({source})")
    if key.strip().lower() in _PLACEHOLDERS or key.startswith("<") or len(key) < MIN_KEY_LENGTH:
        raise IgConfigInvalid(f"the IG API key from {source} is a placeholder or shorter than {MIN_KEY_LENGTH} characters")
    return key


@dataclass(frozen=True)
class IgSettings:
    """What the gate needs to serve one pinned run."""

    base: Settings
    platform_run_id: str
    api_key: str
    db_dsn: str
    listen_host: str
    port: int

    @property
    def registry(self) -> Registry:
        """The handles of this environment."""
        return self.base.registry

    def __repr__(self) -> str:  # never print the key
        return f"IgSettings(env={self.base.environment}, run={self.platform_run_id}, dsn=<set>, key=<set>)"


def read_ssm_key(base: Settings, ssm_client: Any | None = None) -> str | None:
    """The API key stored at SSM_IG_API_KEY_PATH (SecureString, decrypted), or None if absent."""
    client = ssm_client or base.aws_client("ssm")
    path = base.registry.text("SSM_IG_API_KEY_PATH")
    try:
        return read_parameter(client, path)
    except SecretStoreUnavailable as e:
        raise IgConfigInvalid(f"cannot read the IG API key from SSM {path}: {e}",
                              next_step="check FP_OBJECT_STORE_ENDPOINT/credentials or set FP_IG_API_KEY") from e


def read_ig_api_key(base: Settings, environ: Mapping[str, str] | None = None, ssm_client: Any | None = None) -> str | None:
    """The IG API key as a client of IG finds it: ENVVAR_IG_API_KEY, else SSM (None when neither has it)."""
    env = os.environ if environ is None else environ
    return env.get(base.registry.text("ENVVAR_IG_API_KEY")) or read_ssm_key(base, ssm_client)


def ig_base_url(base: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Where IG answers: the environment override the registry names (ENVVAR_IG_BASE_URL), else IG_BASE_URL."""
    env = os.environ if environ is None else environ
    return env.get(base.registry.text("ENVVAR_IG_BASE_URL")) or base.registry.text("IG_BASE_URL")


def load_ig_settings(environ: Mapping[str, str] | None = None, *, base: Settings | None = None,
                     ssm_client: Any | None = None) -> IgSettings:
    """Build IG settings from the environment (and SSM for the key); refuse anything missing."""
    env = os.environ if environ is None else environ
    base = base or load_settings(env)
    reg = base.registry
    pin_var = reg.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    run_id = env.get(pin_var, "")
    if not is_platform_run_id(run_id):
        raise IgConfigInvalid(f"{pin_var}={run_id!r} is not a platform_run_id (platform_<yyyymmddTHHMMSSZ>)")
    key_var = reg.text("ENVVAR_IG_API_KEY")
    if env.get(key_var):
        key = check_api_key(env[key_var], key_var)
    else:
        key = check_api_key(read_ssm_key(base, ssm_client), f"SSM {reg.text('SSM_IG_API_KEY_PATH')}")
    if not base.db_dsn:
        raise IgConfigInvalid(f"{reg.text('ENVVAR_DB_DSN')} is not set; IG keeps its admission state in PostgreSQL")
    return IgSettings(base=base, platform_run_id=run_id, api_key=key, db_dsn=base.db_dsn,
                      listen_host=reg.text("IG_LISTEN_ADDR"), port=reg.integer("IG_PORT"))
