"""Kinesis specifics: checkpoints live in Postgres per (consumer, stream, shard); retention is applied."""

from __future__ import annotations

import json
import time

from runtime.bus import factory
from runtime.bus.kinesis import KinesisAdmin, kinesis_client
from runtime.bus.port import OutboundRecord
from runtime.db.migrate import apply_migrations, connect
from tests.runtime.bus.conftest import bus_settings

RUN = "platform_20260101T000000Z"


def test_commit_writes_the_checkpoint_row_of_each_shard(moto_endpoint: str, postgres_dsn: str, unique_name: str) -> None:
    apply_migrations(postgres_dsn)
    settings = bus_settings("kinesis", kafka_bootstrap=None, moto_endpoint=moto_endpoint, postgres_dsn=postgres_dsn)
    factory.admin(settings).ensure_topic(unique_name, 2, 24)
    publisher = factory.publisher(settings)
    refs = publisher.publish([OutboundRecord(unique_name, f"k{i}", json.dumps({"platform_run_id": RUN}).encode()) for i in range(12)])
    consumer = factory.consumer(settings, [unique_name], "cp-test", RUN)
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 12 and time.monotonic() < deadline:
            got += consumer.poll(12, 2.0)
        consumer.commit(got)
    finally:
        consumer.close()
    last_by_shard: dict[str, int] = {}
    for ref in refs:
        assert not isinstance(ref, Exception)
        last_by_shard[str(ref.partition)] = max(last_by_shard.get(str(ref.partition), 0), int(ref.offset))
    with connect(postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT shard_id, sequence_number::text FROM bus_kinesis_checkpoints WHERE consumer_name = %s AND stream = %s",
            ("cp-test", unique_name),
        ).fetchall()
    assert {shard: int(seq) for shard, seq in rows} == last_by_shard


def test_admin_applies_retention_beyond_the_default(moto_endpoint: str, unique_name: str) -> None:
    admin = KinesisAdmin(kinesis_client(moto_endpoint, "us-east-1"))
    assert admin.ensure_topic(unique_name, 1, 168) is True
    assert admin.retention_hours(unique_name) == 168
    assert admin.partitions(unique_name) == 1
