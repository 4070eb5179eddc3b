"""Receipt ids are random version 4 UUIDs in hex, exactly as `uuid.uuid4().hex` writes them."""

from __future__ import annotations

import os
import uuid

from runtime.ig.receipts import new_receipt_id, new_receipt_ids, uuid4_hex


def test_receipt_id_bits_are_uuid4s_for_any_random_bytes():
    for raw in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(5000))]:
        assert uuid4_hex(raw) == uuid.UUID(bytes=raw, version=4).hex


def test_fresh_receipt_ids_are_distinct_version_4_uuids():
    ids = {new_receipt_id() for _ in range(1000)}
    assert len(ids) == 1000
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert (len(rid), parsed.version, parsed.variant, parsed.hex) == (32, 4, uuid.RFC_4122, rid)


def test_receipt_ids_made_together_are_distinct_version_4_uuids_across_calls():
    batches = [new_receipt_ids(n) for n in (0, 1, 500, 500)]
    assert [len(b) for b in batches] == [0, 1, 500, 500]
    ids = [rid for b in batches for rid in b]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert (len(rid), parsed.version, parsed.variant, parsed.hex) == (32, 4, uuid.RFC_4122, rid)
