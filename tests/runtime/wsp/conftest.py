"""WSP fixtures: the IG fixtures, stream views in a bucket, a served IG and a control topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from controller.substrate.processes import free_port
from runtime.bus import factory
from runtime.bus.port import RunScopedConsumer
from runtime.ig.app import create_app
from runtime.settings import Settings, load_settings
from runtime.wsp.checkpoint import WspCheckpoint
from tests.runtime.ig.conftest import (  # noqa: F401  (fixtures)
    API_KEY,
    bus_topics,
    ig_settings,
    migrated_dsn,
    publisher,
    run_id,
    store,
)
from tests.support.ig_server import ThreadServer
from tests.support.kafka_bus import RealKafkaAdmin, RealKafkaPublisher


@pytest.fixture
def settings(ig_settings) -> Settings:  # noqa: F811
    """Runtime settings of the test substrate."""
    return ig_settings.base


@pytest.fixture
def ig_url(ig_settings, publisher, store) -> Iterator[str]:  # noqa: F811
    """IG served by uvicorn on a free port for the pinned run."""
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with ThreadServer(app, free_port()) as server:
        yield server.url


@pytest.fixture
def control_topic(kafka_bootstrap: str, unique_name: str) -> str:
    """A fresh control topic (so READY history is the test's own)."""
    RealKafkaAdmin(kafka_bootstrap).ensure_topic(f"control-{unique_name}", 1, 1)
    return f"control-{unique_name}"


@pytest.fixture
def ready_pub(kafka_bootstrap: str) -> Iterator[RealKafkaPublisher]:
    """Publishes READY messages to the control topic."""
    pub = RealKafkaPublisher(kafka_bootstrap)
    yield pub
    pub.close()


def ready_consumer_for(kafka_bootstrap: str, control_topic: str, platform_run_id: str) -> RunScopedConsumer:
    """The READY consumer WSP's CLI builds (runtime.bus.factory, pinned to the run), in a fresh group."""
    settings = load_settings({"FP_ENV": "local_parity", "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": kafka_bootstrap})
    return factory.consumer(settings, [control_topic], f"wsp-test-{uuid.uuid4().hex[:8]}", platform_run_id)


@pytest.fixture
def ready_consumer(kafka_bootstrap: str, control_topic: str, run_id: str) -> Iterator[RunScopedConsumer]:  # noqa: F811
    """The production run-scoped consumer of the control topic, pinned to the test's run."""
    consumer = ready_consumer_for(kafka_bootstrap, control_topic, run_id)
    yield consumer
    consumer.close()


@pytest.fixture
def checkpoint(migrated_dsn: str) -> WspCheckpoint:  # noqa: F811
    """The WSP checkpoint in the session database."""
    return WspCheckpoint(migrated_dsn)
