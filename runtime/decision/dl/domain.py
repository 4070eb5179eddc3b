"""The degrade ladder (DL): the lane's posture GREEN / AMBER / RED from health inputs, with hysteresis.

Health inputs are what DF depends on: how far OFP and CSFB (and IEG) are behind the stream (the
admission lag: seconds since IG admitted the oldest record the store has not applied yet, and
consumer lag in records), the share of join misses, and whether the bus and the database answer.
Each input is judged against AMBER and RED limits; the worst judgement is the candidate posture.
Worsening takes effect at once (a decision must never be taken on a posture better than the
facts); improving needs the better candidate on `recover_after` consecutive evaluations, one
level at a time, so a flapping input does not make the posture flap. Every change is a
`PostureEntry`, the unit of the append-only posture history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_digest
from runtime.decision.bundle import POSTURES
from runtime.errors import PermanentError


class HealthInvalid(PermanentError):
    """A health input DL cannot judge (negative lag, ratio outside [0, 1])."""

    code = "DL_HEALTH_INVALID"
    next_step = "fix the health probe that produced it; DL keeps its last posture until a valid input arrives"


@dataclass(frozen=True)
class Health:
    """One health observation of the lane's inputs (None = not measured, which counts as unknown)."""

    ofp_lag_seconds: float | None
    csfb_lag_seconds: float | None
    ieg_lag_seconds: float | None
    consumer_lag_records: int | None
    join_miss_ratio: float | None
    bus_ok: bool
    db_ok: bool


@dataclass(frozen=True)
class Limits:
    """AMBER and RED limits of each health input (the RED limit above the AMBER one)."""

    #: admission lag (wall seconds): a healthy store applies a record well within a second of its
    #: admission; a burst of a few thousand records takes a few seconds on a small machine.
    lag_amber_seconds: float = 5.0
    lag_red_seconds: float = 60.0
    consumer_lag_amber_records: int = 5_000
    consumer_lag_red_records: int = 50_000
    join_miss_amber_ratio: float = 0.05
    join_miss_red_ratio: float = 0.25
    recover_after: int = 3


def judge(health: Health, limits: Limits) -> tuple[str, list[str]]:
    """The posture the health alone points to, and the reasons (sorted) for anything worse than GREEN."""
    reasons: list[tuple[str, str]] = []

    def grade(value: float | None, amber: float, red: float, name: str) -> None:
        if value is None:
            reasons.append(("AMBER", f"{name.upper()}_UNKNOWN"))
        elif value < 0:
            raise HealthInvalid(f"{name} is negative: {value}")
        elif value >= red:
            reasons.append(("RED", f"{name.upper()}_RED"))
        elif value >= amber:
            reasons.append(("AMBER", f"{name.upper()}_AMBER"))

    if not health.bus_ok:
        reasons.append(("RED", "BUS_UNAVAILABLE"))
    if not health.db_ok:
        reasons.append(("RED", "DB_UNAVAILABLE"))
    for name, value in (("ofp_lag", health.ofp_lag_seconds), ("csfb_lag", health.csfb_lag_seconds),
                        ("ieg_lag", health.ieg_lag_seconds)):
        grade(value, limits.lag_amber_seconds, limits.lag_red_seconds, name)
    grade(health.consumer_lag_records, limits.consumer_lag_amber_records, limits.consumer_lag_red_records, "consumer_lag")
    if health.join_miss_ratio is not None and health.join_miss_ratio > 1:
        raise HealthInvalid(f"join_miss_ratio {health.join_miss_ratio} is above 1")
    grade(health.join_miss_ratio, limits.join_miss_amber_ratio, limits.join_miss_red_ratio, "join_miss")
    worst = max((POSTURES.index(p) for p, _ in reasons), default=0)
    return POSTURES[worst], sorted(code for _, code in reasons)


@dataclass(frozen=True)
class PostureEntry:
    """One posture change: the unit of the append-only posture history."""

    seq: int
    at_utc: str
    posture: str
    previous: str | None
    reasons: tuple[str, ...]
    health: dict[str, Any]

    def canonical(self) -> dict[str, Any]:
        """Plain form, with its own digest (what the history row stores)."""
        body = {"seq": self.seq, "at_utc": self.at_utc, "posture": self.posture, "previous": self.previous,
                "reasons": list(self.reasons), "health": dict(self.health)}
        return {**body, "entry_sha256": canonical_digest(body)}


@dataclass
class DegradeLadder:
    """The posture and its history: `evaluate` on every health observation, `history` is append-only."""

    limits: Limits = field(default_factory=Limits)
    history: list[PostureEntry] = field(default_factory=list)
    _better_streak: int = 0

    @property
    def posture(self) -> str:
        """The posture in force; RED before the first observation (nothing is known yet: hold)."""
        return self.history[-1].posture if self.history else "RED"

    def evaluate(self, health: Health, at_utc: str) -> PostureEntry | None:
        """Judge one observation; returns the new history entry when the posture changed, else None."""
        candidate, reasons = judge(health, self.limits)
        if not self.history:
            return self._change(candidate, reasons or ["FIRST_OBSERVATION"], health, at_utc)
        current = POSTURES.index(self.posture)
        wanted = POSTURES.index(candidate)
        if wanted > current:
            self._better_streak = 0
            return self._change(candidate, reasons, health, at_utc)
        if wanted == current:
            self._better_streak = 0
            return None
        self._better_streak += 1
        if self._better_streak < self.limits.recover_after:
            return None
        self._better_streak = 0
        step_reasons = reasons or ["RECOVERED"]
        return self._change(POSTURES[current - 1], step_reasons, health, at_utc)

    def _change(self, posture: str, reasons: list[str], health: Health, at_utc: str) -> PostureEntry:
        entry = PostureEntry(len(self.history), at_utc, posture, self.history[-1].posture if self.history else None,
                             tuple(reasons), dict(health.__dict__))
        self.history.append(entry)
        return entry
