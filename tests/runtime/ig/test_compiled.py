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


def _event_fields() -> list:
    from tests.support.patterns import patterned_fields

    out = []
    for f in patterned_fields():
        if f.property_path and f.schema == "events/envelope.schema.json":
            out.append((None, f))
        elif f.property_path and f.schema.startswith("events/payloads/"):
            event_class = f.schema.rsplit("/", 1)[1].split(".")[0]
            if event_class in OUTPUT_OF:  # classes IG admits; plane-to-plane payloads (case_trigger, ...) never pass IG
                out.append((event_class, f))
    return out


@pytest.mark.parametrize(("event_class", "field"), _event_fields(),
                         ids=lambda x: x if isinstance(x, str) or x is None else "/".join(x.property_path))
@pytest.mark.parametrize("suffix", ["\n", "\r\n"])
def test_gate_refuses_a_trailing_newline_in_every_patterned_event_field(event_class, field, suffix):
    from runtime.contracts.schemas import compiled_validator
    from runtime.ig.domain import EventValidator, Limits
    from runtime.settings import load_settings
    from tests.support.patterns import sample

    run = "platform_20260101T000000Z"
    gate = EventValidator(load_settings({"FP_ENV": "local_parity"}).registry, run, Limits(500, 4 << 20, 65536))
    event = envelope(run, 1, event_class or "traffic_fraud")
    target = event if event_class is None else event["payload"]
    *parents, name = field.property_path
    for p in parents:
        target = target[p]
    good = target.get(name, sample(field.pattern))
    target[name] = good
    assert gate.check(0, copy.deepcopy(event)).valid, (name, good)
    target[name] = good + suffix
    checked = gate.check(0, event)
    assert not checked.valid and checked.error_code in ("ENVELOPE_INVALID", "PAYLOAD_INVALID"), (name, checked)
    schema = field.schema
    doc = event if event_class is None else event["payload"]
    assert not compiled_validator(schema).is_valid(doc)
    assert compile_schema(load_schema(schema))(doc, "(root)") is not None
