"""IG fixtures: migrated Postgres, a bucket on the moto server, the Tansu broker with the topics,
and an IG app for a random pinned run with a real Kafka publisher."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.db.migrate import apply_migrations
from runtime.ig.app import create_app
from runtime.ig.settings import IgSettings
from runtime.settings import load_settings
from runtime.store.s3 import S3Store, s3_client
from tests.support.events import random_run_id
from tests.support.kafka_bus import RealKafkaAdmin, RealKafkaPublisher

API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def migrated_dsn(postgres_dsn: str) -> str:
    """The session database with every migration applied."""
    apply_migrations(postgres_dsn)
    return postgres_dsn


@pytest.fixture(scope="session")
def bus_topics(kafka_bootstrap: str) -> dict[str, str]:
    """Every registry topic created on the broker; event class -> topic name."""
    reg = load_settings({"FP_ENV": "local_parity"}).registry
    admin = RealKafkaAdmin(kafka_bootstrap)
    for topic in reg.topics():
        admin.ensure_topic(topic.name, topic.partitions, topic.retention_hours)
    return {cls: reg.topic(spec["topic"]).name for cls, spec in reg.mapping("EVENT_CLASS_MAP").items()}


@pytest.fixture
def run_id() -> str:
    """A fresh pinned run."""
    return random_run_id()


@pytest.fixture
def ig_settings(migrated_dsn: str, moto_endpoint: str, run_id: str) -> IgSettings:
    """IG settings for the pinned run against the session servers."""
    base = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": migrated_dsn,
                          "FP_BUS": "kafka"})
    return IgSettings(base=base, platform_run_id=run_id, api_key=API_KEY, db_dsn=migrated_dsn,
                      listen_host="127.0.0.1", port=0)


@pytest.fixture
def store(moto_endpoint: str, bucket: str) -> S3Store:
    """The bucket receipts and quarantine batches go to in tests."""
    return S3Store(bucket, client=s3_client(moto_endpoint, "us-east-1"))


@pytest.fixture
def publisher(kafka_bootstrap: str, bus_topics: dict[str, str]) -> Iterator[RealKafkaPublisher]:
    """A real idempotent Kafka publisher on the Tansu broker."""
    pub = RealKafkaPublisher(kafka_bootstrap)
    yield pub
    pub.close()


@pytest.fixture
def client(ig_settings: IgSettings, publisher: RealKafkaPublisher, store: S3Store) -> Iterator[TestClient]:
    """An authenticated test client of a fresh IG app."""
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        yield c


def push(client: TestClient, body: Any) -> Any:
    """POST a push body to the ingest path."""
    return client.post("/v1/ingest/push", json=body)
