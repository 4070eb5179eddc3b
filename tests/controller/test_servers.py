"""The embedded servers answer real protocol requests on loopback."""

from __future__ import annotations

import psycopg
from confluent_kafka.admin import AdminClient


def test_postgres_accepts_queries(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_tansu_broker_lists_topics(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert metadata.brokers


def test_moto_server_serves_s3(s3_client, bucket: str) -> None:  # type: ignore[no-untyped-def]
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
