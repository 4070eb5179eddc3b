"""The compiled event checks agree with jsonschema: same accept/reject on valid and broken documents."""

from __future__ import annotations

import copy

import pytest

from runtime.contracts.schemas import compiled_validator, load_schema
from runtime.ig.compiled import Unsupported, compile_schema
from tests.support.events import OUTPUT_OF, envelope

ODD_VALUES = [None, True, False, 0, 1, 1.0, 1.5, -3, "", "x", "ABC", "GB", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00",
              "2026-01-01T00:00:00+01:00", "2026-01-01t00:00:00.5z", "0" * 32, "a" * 200, [], {}, ["x"]]


def _mutations(doc: dict) -> list[dict]:
    out = []
    for key in list(doc):
        gone = copy.deepcopy(doc)
        gone.pop(key)
        out.append(gone)
        for value in ODD_VALUES:
            changed = copy.deepcopy(doc)
            changed[key] = value
            out.append(changed)
    extra = copy.deepcopy(doc)
    extra["unexpected"] = 1
    out.append(extra)
    return out


@pytest.mark.parametrize("event_class", sorted(OUTPUT_OF))
def test_compiled_payload_check_agrees_with_jsonschema(event_class):
    name = f"events/payloads/{event_class}.schema.json"
    fast, slow = compile_schema(load_schema(name)), compiled_validator(name)
    docs = [envelope("platform_20260101T000000Z", 1, event_class)["payload"]]
    docs += _mutations(docs[0])
    for doc in docs:
        assert (fast(doc, "payload") is None) == slow.is_valid(doc), doc


def test_compiled_envelope_check_agrees_with_jsonschema():
    name = "events/envelope.schema.json"
    fast, slow = compile_schema(load_schema(name)), compiled_validator(name)
    valid = envelope("platform_20260101T000000Z", 1)
    docs = [valid, *_mutations(valid)]
    assert sum(slow.is_valid(d) for d in docs) >= 5  # some mutations stay valid
    for doc in docs:
        assert (fast(doc, "(root)") is None) == slow.is_valid(doc), doc


def test_unsupported_keywords_are_not_compiled():
    with pytest.raises(Unsupported):
        compile_schema({"type": "object", "oneOf": [{"type": "object"}]})
