"""One publish per identity under any concurrency, inside one IG process and across IG processes.

The claim in PostgreSQL is the only arbiter: a claim belongs to a live IG process (advisory lock on
its owner key); nobody else publishes it while that process lives; a loser gets 503
IG_EVENT_IN_FLIGHT and, once the identity is ADMITTED, DUPLICATE.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from controller.substrate.processes import free_port
from runtime.ig.domain import Action, decide, payload_hash
from runtime.ig.store import AdmissionStore, ClaimLost, ReceiptRow
from tests.runtime.ig.conftest import API_KEY
from tests.runtime.ig.test_push import run_records
from tests.support.events import envelope
from tests.support.ig_server import IgProcess


def _identity(run_id: str, n: int) -> tuple[tuple[str, str, str], str]:
    e = envelope(run_id, n)
    return (run_id, "traffic_fraud", e["event_id"]), payload_hash(e["payload"])


def _two_processes(dsn: str) -> tuple[AdmissionStore, AdmissionStore]:
    """The admission stores of two IG processes on one database."""
    a, b = AdmissionStore(dsn), AdmissionStore(dsn)
    a.open()
    b.open()
    return a, b


def test_a_claim_of_a_live_process_is_never_taken_over_and_a_dead_ones_is(migrated_dsn, run_id):
    ident, h = _identity(run_id, 1)
    a, b = _two_processes(migrated_dsn)
    try:
        assert a.claim([ident], [h])[ident].claimed
        seen = b.claim([ident], [h])[ident]
        assert not seen.held and seen.existing is not None and seen.existing.state == "PENDING"
        assert decide(h, seen.claimed, seen.existing, held=seen.held) is Action.IN_FLIGHT
        a.close()  # process A is gone: its owner lock with it
        taken = b.claim([ident], [h])[ident]
        assert taken.taken and decide(h, taken.claimed, taken.existing, held=taken.held) is Action.REPUBLISH
    finally:
        b.close()


def test_a_holder_whose_claim_was_taken_over_cannot_commit(migrated_dsn, run_id):
    ident, h = _identity(run_id, 2)
    a, b = _two_processes(migrated_dsn)
    try:
        assert a.claim([ident], [h])[ident].claimed
        a.owner.close()  # A's lock lost (e.g. its connection dropped) while its request is still running
        assert b.claim([ident], [h])[ident].taken
        receipt = {"receipt_id": "r" * 32, "platform_run_id": run_id, "event_class": ident[1], "event_id": ident[2],
                   "outcome": "ADMIT", "payload_hash": h, "eb_ref": {"offset": 1}}
        with pytest.raises(ClaimLost):
            a.commit({ident: ("r" * 32, {"offset": 1})}, [ReceiptRow(receipt, "k", 0)], [])
        with psycopg.connect(migrated_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s", (run_id,)).fetchone()[0] == 0
    finally:
        a.close()
        b.close()


def test_the_database_refuses_a_second_admit_receipt_for_one_identity(migrated_dsn, run_id):
    with psycopg.connect(migrated_dsn) as conn:
        insert = ("INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key,"
                  " batch_index, receipt) VALUES (%s, %s, 'traffic_fraud', 'e1', 'ADMIT', 'k', 0, '{}')")
        conn.execute(insert, ("a" * 32, run_id))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("b" * 32, run_id))


def _push_until_decided(client: httpx.Client, url: str, body: dict, *, attempts: int = 60) -> tuple[int, dict]:
    """Push like WSP: retry 503 and a failed connection with the same event ids (bounded); returns
    (503s seen, final answer). 48 threads share the client's pool, and once in a CI run a read met a
    socket the pool had closed under it (EBADF, with nothing wrong in either IG's log)."""
    retries = 0
    for _ in range(attempts):
        try:
            r = client.post(url, json=body)
        except httpx.TransportError:
            time.sleep(random.uniform(0.01, 0.05))
            continue
        if r.status_code == 503:
            retries += 1
            assert r.json()["error"] in ("IG_EVENT_IN_FLIGHT", "IG_UNAVAILABLE"), r.text
            time.sleep(random.uniform(0.01, 0.05))
            continue
        assert r.status_code == 200, r.text
        return retries, r.json()
    raise AssertionError(f"still 503 or unreachable after {attempts} attempts")


def _counts(dsn: str, run_id: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT outcome, count(*) FROM ig_receipts WHERE platform_run_id = %s GROUP BY 1",
                                 (run_id,)).fetchall())


