"""End-to-end fixtures: a scratch run folder and a registry copy whose every port is free."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.compute.local_backend import running_packs, stop_pack
from controller.substrate import local
from controller.substrate.processes import free_port
from runtime.contracts.registry import load_registry
from runtime.paths import REPO_ROOT


@pytest.fixture
def spine_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd = a scratch folder; FP_HANDLES_REGISTRY = a copy with free loopback ports (IG included)."""
    monkeypatch.chdir(tmp_path)
    for name in ("FP_OBJECT_STORE_ENDPOINT", "FP_DB_DSN", "FP_KAFKA_BOOTSTRAP", "FP_BUS", "FP_IG_BASE_URL", "SR_RUN_EQUIVALENCE_KEY"):
        monkeypatch.delenv(name, raising=False)
    text = (REPO_ROOT / "handles.registry.yaml").read_text()
    for key in ("LOCAL_MOTO_PORT", "LOCAL_POSTGRES_PORT", "LOCAL_KAFKA_PORT"):
        text = re.sub(rf"(\n\s+{key}: )\d+", rf"\g<1>{free_port()}", text)
    ig_port = free_port()
    text = re.sub(r"(\n\s+IG_PORT: )\d+", rf"\g<1>{ig_port}", text)
    text = re.sub(r'(\n      IG_BASE_URL: "http://127\.0\.0\.1:)\d+"', rf'\g<1>{ig_port}"', text)
    registry_file = tmp_path / "handles.registry.yaml"
    registry_file.write_text(text)
    monkeypatch.setenv("FP_HANDLES_REGISTRY", str(registry_file))
    yield tmp_path
    registry = load_registry("local_parity", registry_file)
    root = tmp_path / registry.text("LOCAL_RUNS_ROOT")
    for pack in running_packs(registry, root):
        stop_pack(registry, pack, root)
    local.down(registry, tmp_path)
