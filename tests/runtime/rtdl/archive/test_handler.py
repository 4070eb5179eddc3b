"""ArchiveWriter under the stream-handler contract, on the moto server's S3 API."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.rtdl.archive.handler import ArchiveHandler
from runtime.rtdl.archive.store import index_rows, read_records
from runtime.store.s3 import S3Store
from runtime.worker.handler import StreamHandler
from tests.runtime.worker.contract import StreamHandlerContract, WorkerEnv, envelope

TOPICS = ["archive.traffic", "archive.context"]


class TestArchiveHandlerContract(StreamHandlerContract):
    """Every admitted record lands once in an immutable, indexed archive object."""

    @pytest.fixture(autouse=True)
    def _store(self, moto_endpoint: str, bucket: str) -> None:
        from runtime.store.s3 import s3_client

        self.store = S3Store(bucket, client=s3_client(moto_endpoint, "us-east-1"))

    def make_handler(self, env: WorkerEnv) -> StreamHandler:
        return ArchiveHandler(TOPICS, self.store, f"archive/{env.platform_run_id}/", env.platform_run_id)

    def inputs(self, env: WorkerEnv) -> list[tuple[str, str, dict[str, Any]]]:
        return [(TOPICS[i % 2], f"k{i % 7}", envelope(env.platform_run_id, "traffic_fraud", f"{i:032x}", {"n": i}))
                for i in range(40)]

    def poison(self, env: WorkerEnv) -> tuple[str, str, dict[str, Any]]:
        # Nothing admitted is refused by the archive; an envelope without a payload object is
        # refused by the worker before the handler sees it.
        bad = envelope(env.platform_run_id, "traffic_fraud", "f" * 32, {})
        bad["payload"] = "not an object"
        return (TOPICS[0], "k1", bad)

    def state(self, env: WorkerEnv) -> Any:
        with env.db.transaction() as conn:
            rows = index_rows(conn, env.platform_run_id)
        records = sorted((r.eb_ref.topic, int(r.eb_ref.partition), int(r.eb_ref.offset), r.value)
                         for r in read_records(self.store, rows))
        return records

    def test_the_archive_holds_every_record_once_with_its_exact_bytes(self, env: WorkerEnv) -> None:
        self.publish(env, self.inputs(env))
        self.drain(env)
        archived = self.state(env)
        on_bus = sorted((r.eb_ref.topic, int(r.eb_ref.partition), int(r.eb_ref.offset), r.value)
                        for t in TOPICS for r in env.broker.records(t))
        assert archived == on_bus
