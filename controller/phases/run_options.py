"""The options an operator chooses for a run: bounded gate, oracle seed, engine scale, traffic mode.

They are checked on the command line, filled with their defaults and pinned by P1 in `run.json`.
A resumed (or re-run) phase runs with exactly what `run.json` pinned: an option given again with
the pinned value is fine, any other value is CONFIG_DRIFT naming the option, both values and
the way out. The live substrate's bus is held to the pinned bus the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.errors import PlatformError
from runtime.oracle.engine.config import EngineConfig

#: The traffic modes a run can stream (WSP `--mode`); the oracle sorts and checks that mode's outputs.
TRAFFIC_MODES: tuple[str, ...] = ("fraud", "baseline")
DEFAULT_SEED = 42
DEFAULT_MODE = "fraud"
#: Engine scale (traffic events) when the run has no bounded gate; a gate of N needs far fewer.
DEFAULT_SCALE = 20_000
_MIN_SCALE, _MAX_SCALE = 10, 200_000_000


@dataclass(frozen=True)
class RunOption:
    """One pinned option: its key in the run options, its command-line flag, its key in run.json's config."""

    name: str
    flag: str
    config_key: str


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("gate", "--gate", "gate_events_per_output"),
    RunOption("seed", "--seed", "engine_seed"),
    RunOption("scale", "--scale", "engine_scale"),
    RunOption("mode", "--mode", "traffic_mode"),
    RunOption("bus", "--bus", "bus"),
)


class BadRunOption(PlatformError):
    """An option of `fp dev-min-run` that cannot make a run."""

    code = "BAD_RUN_OPTION"


def validate_given(*, seed: int | None, scale: int | None, mode: str | None) -> None:
    """Refuse a seed, scale or mode no run can use, before anything starts (the gate has its own check)."""
    if seed is not None and seed < 0:
        raise BadRunOption(f"--seed must be 0 or more, got {seed}", next_step="use e.g. --seed 42")
    if scale is not None and not _MIN_SCALE <= scale <= _MAX_SCALE:
        raise BadRunOption(f"--scale must be between {_MIN_SCALE} and {_MAX_SCALE} events, got {scale}",
                           next_step="use e.g. --scale 20000 (omit it: the gate chooses a scale)")
    if mode is not None and mode not in TRAFFIC_MODES:
        raise BadRunOption(f"--mode {mode!r} is not a traffic mode; known: {', '.join(TRAFFIC_MODES)}",
                           next_step="use --mode fraud (default) or --mode baseline")


def default_scale(gate: int | None) -> int:
    """The engine scale of a run that did not choose one: a gate of N needs about 20 N events."""
    return min(_MAX_SCALE, max(2_000, gate * 20)) if gate else DEFAULT_SCALE


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """The options of a run about to be pinned: every unset option gets its default."""
    return {**options, "seed": DEFAULT_SEED if options.get("seed") is None else int(options["seed"]),
            "scale": int(options.get("scale") or default_scale(options.get("gate"))),
            "mode": options.get("mode") or DEFAULT_MODE}


def engine_config(options: dict[str, Any]) -> EngineConfig:
    """The oracle engine config of the run (seed and scale as pinned)."""
    resolved = with_defaults(options)
    return EngineConfig(seed=resolved["seed"], scale=resolved["scale"])


def pinned_options(config: dict[str, Any]) -> dict[str, Any]:
    """The option values run.json's config pinned (None for an option it does not hold)."""
    return {o.name: config.get(o.config_key) for o in RUN_OPTIONS}


def apply_pinned(options: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The options a resumed phase runs with: exactly the pinned ones. An option given with another
    value than the pinned one is CONFIG_DRIFT (never silently replaced, never silently used)."""
    pinned = pinned_options(config)
    drift = [f"{o.flag}: pinned {pinned[o.name]}, given {options[o.name]}" for o in RUN_OPTIONS
             if options.get(o.name) is not None and options[o.name] != pinned[o.name]]
    if drift:
        raise PlatformError(f"this run was pinned with other options ({'; '.join(drift)})", code="CONFIG_DRIFT",
                            next_step="resume without those options (the run keeps what run.json pinned; "
                                      "`fp status` shows them), or start a new run with them: `fp dev-min-run` without --from/--phase")
    return {**options, **pinned}
