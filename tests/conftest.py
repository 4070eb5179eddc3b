"""Shared fixtures: real servers on free loopback ports, started once per test session.

Each fixture stops only the process it started (by pid). Names (buckets, topics) in tests are
random per test so tests never see each other's data.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from controller.compute.local_backend import running_packs, stop_pack
from controller.substrate import local
from controller.substrate.processes import StartedProcess, free_port, stop_pid
from controller.substrate.servers import start_moto, start_postgres, start_tansu
from runtime.contracts.registry import load_registry
from tests.support.free_ports import free_port_registry

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

HOST = "127.0.0.1"


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session folder for server data and logs."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def moto_endpoint(servers_dir: Path) -> Iterator[str]:
    """The moto server (S3, Kinesis, SSM over HTTP) on a free port."""
    proc: StartedProcess = start_moto(HOST, free_port(), servers_dir / "moto")
    yield f"http://{HOST}:{proc.port}"
    stop_pid(proc.pid, proc.argv)


@pytest.fixture(scope="session")
def postgres_dsn(servers_dir: Path) -> Iterator[str]:
    """A PostgreSQL cluster on a free port; the DSN of its `postgres` database."""
    proc = start_postgres(HOST, free_port(), servers_dir / "pg", durable=False)
    yield f"postgresql://postgres@{HOST}:{proc.port}/postgres"
    stop_pid(proc.pid, proc.argv)


@pytest.fixture(scope="session")
def runtime_role() -> tuple[str, str]:
    """The registry's runtime role name and a password for this session (roles are cluster-wide:
    a test that prepares the session cluster another way must give the role this password back)."""
    return load_registry("local_parity").text("DB_RUNTIME_ROLE"), secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def kafka_bootstrap(servers_dir: Path) -> Iterator[str]:
    """The Tansu Kafka-compatible broker on a free port."""
    proc = start_tansu(HOST, free_port(), servers_dir / "tansu")
    yield f"{HOST}:{proc.port}"
    stop_pid(proc.pid, proc.argv)


@pytest.fixture
def unique_name() -> str:
    """A random lowercase name for buckets, topics and groups of one test."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_client(moto_endpoint: str):  # type: ignore[no-untyped-def]
    """A boto3 S3 client on the moto server."""
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client, unique_name: str) -> str:  # type: ignore[no-untyped-def]
    """A fresh bucket on the moto server."""
    s3_client.create_bucket(Bucket=unique_name)
    return unique_name


@pytest.fixture
def spine_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd = a scratch folder; FP_HANDLES_REGISTRY = a copy with free loopback ports (IG included)."""
    monkeypatch.chdir(tmp_path)
    for name in ("FP_OBJECT_STORE_ENDPOINT", "FP_DB_DSN", "FP_KAFKA_BOOTSTRAP", "FP_BUS", "FP_IG_BASE_URL", "SR_RUN_EQUIVALENCE_KEY"):
        monkeypatch.delenv(name, raising=False)
    registry_file = free_port_registry(tmp_path)
    monkeypatch.setenv("FP_HANDLES_REGISTRY", str(registry_file))
    yield tmp_path
    registry = load_registry("local_parity", registry_file)
    root = tmp_path / registry.text("LOCAL_RUNS_ROOT")
    for pack in running_packs(registry, root):
        stop_pack(registry, pack, root)
    local.down(registry, tmp_path)
