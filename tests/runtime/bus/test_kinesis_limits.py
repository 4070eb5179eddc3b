"""PutRecords batching stays within the Kinesis service limits (500 records, 5 MiB per call)."""

from __future__ import annotations

from runtime.bus.kinesis import MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, plan_batches
from runtime.bus.port import OutboundRecord


def test_batches_hold_at_most_500_records() -> None:
    records = [OutboundRecord("s", "k", b"x") for _ in range(1201)]
    batches = plan_batches(records)
    assert [len(b) for b in batches] == [500, 500, 201]
    assert [i for b in batches for i in b] == list(range(1201))


def test_batches_hold_at_most_5_mib_including_partition_keys() -> None:
    key = "k" * 100
    value = b"v" * (1024 * 1024 - 100)  # exactly 1 MiB with its key
    batches = plan_batches([OutboundRecord("s", key, value) for _ in range(11)])
    assert [len(b) for b in batches] == [5, 5, 1]
    for batch in batches:
        assert len(batch) <= MAX_RECORDS_PER_CALL
        assert len(batch) * (len(value) + len(key)) <= MAX_BYTES_PER_CALL


def test_no_batches_for_no_records() -> None:
    assert plan_batches([]) == []
