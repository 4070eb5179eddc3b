"""Synthesise the stacks of one environment into Terraform JSON (`cdktn.out/stacks/<stack>/cdk.tf.json`).

Configuration is built (and validated) first, so bad registry input stops in milliseconds with
one error naming the key; only then is cdktn imported (~10 s for the AWS bindings). A stamp file
records the digest of the registry and the stack sources, so callers (the handles lint) can tell
whether an existing `cdktn.out` is current.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT, registry_path
from stacks.config import StackConfigInvalid, core_config, demo_config, local_parity_config

DEFAULT_OUT = REPO_ROOT / "cdktn.out"
STAMP_FILE = "fp-synth-stamp.json"
#: environment -> the stacks synthesised for it.
STACKS_BY_ENV: dict[str, tuple[str, ...]] = {"dev_min": ("core", "demo"), "local_parity": ("local_parity",)}
#: Which environment a stack belongs to (a stack name implies its environment).
ENV_OF_STACK = {stack: env for env, stacks in STACKS_BY_ENV.items() for stack in stacks}


@dataclass(frozen=True)
class SynthResult:
    """What was written, where, and how long it took."""

    out_dir: Path
    stacks: tuple[str, ...]
    files: dict[str, Path]
    seconds: float


def stack_file(out_dir: Path, stack: str) -> Path:
    """The Terraform JSON of `stack` below `out_dir`."""
    return out_dir / "stacks" / stack / "cdk.tf.json"


def source_digest(registry_file: Path) -> str:
    """Digest of everything synthesis depends on: the registry and every stack source file."""
    h = hashlib.sha256(registry_file.read_bytes())
    for path in sorted((REPO_ROOT / "stacks").rglob("*.py")):
        h.update(path.relative_to(REPO_ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def is_current(out_dir: Path, registry_file: Path, stacks: tuple[str, ...]) -> bool:
    """True when `out_dir` holds `stacks` synthesised from the current registry and sources."""
    stamp = out_dir / STAMP_FILE
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (recorded.get("digest") == source_digest(registry_file)
            and set(stacks) <= set(recorded.get("stacks", []))
            and all(stack_file(out_dir, s).is_file() for s in stacks))


def git_sha(default: str | None = None) -> str:
    """The commit the image tag pins (`git-<sha>`); StackConfigInvalid outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        if default:
            return default
        raise StackConfigInvalid("IMAGE_TAG_GIT_SHA_PATTERN: cannot read the git commit for the image tag",
                                 next_step="run from a git checkout or pass --git-sha") from None


def synth(*, environments: tuple[str, ...] = ("dev_min", "local_parity"), stacks: tuple[str, ...] | None = None,
          out_dir: Path = DEFAULT_OUT, registry_file: Path | None = None, sha: str | None = None,
          window_end_utc: str | None = None) -> SynthResult:
    """Validate configuration for the chosen stacks, then write their Terraform JSON to `out_dir`."""
    started = time.perf_counter()
    source = (registry_file or registry_path()).resolve()
    wanted = stacks or tuple(s for env in environments for s in STACKS_BY_ENV[env])
    for stack in wanted:
        if stack not in ENV_OF_STACK:
            raise PlatformError(f"unknown stack {stack!r}; known: {', '.join(ENV_OF_STACK)}", code="UNKNOWN_STACK",
                                next_step="use --stack core, demo or local_parity")
    configs: dict[str, object] = {}
    for stack in wanted:
        env = ENV_OF_STACK[stack]
        if stack == "core":
            configs[stack] = core_config(env, registry_file=source)
        elif stack == "demo":
            configs[stack] = demo_config(env, git_sha=sha or git_sha(), window_end_utc=window_end_utc, registry_file=source)
        else:
            configs[stack] = local_parity_config(env, registry_file=source)

    from stacks.app import build_app  # slow import (jsii + AWS bindings), only after the config is valid

    out_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(out_dir, configs)
    app.synth()
    files = {stack: stack_file(out_dir, stack) for stack in wanted}
    digest = source_digest(source)
    done = set(wanted)
    if is_current(out_dir, source, ()):  # same inputs as the stacks already there: keep them listed
        done |= set(json.loads((out_dir / STAMP_FILE).read_text()).get("stacks", []))
    (out_dir / STAMP_FILE).write_text(json.dumps({"digest": digest, "stacks": sorted(done), "registry": str(source)}, indent=2))
    return SynthResult(out_dir=out_dir, stacks=wanted, files=files, seconds=time.perf_counter() - started)
