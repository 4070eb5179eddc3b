"""WSP settings: one object, read in one place; required values without defaults, placeholders refused.

The pinned run comes from `--platform-run-id` or `REQUIRED_PLATFORM_RUN_ID` (registry
`REQUIRED_PLATFORM_RUN_ID_ENV_KEY`); the checkpoint database from `FP_DB_DSN`; the IG API key from
`FP_IG_API_KEY` (registry `ENVVAR_IG_API_KEY`) or SSM (`SSM_IG_API_KEY_PATH`), refused when it is a
placeholder; IG's address from `FP_IG_BASE_URL` (registry `ENVVAR_IG_BASE_URL`) or `IG_BASE_URL`;
the cap per output from `WSP_MAX_EVENTS_PER_OUTPUT`. Nothing here connects at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.contracts.ids import is_platform_run_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.ig.settings import IgConfigInvalid, check_api_key, ig_base_url, read_ig_api_key
from runtime.settings import Settings, load_settings

#: Environment variable capping the events sent per output (the CLI's --max-events-per-output wins).
MAX_EVENTS_PER_OUTPUT_ENV = "WSP_MAX_EVENTS_PER_OUTPUT"


class WspConfigInvalid(PlatformError):
    """A required WSP setting is missing, malformed or a placeholder."""

    code = "WSP_CONFIG_INVALID"
    next_step = "set the value (see docs/wsp.md: settings) and rerun `python -m runtime wsp run`"


@dataclass(frozen=True)
class WspSettings:
    """What WSP needs to stream one pinned run to IG."""

    base: Settings
    platform_run_id: str
    api_key: str
    db_dsn: str
    ig_base_url: str
    max_events_per_output: int | None

    @property
    def registry(self) -> Registry:
        """The handles of this environment."""
        return self.base.registry

    def __repr__(self) -> str:  # never print the key
        return (f"WspSettings(env={self.base.environment}, run={self.platform_run_id}, ig={self.ig_base_url}, "
                f"cap={self.max_events_per_output}, dsn=<set>, key=<set>)")


def load_wsp_settings(environ: Mapping[str, str] | None = None, *, base: Settings | None = None,
                      platform_run_id: str | None = None, ssm_client: Any | None = None) -> WspSettings:
    """Build WSP settings from the environment (SSM for the key when the environment has none); refuse gaps."""
    env = os.environ if environ is None else environ
    base = base or load_settings(env)
    reg = base.registry
    pin_var = reg.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    run_id = platform_run_id or env.get(pin_var, "")
    if not run_id:
        raise WspConfigInvalid("no platform_run_id", code="WSP_RUN_ID_MISSING",
                               next_step=f"pass --platform-run-id or set {pin_var}")
    if not is_platform_run_id(run_id):
        raise WspConfigInvalid(f"{run_id!r} is not a platform_run_id (platform_<yyyymmddTHHMMSSZ>)")
    if not base.db_dsn:
        raise WspConfigInvalid(f"{reg.text('ENVVAR_DB_DSN')} is not set; WSP checkpoints live in PostgreSQL",
                               code="WSP_CHECKPOINT_DSN_MISSING")
    cap = _positive_int(env.get(MAX_EVENTS_PER_OUTPUT_ENV), MAX_EVENTS_PER_OUTPUT_ENV)
    key_var = reg.text("ENVVAR_IG_API_KEY")
    try:
        api_key = check_api_key(read_ig_api_key(base, env, ssm_client), f"{key_var} or SSM {reg.text('SSM_IG_API_KEY_PATH')}")
    except IgConfigInvalid as e:
        raise WspConfigInvalid(e.message, code="WSP_IG_KEY_MISSING",
                               next_step=f"set {key_var} or the SSM parameter {reg.text('SSM_IG_API_KEY_PATH')}") from e
    return WspSettings(base=base, platform_run_id=run_id, api_key=api_key, db_dsn=base.db_dsn,
                       ig_base_url=ig_base_url(base, env), max_events_per_output=cap)


def _positive_int(text: str | None, name: str) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise WspConfigInvalid(f"{name}={text!r} is not a positive whole number")
    return value
