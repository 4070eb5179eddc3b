"""IG under a real uvicorn: in a thread of the test process, or as a separate process to kill.

`python -m tests.support.ig_server` reads its wiring from the environment (FP_* plus
FP_KAFKA_BOOTSTRAP, IG_TEST_BUCKET, IG_TEST_PORT) and serves with the test Kafka publisher; the
lead swaps in runtime.bus.factory for production (`python -m runtime ig serve`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from runtime.ig.app import create_app
from runtime.ig.settings import IgSettings, load_ig_settings
from runtime.paths import REPO_ROOT
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


class IgProcess:
    """IG as its own process (uvicorn), so it can be SIGKILLed."""

    def __init__(self, env: dict[str, str], port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.ig_server"], cwd=REPO_ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/ops/health", headers={"X-IG-Api-Key": self.env["FP_IG_API_KEY"]},
                             timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"IG did not start; see {self.log}")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


    def rss_kib(self) -> int:
        """Resident memory of the IG process."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        """Kill the process if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def main() -> None:
    settings: IgSettings = load_ig_settings()
    store = S3Store(os.environ["IG_TEST_BUCKET"], client=s3_client(settings.base.object_store_endpoint, "us-east-1"))
    publisher = RealKafkaPublisher(os.environ["FP_KAFKA_BOOTSTRAP"])
    app = create_app(settings, publisher, receipts_store=store, quarantine_store=store)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["IG_TEST_PORT"]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
