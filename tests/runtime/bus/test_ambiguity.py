"""A publish whose outcome is unknown is PublishAmbiguous, never assumed landed or failed.

Kafka: a private Tansu broker is stopped after the topic is known, so deliveries time out.
Kinesis: a loopback server answers the stream check but never answers PutRecords (a read timeout
after the request was sent).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_tansu
from runtime.bus.kafka import KafkaAdmin, KafkaPublisher
from runtime.bus.kinesis import KinesisPublisher, kinesis_client
from runtime.bus.port import EbRef, OutboundRecord
from runtime.errors import PublishAmbiguous


def test_kafka_delivery_timeout_is_publish_ambiguous(tmp_path: Path, unique_name: str) -> None:
    proc = start_tansu("127.0.0.1", free_port(), tmp_path / "tansu")
    bootstrap = f"127.0.0.1:{proc.port}"
    stopped = False
    try:
        KafkaAdmin(bootstrap).ensure_topic(unique_name, 1, 1)
        publisher = KafkaPublisher(bootstrap, delivery_timeout_ms=3000)
        [first] = publisher.publish([OutboundRecord(unique_name, "k", b"{}")])
        assert isinstance(first, EbRef)
        stop_pid(proc.pid, proc.argv)
        stopped = True
        results = publisher.publish([OutboundRecord(unique_name, "k", b"{}") for _ in range(3)])
        assert all(isinstance(r, PublishAmbiguous) for r in results), results
        assert all(r.code == "PUBLISH_AMBIGUOUS" for r in results if isinstance(r, PublishAmbiguous))
    finally:
        if not stopped:
            stop_pid(proc.pid, proc.argv)


@pytest.fixture
def silent_kinesis() -> Iterator[str]:
    """A loopback HTTP server: DescribeStreamSummary answers, PutRecords hangs."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            request = conn.recv(65536)
            if b"PutRecords" in request:
                held.append(conn)  # read the request, never answer
                continue
            body = b'{"StreamDescriptionSummary": {"StreamName": "s", "StreamStatus": "ACTIVE", "OpenShardCount": 1}}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_kinesis_put_records_without_an_answer_is_publish_ambiguous(silent_kinesis: str) -> None:
    publisher = KinesisPublisher(kinesis_client(silent_kinesis, "us-east-1", read_timeout_s=1.0))
    results = publisher.publish([OutboundRecord("s", "k", b"{}"), OutboundRecord("s", "k2", b"{}")])
    assert all(isinstance(r, PublishAmbiguous) for r in results), results
