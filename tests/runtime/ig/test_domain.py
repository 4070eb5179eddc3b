"""The gate's sizes, publish bytes, stored JSON text and push answers are exactly what the standard JSON
encoders give, on any document (the fast paths through orjson change no byte)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.contracts.canonical import sha256_hex
from runtime.ig.domain import canonical_value, raw_size
from tests.support.events import envelope
from tests.support.json_documents import JSON, TEXT
from tests.support.json_documents import outcome as _outcome


def _standard_value(event, digest):
    return json.dumps({**event, "payload_hash": digest}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _standard_size(event):
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(TEXT, JSON, max_size=6), TEXT)
def test_publish_bytes_and_event_size_are_the_standard_encoders(payload, producer):
    event = {**envelope("platform_20260101T000000Z", 1), "producer": producer, "payload": payload}
    try:
        payload_bytes = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (UnicodeEncodeError, ValueError):
        payload_bytes = None
    if payload_bytes is not None:
        digest = sha256_hex(payload_bytes)
        assert _outcome(canonical_value, event, payload_bytes, digest) == _outcome(_standard_value, event, digest)
    assert _outcome(raw_size, event) == _outcome(_standard_size, event)


@settings(max_examples=1000, deadline=None)
@given(JSON)
def test_the_admission_stores_json_text_is_the_standard_encoders_ascii_text(document):
    from runtime.ig.store import _j

    assert _outcome(_j, document) == _outcome(lambda: json.dumps(document, separators=(",", ":")))


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_push_answers_are_the_bytes_starlette_writes(document):
    from fastapi.responses import JSONResponse

    from runtime.ig.app import PushResponse

    content = {"platform_run_id": "platform_20260101T000000Z", "counts": {"ADMIT": 1}, "results": [document]}
    assert _outcome(lambda: PushResponse(content).body) == _outcome(lambda: JSONResponse(content).body)


def test_publish_bytes_of_an_event_without_a_payload_object_are_the_standard_encoders():
    for payload in ({}, None):
        event = {**envelope("platform_20260101T000000Z", 2), "payload": payload}
        if payload is None:
            event.pop("payload")
        assert canonical_value(event, b"{}", "0" * 64) == _standard_value(event, "0" * 64)