def _ig_env(run_id: str, port: int, dsn: str, moto: str, kafka: str, bucket: str) -> dict[str, str]:
    return {**os.environ, "FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto, "FP_DB_DSN": dsn, "FP_BUS": "kafka",
            "FP_KAFKA_BOOTSTRAP": kafka, "FP_IG_API_KEY": API_KEY, "REQUIRED_PLATFORM_RUN_ID": run_id,
            "IG_TEST_BUCKET": bucket, "IG_TEST_PORT": str(port)}


def test_concurrent_pushes_of_one_event_in_one_process_publish_it_once(client, run_id, migrated_dsn, kafka_bootstrap,
                                                                       bus_topics):
    events = [envelope(run_id, 100 + n) for n in range(5)]

    def one(event: dict) -> str:
        for _ in range(100):
            r = client.post("/v1/ingest/push", json=event)
            if r.status_code == 503:
                assert r.json()["error"] == "IG_EVENT_IN_FLIGHT", r.text
                time.sleep(0.01)
                continue
            return r.json()["results"][0]["outcome"]
        raise AssertionError("still 503")

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(one, [e for e in events for _ in range(20)]))
    assert outcomes.count("ADMIT") == 5 and outcomes.count("DUPLICATE") == 95
    assert _counts(migrated_dsn, run_id) == {"ADMIT": 5, "DUPLICATE": 95}
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 5)
    assert sorted(d["event_id"] for d in on_bus) == sorted(e["event_id"] for e in events)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_hammer_two_ig_processes_fifty_pushes_of_each_of_a_hundred_events(migrated_dsn, moto_endpoint, kafka_bootstrap,
                                                                          bus_topics, bucket, run_id, tmp_path):
    ports = [free_port(), free_port()]
    igs = [IgProcess(_ig_env(run_id, p, migrated_dsn, moto_endpoint, kafka_bootstrap, bucket), p, tmp_path / f"ig{p}.log")
           for p in ports]
    events = [envelope(run_id, 1000 + n) for n in range(100)]
    jobs = [(e, ports[k % 2]) for e in events for k in range(50)]
    random.Random(7).shuffle(jobs)
    for ig in igs:
        ig.start()
    try:
        with httpx.Client(headers={"X-IG-Api-Key": API_KEY}, timeout=60,
                          limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as http:
            def one(job: tuple[dict, int]) -> tuple[int, str]:
                event, port = job
                retries, answer = _push_until_decided(http, f"http://127.0.0.1:{port}/v1/ingest/push", event)
                return retries, answer["results"][0]["outcome"]

            started = time.monotonic()
            with ThreadPoolExecutor(48) as pool:
                answers = list(pool.map(one, jobs))
            elapsed = time.monotonic() - started
    finally:
        for ig in igs:
            ig.stop()
    outcomes = [a[1] for a in answers]
    retried = sum(a[0] for a in answers)
    print(f"hammer: {len(jobs)} pushes in {elapsed:.1f}s, {retried} answers of 503 retried")
    assert outcomes.count("ADMIT") == 100 and outcomes.count("DUPLICATE") == 4900, {o: outcomes.count(o) for o in set(outcomes)}
    assert _counts(migrated_dsn, run_id) == {"ADMIT": 100, "DUPLICATE": 4900}
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 100)
    assert len(on_bus) == 100 and sorted(d["event_id"] for d in on_bus) == sorted(e["event_id"] for e in events)
    with psycopg.connect(migrated_dsn) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM ig_admissions WHERE platform_run_id = %s GROUP BY 1",
                                   (run_id,)).fetchall())
    assert states == {"ADMITTED": 100}
    assert json.dumps(states)
