"""Private servers for a benchmark: Tansu, moto and PostgreSQL on free loopback ports.

The benchmarks that run real workers need the same three servers, the runtime role, the buckets
and every registry topic; this brings them up once per measurement and stops exactly the
processes it started (by pid) afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_moto, start_postgres, start_tansu
from runtime.bus.kafka import KafkaAdmin
from runtime.contracts.registry import load_registry
from runtime.db.migrate import prepare_database
from runtime.db.postgres import with_credentials
from runtime.settings import Settings, load_settings
from runtime.store.s3 import s3_client


@dataclass
class Servers:
    """The private servers of one measurement and the settings that reach them."""

    settings: Settings
    dsn: str
    bootstrap: str
    env: dict[str, str]


@contextlib.contextmanager
def servers(work: Path) -> Iterator[Servers]:
    """Tansu, moto and PostgreSQL on free loopback ports; stopped (by pid) afterwards."""
    registry = load_registry("local_parity")
    procs = [start_tansu("127.0.0.1", free_port(), work / "tansu"), start_moto("127.0.0.1", free_port(), work / "moto"),
             start_postgres("127.0.0.1", free_port(), work / "pg", durable=False)]
    try:
        tansu, moto, pg = procs
        owner = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        password = secrets.token_urlsafe(16)
        prepare_database(owner, registry.text("DB_RUNTIME_ROLE"), password)
        dsn = with_credentials(owner, registry.text("DB_RUNTIME_ROLE"), password)
        env = {"FP_ENV": "local_parity", "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": f"127.0.0.1:{tansu.port}",
               "FP_OBJECT_STORE_ENDPOINT": f"http://127.0.0.1:{moto.port}", "FP_DB_DSN": dsn}
        settings = load_settings(env)
        s3 = s3_client(settings.object_store_endpoint, settings.aws_region)
        for bucket in {registry.text("S3_ARCHIVE_BUCKET"), registry.text("S3_EVIDENCE_BUCKET")}:
            s3.create_bucket(Bucket=bucket)
        admin = KafkaAdmin(f"127.0.0.1:{tansu.port}")
        for topic in registry.topics():
            admin.ensure_topic(topic.name, topic.partitions, topic.retention_hours)
        yield Servers(settings, dsn, f"127.0.0.1:{tansu.port}", env)
    finally:
        for proc in procs:
            stop_pid(proc.pid, proc.argv)
