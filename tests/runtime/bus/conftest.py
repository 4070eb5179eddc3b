"""Bus fixtures: settings for each adapter on the embedded servers (Tansu, moto Kinesis, Postgres)."""

from __future__ import annotations

import pytest

from runtime.db.migrate import apply_migrations
from runtime.settings import Settings, load_settings


def bus_settings(bus: str, *, kafka_bootstrap: str | None, moto_endpoint: str | None, postgres_dsn: str | None) -> Settings:
    """Settings selecting `bus`, built the way a runtime process builds them (from env names)."""
    environ = {"FP_ENV": "local_parity", "FP_BUS": bus, "FP_AWS_REGION": "us-east-1"}
    if kafka_bootstrap:
        environ["FP_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    if moto_endpoint:
        environ["FP_OBJECT_STORE_ENDPOINT"] = moto_endpoint
    if postgres_dsn:
        environ["FP_DB_DSN"] = postgres_dsn
    return load_settings(environ)


def adapter_settings(request: pytest.FixtureRequest, bus: str) -> Settings:
    """Settings for adapter `bus` (kafka | kinesis); the server it needs is started on first use."""
    postgres_dsn = request.getfixturevalue("postgres_dsn")
    apply_migrations(postgres_dsn)
    if bus == "kafka":
        return bus_settings("kafka", kafka_bootstrap=request.getfixturevalue("kafka_bootstrap"), moto_endpoint=None,
                            postgres_dsn=postgres_dsn)
    return bus_settings("kinesis", kafka_bootstrap=None, moto_endpoint=request.getfixturevalue("moto_endpoint"),
                        postgres_dsn=postgres_dsn)

