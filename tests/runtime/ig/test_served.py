"""IG as its own uvicorn process: oversized bodies are refused with 413 without the process growing."""

from __future__ import annotations

import os

import httpx

from controller.substrate.processes import free_port
from tests.runtime.ig.conftest import API_KEY
from tests.support.events import envelope
from tests.support.ig_server import IgProcess

MIB = 1024 * 1024


def test_oversized_bodies_are_413_and_memory_stays_flat(migrated_dsn, moto_endpoint, kafka_bootstrap, bus_topics, bucket,
                                                        run_id, tmp_path):
    port = free_port()
    env = {**os.environ, "FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": migrated_dsn,
           "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": kafka_bootstrap, "FP_IG_API_KEY": API_KEY,
           "REQUIRED_PLATFORM_RUN_ID": run_id, "IG_TEST_BUCKET": bucket, "IG_TEST_PORT": str(port)}
    ig = IgProcess(env, port, tmp_path / "ig.log")
    ig.start()
    url = f"http://127.0.0.1:{port}/v1/ingest/push"
    headers = {"X-IG-Api-Key": API_KEY}
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            assert client.post(url, json=envelope(run_id, 1)).status_code == 200  # warm: imports, pools, producer
            before = ig.rss_kib()

            def chunks():  # 32 MiB without a Content-Length
                block = b" " * MIB
                for _ in range(32):
                    yield block

            for _ in range(5):
                try:
                    r = client.post(url, content=chunks(), headers={"content-type": "application/json"})
                    assert r.status_code == 413
                except httpx.TransportError:
                    pass  # the server may close the connection once it has answered 413
                r = client.post(url, content=b"{" + b" " * (6 * MIB) + b"}", headers={"content-type": "application/json"})
                assert r.status_code == 413 and r.json()["error"] == "BODY_TOO_LARGE"
            after = ig.rss_kib()
            assert client.post(url, json=envelope(run_id, 2)).status_code == 200  # still serving
    finally:
        ig.stop()
    assert after - before < 16 * 1024, f"IG grew by {(after - before) // 1024} MiB on refused bodies"
