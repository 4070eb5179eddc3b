"""Stack fixtures: synthesise every stack once per session (cdktn import costs ~10 s)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.paths import registry_path
from stacks.synth import stack_file, synth

SHA = "0123456789abcdef0123456789abcdef01234567"
WINDOW_END = "2026-11-23T23:00Z"


@dataclass(frozen=True)
class Synthesised:
    """The session's synthesis: where, how long, and each stack's parsed JSON."""

    out_dir: Path
    seconds: float
    stacks: dict[str, dict[str, Any]]

    def file(self, stack: str) -> Path:
        return stack_file(self.out_dir, stack)


@pytest.fixture(scope="session")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    out = tmp_path_factory.mktemp("cdktn-out")
    started = time.perf_counter()
    result = synth(out_dir=out, sha=SHA, window_end_utc=WINDOW_END)
    seconds = time.perf_counter() - started
    parsed = {name: json.loads(path.read_text()) for name, path in result.files.items()}
    return Synthesised(out_dir=out, seconds=seconds, stacks=parsed)


def registry_document() -> dict[str, Any]:
    """A fresh, mutable copy of the repository's registry."""
    return yaml.safe_load(registry_path().read_text())


def write_registry(tmp_path: Path, document: dict[str, Any]) -> Path:
    """Write a (modified) registry to a temporary file and return its path."""
    path = tmp_path / "handles.registry.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
