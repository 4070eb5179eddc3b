"""Run the checkov scanner offline on a synthesised stack, with the written skips of the repo.

checkov pins boto3/botocore/packaging far below the project's pins, so it lives in its own
virtualenv (`.venv-checkov`, made by `make checkov-venv`); this module only calls its binary.
Skips come from `stacks/checkov_skips.yaml`: every skipped id has a justification and the list of
stacks it applies to, and an entry without a justification is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT

SKIPS_FILE = REPO_ROOT / "stacks" / "checkov_skips.yaml"
DEFAULT_BINARY = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


class CheckovUnavailable(PlatformError):
    """The scanner is not installed where the project expects it."""

    code = "CHECKOV_UNAVAILABLE"
    next_step = "run `make checkov-venv` (creates .venv-checkov with the pinned checkov)"


@dataclass(frozen=True)
class Skip:
    """One deliberately skipped check and why."""

    check_id: str
    stacks: tuple[str, ...]
    justification: str


@dataclass(frozen=True)
class ScanResult:
    """Outcome of one scan: failed checks as (check id, resource), and the counts."""

    stack: str
    passed: int
    failed: tuple[tuple[str, str], ...]
    skipped: int


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    """The written skips; PlatformError when one has no justification or no stacks."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    skips = []
    for entry in document.get("skips", []):
        check_id = str(entry.get("id", "")).strip()
        justification = str(entry.get("justification") or "").strip()
        stacks = tuple(entry.get("stacks") or ())
        if not check_id or len(justification) < 20 or not stacks:
            raise PlatformError(f"{path}: skip {check_id or '(no id)'} needs an id, its stacks and a written justification",
                                code="CHECKOV_SKIP_UNJUSTIFIED")
        skips.append(Skip(check_id, stacks, justification))
    return skips


def checkov_binary() -> Path:
    """Where checkov is: $FP_CHECKOV, else the project's `.venv-checkov`."""
    path = Path(os.environ.get("FP_CHECKOV", str(DEFAULT_BINARY)))
    if not path.is_file():
        raise CheckovUnavailable(f"checkov not found at {path}")
    return path


def scan(stack: str, tf_json: Path, *, skips: list[Skip] | None = None, timeout: float = 600) -> ScanResult:
    """Scan one stack's `cdk.tf.json` offline (`--skip-download`) with its skips applied."""
    ids = sorted({s.check_id for s in (skips if skips is not None else load_skips()) if stack in s.stacks})
    command = [str(checkov_binary()), "-f", str(tf_json), "--framework", "terraform_json", "--skip-download",
               "--compact", "--quiet", "-o", "json"]
    if ids:
        command += ["--skip-check", ",".join(ids)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise PlatformError(f"checkov gave no JSON report for {tf_json} (exit {done.returncode}): {done.stderr[-400:]}",
                            code="CHECKOV_FAILED") from None
    if isinstance(report, list):
        report = report[0]
    summary = report.get("summary", {})
    results = report.get("results", {})
    failed = tuple((f["check_id"], f["resource"]) for f in results.get("failed_checks", []))
    return ScanResult(stack=stack, passed=int(summary.get("passed", 0)), failed=failed, skipped=int(summary.get("skipped", 0)))
