"""Deterministic identifiers: platform_run_id, scenario_run_id, event_id.

`platform_run_id` is unique per run (UTC second); the others are pure functions of their inputs
so retries and replays carry the same ids.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from runtime.contracts.canonical import canonical_digest, sha256_hex

PLATFORM_RUN_ID_RE = re.compile(r"platform_\d{8}T\d{6}Z", re.ASCII)  # whole string only: no trailing newline


def utc_now() -> datetime:
    """Now, in UTC, to the microsecond."""
    return datetime.now(UTC)


def utc_iso(moment: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with a trailing Z."""
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time_micros(value: object) -> int | None:
    """Integer microseconds since the epoch of an RFC 3339 timestamp with a zone (Z or an offset);
    None when `value` is not one. The one event-time form IG, WSP and the RTDL stores compare."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def new_platform_run_id(moment: datetime | None = None) -> str:
    """`platform_<yyyymmddTHHMMSSZ>` for `moment` (default now)."""
    return "platform_" + (moment or utc_now()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def is_platform_run_id(value: str) -> bool:
    """True when `value` has the platform_run_id shape."""
    return bool(PLATFORM_RUN_ID_RE.fullmatch(value))


def scenario_run_id(equivalence_key: str) -> str:
    """The stable scenario_run_id of a run equivalence key (32 hex chars of its sha256)."""
    return sha256_hex(equivalence_key.encode("utf-8"))[:32]


def event_id(output_id: str, row_identity: dict[str, object]) -> str:
    """The deterministic event_id of an oracle row: its output and row identity, hashed."""
    return canonical_digest({"output_id": output_id, "row": row_identity})[:32]
