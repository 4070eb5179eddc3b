"""Oracle-lane fixtures: the moto server as the oracle bucket, a small engine run, a fresh run id."""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path

import boto3
import pytest

from runtime.contracts.registry import load_registry
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import generate
from runtime.settings import load_settings

SMALL = EngineConfig(seed=7, scale=400, fraud_rate=0.05, files_per_output=3, days=2)


@pytest.fixture
def oracle_settings(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Settings pointing at the moto server, with the registry's oracle + evidence buckets present."""
    monkeypatch.setenv("FP_ENV", "local_parity")
    monkeypatch.setenv("FP_OBJECT_STORE_ENDPOINT", moto_endpoint)
    registry = load_registry("local_parity")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    for key in ("S3_ORACLE_BUCKET", "S3_EVIDENCE_BUCKET"):
        name = registry.text(key)
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
    return load_settings()


@pytest.fixture
def run_id() -> str:
    """A fresh platform run id (random, so tests never share oracle prefixes)."""
    r = random.Random()
    day = f"20{r.randint(10, 99)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
    return f"platform_{day}T{r.randint(0, 23):02d}{r.randint(0, 59):02d}{r.randint(0, 59):02d}Z"


@pytest.fixture(scope="session")
def small_engine_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small engine run per session (generated once)."""
    root = tmp_path_factory.mktemp("engine") / "run"
    generate(SMALL, root)
    return root


@pytest.fixture
def engine_root(small_engine_template: Path, tmp_path: Path) -> Path:
    """A private copy of the small engine run (tests may alter it)."""
    target = tmp_path / "engine"
    shutil.copytree(small_engine_template, target)
    return target
