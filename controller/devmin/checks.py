"""What preflight and teardown share: a named check result, the env guard, the handle lists.

The lists say which registry handles each check reads, so evidence can name its sources and a
missing handle is a clear HANDLE_MISSING before any AWS call is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

DEV_MIN = "dev_min"

BUCKET_HANDLES = ("S3_ORACLE_BUCKET", "S3_ARCHIVE_BUCKET", "S3_QUARANTINE_BUCKET", "S3_EVIDENCE_BUCKET")
CONFLUENT_SECRET_HANDLES = ("SSM_CONFLUENT_BOOTSTRAP_PATH", "SSM_CONFLUENT_API_KEY_PATH", "SSM_CONFLUENT_API_SECRET_PATH")
DB_SECRET_HANDLES = ("SSM_DB_USER_PATH", "SSM_DB_PASSWORD_PATH", "SSM_DB_RUNTIME_PASSWORD_PATH", "SSM_DB_DSN_PATH")
#: Secrets preflight requires; the demo-scoped subset (Confluent + DB) must be gone after teardown.
PREFLIGHT_SECRET_HANDLES = (*CONFLUENT_SECRET_HANDLES, *DB_SECRET_HANDLES, "SSM_IG_API_KEY_PATH")
DEMO_SECRET_HANDLES = (*CONFLUENT_SECRET_HANDLES, *DB_SECRET_HANDLES)


@dataclass(frozen=True)
class Check:
    """One verified fact: its name, whether it holds, what was seen, the error code if not."""

    name: str
    ok: bool
    detail: str
    code: str = ""
    items: tuple[str, ...] = ()

    def as_evidence(self) -> dict[str, Any]:
        """The `check` shape of the evidence schemas."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


class DevMinCheckFailed(PlatformError):
    """One or more dev_min checks failed; the message names every failing check."""

    code = "DEV_MIN_CHECK_FAILED"

    def __init__(self, message: str, *, code: str, next_step: str, failed: list[Check]):
        super().__init__(message, code=code, next_step=next_step)
        self.failed = failed


def failure(failed: list[Check], *, summary_code: str, what: str, next_step: str) -> DevMinCheckFailed:
    """The error for a set of failed checks: the check's own code when only one failed."""
    code = failed[0].code if len(failed) == 1 and failed[0].code else summary_code
    listing = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    return DevMinCheckFailed(f"{what} failed {len(failed)} check(s): {listing}", code=code, next_step=next_step, failed=failed)


def require_dev_min(registry: Registry) -> None:
    """Refuse to run dev_min orchestration against another environment's registry."""
    if registry.environment != DEV_MIN:
        raise PlatformError(
            f"this command manages the dev_min cloud substrate, not {registry.environment!r}",
            code="ENV_NOT_DEV_MIN",
            next_step="use --env dev_min (local_parity is brought up by `fp dev-min-up --env local_parity`)",
        )


def secret_paths(registry: Registry, handles: tuple[str, ...]) -> dict[str, str]:
    """SSM path -> handle key for each handle."""
    return {registry.text(key): key for key in handles}
