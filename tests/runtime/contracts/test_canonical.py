"""Canonical and compact JSON are byte for byte what the standard encoder writes, on any document,
and a kept document holds its own length in memory, not the writer's buffer."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runtime.contracts.canonical import (
    canonical_digest,
    canonical_json,
    canonical_json_embedding,
    canonical_json_list,
    compact_json,
)
from tests.support.json_documents import JSON, TEXT
from tests.support.json_documents import outcome as _outcome


def _standard(document, sort_keys):
    return json.dumps(document, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@settings(max_examples=1500, deadline=None)
@given(JSON, st.booleans())
def test_compact_json_writes_the_standard_encoders_bytes_or_raises_as_it_does(document, sort_keys):
    assert _outcome(compact_json, document, sort_keys=sort_keys) == _outcome(_standard, document, sort_keys)


@pytest.mark.parametrize("document", [
    {1: "int key"}, {"a": datetime(2026, 1, 1, tzinfo=UTC)}, {"a": (1, 2)}, {"a": {1, 2}}, {"a": b"x"},
    {"a": math.nan}, [math.inf, -math.inf], {"a": 2**64}, {"b": 1, "a": [1.5e-7, 3e17]},
])
def test_documents_orjson_writes_differently_take_the_standard_encoder(document):
    for sort_keys in (False, True):
        assert _outcome(compact_json, document, sort_keys=sort_keys) == _outcome(_standard, document, sort_keys)


def test_nesting_deeper_than_orjson_allows_is_written_as_the_standard_encoder_writes_it():
    deep: list = []
    for _ in range(400):
        deep = [deep]
    assert canonical_json(deep) == _standard(deep, True)
    assert canonical_json({"z": 1, "a": deep}) == _standard({"z": 1, "a": deep}, True)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_compact_json_with_a_default_writes_what_the_standard_encoder_with_it_writes(document):
    doc = {"at": datetime(2026, 1, 1, tzinfo=UTC), "items": [document, (1, "x")]}
    want = _outcome(lambda: json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))
    assert _outcome(compact_json, doc, default=str) == want
    assert _outcome(compact_json, document, default=str) == _outcome(_standard, document, False)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(TEXT, JSON, max_size=5), JSON, JSON)
def test_a_document_with_members_written_already_has_the_canonical_bytes_of_the_whole(head, value, other):
    parts = [_outcome(canonical_json, value), _outcome(canonical_json, other)]
    assume(all(isinstance(p, bytes) for p in parts))  # a value canonical_json refuses is never embedded
    whole = {**head, "record": value, "zz": other}
    got = _outcome(canonical_json_embedding, head, {"record": parts[0], "zz": parts[1]})
    assert got == _outcome(canonical_json, whole)


@settings(max_examples=500, deadline=None)
@given(st.lists(JSON, max_size=6))
def test_a_list_from_its_items_bytes_is_the_canonical_bytes_of_the_list(items):
    parts = [_outcome(canonical_json, item) for item in items]
    assume(all(isinstance(p, bytes) for p in parts))
    assert canonical_json_list(parts) == canonical_json(items)


def _held_per_document(make: Callable[[int], bytes], count: int = 2_000) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(count)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return (held - sys.getsizeof(kept)) / len(kept)


def test_kept_canonical_bytes_hold_their_length_not_the_writers_buffer() -> None:
    row = {"row": "edge", "from_id": "acc_000000000012", "first_event_id": "a" * 32, "last_ts_utc": "2026-01-01T00:00:00Z"}
    size = len(canonical_json(row))
    assert _held_per_document(lambda i: canonical_json({**row, "n": i})) < size + 100
    assert _held_per_document(lambda i: compact_json({**row, "n": i})) < size + 100
    assert _held_per_document(lambda i: canonical_json_embedding({"n": i}, {"row": canonical_json(row)})) < size + 100


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_the_digest_is_the_sha256_of_the_standard_encoders_canonical_bytes(document):
    expected = _outcome(lambda d: hashlib.sha256(_standard(d, True)).hexdigest(), document)
    assert _outcome(canonical_digest, document) == expected
