"""What an engine run is a function of: seed, scale, scenario and the overlay knobs.

The same EngineConfig always yields byte-identical files, so a run is named by its config and a
re-generation with the same config is a no-op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.contracts.canonical import canonical_digest
from runtime.errors import PlatformError

ENGINE_NAME = "fp-synthetic-engine"
ENGINE_VERSION = 1

#: Share of fraud flows per pattern (sums to 1).
PATTERN_SHARES: dict[str, float] = {
    "card_testing": 0.35,
    "account_takeover": 0.25,
    "amount_anomaly": 0.25,
    "mule_transfer": 0.15,
}


@dataclass(frozen=True)
class EngineConfig:
    """The inputs of one engine run (scale = baseline traffic events, approximately)."""

    seed: int = 42
    scale: int = 10_000
    scenario: str = "baseline_v0"
    fraud_rate: float = 0.02
    files_per_output: int = 4
    start_utc: str = "2026-01-05T00:00:00Z"
    days: int = 3

    def validate(self) -> None:
        """Refuse a config that cannot make a meaningful world."""
        problems = []
        if self.seed < 0:
            problems.append("seed must be >= 0")
        if not 10 <= self.scale <= 200_000_000:
            problems.append("scale must be between 10 and 200000000 events")
        if not 0.0 <= self.fraud_rate < 0.5:
            problems.append("fraud_rate must be in [0, 0.5)")
        if not 1 <= self.files_per_output <= 256:
            problems.append("files_per_output must be between 1 and 256")
        if not 1 <= self.days <= 366:
            problems.append("days must be between 1 and 366")
        if not self.scenario or len(self.scenario) > 64:
            problems.append("scenario must be 1..64 characters")
        try:
            self.start_micros()
        except ValueError:
            problems.append(f"start_utc {self.start_utc!r} is not an ISO UTC timestamp")
        if problems:
            raise PlatformError("; ".join(problems), code="ENGINE_CONFIG_INVALID", next_step="fix the generate options")

    def start_micros(self) -> int:
        """Start of the simulated window, microseconds since the epoch (UTC)."""
        dt = datetime.fromisoformat(self.start_utc.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000

    def as_dict(self) -> dict[str, Any]:
        """Plain form for the run marker."""
        return asdict(self)

    def rng_seed(self) -> list[int]:
        """The numpy seed sequence: the seed plus a digest of the scenario name."""
        return [self.seed, int(canonical_digest(self.scenario)[:8], 16)]
