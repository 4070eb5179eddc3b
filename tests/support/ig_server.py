"""IG under a real uvicorn: in a thread of the test process, or as a separate process to kill.

`python -m tests.support.ig_server` reads its wiring from the environment (FP_* plus
FP_KAFKA_BOOTSTRAP, IG_TEST_BUCKET, IG_TEST_PORT) and serves with the test Kafka publisher; the
lead swaps in runtime.bus.factory for production (`python -m runtime ig serve`).
"""

from __future__ import annotations

import os
import threading
import time

import uvicorn

from runtime.ig.app import create_app
from runtime.ig.settings import IgSettings, load_ig_settings
from runtime.store.s3 import S3Store, s3_client
from tests.support.kafka_bus import RealKafkaPublisher


class ThreadServer:
    """uvicorn serving an app in a background thread, on 127.0.0.1:port."""

    def __init__(self, app: object, port: int):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def main() -> None:
    settings: IgSettings = load_ig_settings()
    store = S3Store(os.environ["IG_TEST_BUCKET"], client=s3_client(settings.base.object_store_endpoint, "us-east-1"))
    publisher = RealKafkaPublisher(os.environ["FP_KAFKA_BOOTSTRAP"])
    app = create_app(settings, publisher, receipts_store=store, quarantine_store=store)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["IG_TEST_PORT"]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
