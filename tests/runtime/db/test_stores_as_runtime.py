"""Every store does its normal work through the runtime role's own connection (least privilege
takes nothing a store needs)."""

from __future__ import annotations

import uuid

from runtime.bus.kinesis import KinesisCheckpoints
from runtime.ig.store import AdmissionStore, QuarantineRow, ReceiptRow
from runtime.sr.lease import LeaseStore
from runtime.wsp.checkpoint import WspCheckpoint


def test_ig_admission_store_claims_publishes_commits_and_releases(runtime_dsn: str) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    kept, dropped, published = (run, "traffic", "e1"), (run, "traffic", "e2"), (run, "traffic", "e3")
    store = AdmissionStore(runtime_dsn)
    store.open()
    try:
        claims = store.claim([kept, dropped, published], ["h1", "h2", "h3"])
        assert all(c.claimed for c in claims.values())
        store.release([dropped], [])
        store.mark_published({published: {"topic": "t", "partition": 0, "offset": 1}})
        receipt = {"receipt_id": f"r-{uuid.uuid4().hex}", "platform_run_id": run, "event_class": "traffic",
                   "event_id": "e1", "outcome": "ADMIT", "payload_hash": "h1"}
        quarantined = QuarantineRow(f"q-{uuid.uuid4().hex}", run, None, None, "SCHEMA_INVALID", "quarantine/key", 0)
        store.commit({kept: (receipt["receipt_id"], {"topic": "t", "partition": 0, "offset": 0})},
                     [ReceiptRow(receipt, "receipts/key", 0)], [quarantined])
        assert store.receipts_by_id([receipt["receipt_id"]])[receipt["receipt_id"]]["event_id"] == "e1"
        assert store.outcome_counts(run)[0] == {"ADMIT": 1}
        assert store.quarantine_counts(run) == ({"SCHEMA_INVALID": 1}, ["quarantine/key"])
        again = store.claim([dropped], ["h2"])
        assert again[dropped].claimed  # the released claim was deleted
    finally:
        store.close()


def test_sr_lease_store_acquires_releases_and_clears(runtime_dsn: str) -> None:
    scenario = uuid.uuid4().hex
    with LeaseStore(runtime_dsn) as leases:
        lease = leases.acquire(scenario, "key", "run", "holder-a", 60)
        assert leases.acquire(scenario, "key", "run", "holder-a", 60).holder == "holder-a"  # renew: an UPDATE
        leases.release(lease)
        assert leases.current(scenario) is None
        leases.acquire(scenario, "key", "run", "holder-b", 60)
        assert leases.clear(scenario)


def test_wsp_checkpoint_starts_advances_restarts_and_finishes(runtime_dsn: str) -> None:
    run, scenario = f"run-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    checkpoint = WspCheckpoint(runtime_dsn)
    try:
        checkpoint.start(run, scenario, {"ready": 1})
        checkpoint.advance(run, scenario, "out", 10)
        checkpoint.advance(run, scenario, "out", 5)  # never backwards
        assert checkpoint.rows_sent(run, scenario) == {"out": 10}
        checkpoint.start(run, scenario, {"ready": 1}, restart=True)
        assert checkpoint.rows_sent(run, scenario) == {}
        checkpoint.finish(run, scenario, "COMPLETED")
        assert checkpoint.status(run, scenario) == "COMPLETED"
    finally:
        checkpoint.close()


def test_kinesis_checkpoints_move_forward(runtime_dsn: str) -> None:
    checkpoints = KinesisCheckpoints(runtime_dsn, f"consumer-{uuid.uuid4().hex[:8]}")
    try:
        checkpoints.save("stream", "shard-0", 7)
        checkpoints.save("stream", "shard-0", 3)
        assert checkpoints.load("stream") == {"shard-0": "7"}
    finally:
        checkpoints.close()
