"""SR fixtures: a small sealed oracle pack with stream views, written the way the oracle lane does.

Only the generic fields SR reads are written (seal JSON, receipt `output_id`/`platform_run_id`/
`view_manifest_sha256`, manifest `output_id` + `parts` with name and size) plus a few extra fields
to prove SR tolerates them. Each test gets its own platform_run_id and equivalence key.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from runtime.bus import factory
from runtime.contracts.ids import new_platform_run_id
from runtime.db.migrate import apply_migrations
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.settings import Settings
from runtime.store.s3 import S3Store
from tests.runtime.bus.conftest import bus_settings


@dataclass
class OraclePack:
    """Where a test's pack lives and how to break it."""

    store: S3Store
    settings: Settings
    platform_run_id: str

    def key(self, pattern: str, **params: str) -> str:
        return self.settings.registry.render(pattern, platform_run_id=self.platform_run_id, **params)

    def seal_key(self) -> str:
        return self.key("ORACLE_PACK_PREFIX_PATTERN") + "_SEALED.json"

    def receipt_key(self, output_id: str) -> str:
        return self.key("S3_STREAM_SORT_RECEIPT_PATTERN", output_id=output_id)

    def manifest_key(self, output_id: str) -> str:
        return self.key("S3_STREAM_VIEW_MANIFEST_PATTERN", output_id=output_id)

    def part_key(self, output_id: str, name: str) -> str:
        return self.key("S3_STREAM_VIEW_PREFIX_PATTERN", output_id=output_id) + name


def random_run_id() -> str:
    """A platform_run_id no other test uses (random second in 2001-2030)."""
    moment = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(0, 900_000_000))
    return new_platform_run_id(moment)


def write_pack(settings: Settings, platform_run_id: str, *, parts_per_output: int = 2) -> OraclePack:
    """Seal + per required output: parts, manifest, receipt (receipt last, as the oracle does)."""
    store = settings.bucket("S3_ORACLE_BUCKET")
    pack = OraclePack(store, settings, platform_run_id)
    store.put(pack.key("ORACLE_PACK_PREFIX_PATTERN") + "manifest.json", b'{"objects": []}')
    store.put(pack.seal_key(), json.dumps({"manifest_sha256": "0" * 64, "sealed_at_utc": "2026-01-01T00:00:00Z"}).encode())
    for output_id in settings.registry.names("ORACLE_REQUIRED_OUTPUT_IDS"):
        parts = []
        for index in range(parts_per_output):
            name = f"part-{index:06d}.parquet"
            data = f"PAR1 {output_id} {index}".encode()
            store.put(pack.part_key(output_id, name), data, content_type="application/octet-stream")
            parts.append({"name": name, "size": len(data), "rows": 3})
        manifest = json.dumps({"output_id": output_id, "sort_keys": ["ts_utc"], "parts": parts, "extra": {"x": 1}}).encode()
        store.put(pack.manifest_key(output_id), manifest)
        receipt = {
            "receipt_version": 1,
            "output_id": output_id,
            "platform_run_id": platform_run_id,
            "view_manifest_sha256": hashlib.sha256(manifest).hexdigest(),
            "output": {"parts": parts, "rows": 3 * parts_per_output},
        }
        store.put(pack.receipt_key(output_id), json.dumps(receipt).encode())
    return pack


def ensure_buckets(settings: Settings) -> None:
    """Create the registry's oracle and evidence buckets on the moto server if absent."""
    client = settings.s3()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for key in ("S3_ORACLE_BUCKET", "S3_EVIDENCE_BUCKET"):
        name = settings.registry.text(key)
        if name not in existing:
            client.create_bucket(Bucket=name)


def make_settings(bus: str, request: pytest.FixtureRequest) -> Settings:
    """Settings for `bus` on the session servers, with buckets, migrations and the control topic."""
    moto = request.getfixturevalue("moto_endpoint")
    dsn = request.getfixturevalue("postgres_dsn")
    kafka = request.getfixturevalue("kafka_bootstrap") if bus == "kafka" else None
    settings = bus_settings(bus, kafka_bootstrap=kafka, moto_endpoint=moto, postgres_dsn=dsn)
    apply_migrations(dsn)
    ensure_buckets(settings)
    control = settings.registry.topic("FP_BUS_CONTROL_V1")
    factory.admin(settings).ensure_topic(control.name, control.partitions, control.retention_hours)
    return settings


@pytest.fixture(params=["kafka", "kinesis"])
def any_bus_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings on each bus in turn."""
    return make_settings(request.param, request)


@pytest.fixture
def kinesis_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings on the Kinesis bus (gate and lease tests: bus-independent logic, fastest consumer)."""
    return make_settings("kinesis", request)


@pytest.fixture
def run_id() -> str:
    """A fresh platform_run_id."""
    return random_run_id()


@pytest.fixture
def equivalence_key() -> str:
    """A fresh equivalence key."""
    return f"eq-{uuid.uuid4().hex[:12]}"


def evidence_writer(settings: Settings, platform_run_id: str) -> EvidenceWriter:
    """The run's evidence writer on the evidence bucket."""
    prefix = settings.registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    return EvidenceWriter(settings.registry, platform_run_id, [BundleTarget(settings.bucket("S3_EVIDENCE_BUCKET"), prefix)])
