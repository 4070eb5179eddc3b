"""The compiled event checks agree with jsonschema: same accept/reject on valid and broken documents."""

from __future__ import annotations

import copy
import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from runtime.contracts.compiled import Unsupported, compile_predicate, compile_schema
from runtime.contracts.schemas import compiled_validator, load_schema
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
        compile_schema({"type": "object", "anyOf": [{"type": "object"}]})
    with pytest.raises(Unsupported):
        compile_schema({"type": "object", "additionalProperties": 3})


def _deep_mutations(doc: Any, depth: int = 3) -> list[Any]:
    """`doc` with one value anywhere (to `depth`) removed, replaced by an odd value, or (in an
    array) doubled: the shapes the new keywords (oneOf, uniqueItems, min/maxProperties, a schema
    for additionalProperties) decide on, nested as the lane payloads nest them."""
    out: list[Any] = []
    if depth == 0:
        return out
    if isinstance(doc, dict):
        for key in list(doc):
            gone = copy.deepcopy(doc)
            gone.pop(key)
            out.append(gone)
            for value in [*ODD_VALUES, {"k": 1}, {"k": [1]}, {"a": 1, "b": "x", "c": None}]:
                changed = copy.deepcopy(doc)
                changed[key] = value
                out.append(changed)
            for inner in _deep_mutations(doc[key], depth - 1):
                changed = copy.deepcopy(doc)
                changed[key] = inner
                out.append(changed)
    elif isinstance(doc, list) and doc:
        out += [[*doc, copy.deepcopy(doc[0])], [*doc, 1, 1.0], [*doc, True, 1], []]
        for inner in _deep_mutations(doc[0], depth - 1):
            out.append([inner, *copy.deepcopy(doc[1:])])
    return out


def _lane_documents() -> dict[str, list[dict[str, Any]]]:
    """Real lane payloads (as DF and AL write them), one decision with reasons and feature values."""
    from tests.runtime.decision.lane_bus import lane_items

    out: dict[str, list[dict[str, Any]]] = {}
    for _, _, item in lane_items(RUN, 2):
        out.setdefault(item["event_class"], []).append(item["payload"])
    reasoned = copy.deepcopy(out["decision_response"][0])
    reasoned["reasons"] = [{"code": "HIGH_AMOUNT", "rule_id": "high_amount", "weight": 0.5,
                            "values": {"amount": 12.5, "flag": True, "label": "x", "none": None}}]
    reasoned["posture_mark"] = "AMBER_MARK"
    out["decision_response"].append(reasoned)
    return out


@pytest.mark.parametrize("event_class", ["decision_response", "action_intent", "action_outcome"])
def test_compiled_lane_payload_checks_agree_with_jsonschema_on_real_and_mutated_records(event_class):
    name = f"events/payloads/{event_class}.schema.json"
    schema = load_schema(name)
    check, predicate, slow = compile_schema(schema), compile_predicate(schema), compiled_validator(name)
    docs = []
    for doc in _lane_documents()[event_class]:
        docs += [doc, *_deep_mutations(doc)]
    valid = 0
    for doc in docs:
        expected = slow.is_valid(doc)
        assert (check(doc, "(root)") is None) is expected, doc
        assert predicate(doc) is expected, doc
        valid += expected
    assert valid >= 3 and len(docs) - valid >= 100  # both answers are exercised


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "array", "uniqueItems": True}, [[], ["a", "b"], [1, True], [[1], [2]], [{"a": 1}, {"a": 2}]],
     [["a", "a"], [1, 1.0], [[1], [1.0]], [{"a": 1}, {"a": 1.0}]]),
    ({"oneOf": [{"type": "null"}, {"type": "string", "minLength": 2}]}, [None, "ab"], ["a", 1, []]),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, [1.5], [1, 2.0, "x"]),
    ({"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "string"}},
     [{"a": "x"}, {"a": "x", "b": "y"}], [{}, {"a": 1}, {"a": "x", "b": "y", "c": "z"}]),
    ({"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
     [{"n": 1, "s": "x"}, {"n": 2}], [{"n": "x"}, {"s": 1}]),
])
def test_new_keywords_decide_as_jsonschema_does(schema, good, bad):
    from runtime.contracts.schemas import validator_for

    check, predicate, slow = compile_schema(schema), compile_predicate(schema), validator_for(schema)
    for doc, ok in [(d, True) for d in good] + [(d, False) for d in bad]:  # by position: [1, 1.0] == [1, True]
        assert slow.is_valid(doc) is ok, doc
        assert (check(doc, "(root)") is None) is ok, doc
        assert predicate(doc) is ok, doc


def test_fast_check_names_the_first_problem_of_a_lane_record():
    from runtime.contracts.compiled import fast_check

    check = fast_check("events/payloads/decision_response.schema.json")
    doc = copy.deepcopy(_lane_documents()["decision_response"][-1])
    assert check(doc) is None
    doc["reasons"][0]["values"] = {}
    assert check(doc) == "reasons/0/values: should have at least 1 properties"
    doc = copy.deepcopy(_lane_documents()["decision_response"][0])
    doc["actions"] = ["approve", "approve"]
    assert check(doc) == "actions: has non-unique elements"


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


# --- generated predicates: the same decision as the closures, the closures' own message --------------

RUN = "platform_20260101T000000Z"
HOSTILE = [None, True, False, 0, -1, 1, 2, 1.0, -0.0, 0.5, 3.0, 2**63, 2**70, -(2**70), 1e16, 1e300, 5e-324, "", " ",
           "x", "é", "\x00", "a\n", "\u2028", "GB", "GBP", "gbp", "GBPX", "0" * 31, "0" * 32, "0" * 33, "A" * 32,
           "f" * 32 + "\n", "a" * 64, "a" * 65, "a" * 128, "a" * 129, "a" * 70_000, "2026-01-01T00:00:00Z",
           "2026-01-01T00:00:00.123456+05:30", "2026-02-30T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01T24:00:00Z",
           "platform_20260101T000000Z", "platform_20260101T000000Z\n", "v1", "v2", "auth_request", "traffic_fraud",
           "context_arrival_events", [], [1], ["x"], [{}], {}, {"a": 1}, {"event_class": "traffic_fraud"}]


class _Str(str):
    """A str that is not exactly a str (const/enum compare the exact type)."""


def _mutate(doc, rng, depth=0):
    """`doc` with one random change somewhere inside it (drop, add, replace, retype, nest)."""
    if isinstance(doc, dict) and doc and (depth == 0 or rng.random() < 0.7):
        key = rng.choice(sorted(doc))
        out = dict(doc)
        roll = rng.random()
        if roll < 0.15:
            out.pop(key)
        elif roll < 0.25:
            out[rng.choice(["unexpected", "payload_hash", "x", key + "_"])] = rng.choice(HOSTILE)
        elif roll < 0.6 and isinstance(doc[key], (dict, list)):
            out[key] = _mutate(doc[key], rng, depth + 1)
        elif roll < 0.7 and isinstance(doc[key], str):
            out[key] = rng.choice([_Str(doc[key]), doc[key] + rng.choice(["\n", "x", "é"]), doc[key][:-1], doc[key].upper()])
        else:
            out[key] = rng.choice(HOSTILE)
        return out
    if isinstance(doc, list) and doc:
        out = list(doc)
        i = rng.randrange(len(out))
        out[i] = _mutate(out[i], rng, depth + 1) if rng.random() < 0.5 else rng.choice(HOSTILE)
        return out
    return rng.choice(HOSTILE)


def _random_documents(seed, base, count):
    rng = random.Random(seed)
    out = [base]
    for _ in range(count):
        doc = base
        for _ in range(rng.choice([1, 1, 2, 3])):
            doc = _mutate(doc, rng)
        out.append(doc)
    return out


def _all_event_schemas():
    root = Path(__file__).resolve().parents[3] / "schemas" / "events"
    return sorted(str(p.relative_to(root.parent)) for p in root.rglob("*.schema.json"))


@pytest.mark.parametrize("name", _all_event_schemas())
def test_generated_predicate_accepts_exactly_what_the_compiled_check_accepts(name):
    schema = load_schema(name)
    try:
        check = compile_schema(schema)
    except Unsupported:  # outside the subset: neither is compiled, jsonschema checks it
        with pytest.raises(Unsupported):
            compile_predicate(schema)
        return
    predicate = compile_predicate(schema)
    event_class = name.rsplit("/", 1)[1].split(".")[0]
    if name == "events/envelope.schema.json":
        base = envelope(RUN, 7)
    elif event_class in OUTPUT_OF:
        base = envelope(RUN, 7, event_class)["payload"]
    else:  # payloads IG never admits: random shapes, mostly invalid, still the same answer
        base = {"decision_id": "0" * 32, "platform_run_id": RUN, "event_class": "traffic_fraud"}
    docs = _random_documents(zlib.crc32(name.encode()), base, 3000) + HOSTILE + [_Str("x")]
    accepted = 0
    for doc in docs:
        assert predicate(doc) is (check(doc, "(root)") is None), doc
        accepted += predicate(doc)
    if event_class in OUTPUT_OF or event_class == "envelope":
        assert accepted >= 20  # the mutations cover valid documents too, not only broken ones


def _reference_check(gate, index, event, measure):
    """The gate's check as it was before predicates and orjson: closures walk every document, the
    standard encoder writes every byte, and `measure` sizes the event before anything else."""
    import hashlib
    import json

    def canonical(doc):
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    envelope_check = compile_schema(load_schema("events/envelope.schema.json"))
    limit = gate.limits.max_event_bytes
    if measure:
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size > limit:
            return ("EVENT_TOO_LARGE", f"event {index} is {size} bytes, over IG_MAX_EVENT_BYTES={limit}; only its size,"
                    " sha256 and an excerpt are kept", None, None, None)
    if not isinstance(event, dict):
        return ("ENVELOPE_NOT_OBJECT", f"event {index} is a {type(event).__name__}, not an object", None, None, None)
    if "event_id" not in event:
        return ("EVENT_ID_MISSING", "the envelope has no event_id", None, None, None)
    event_class = event.get("event_class")
    if not isinstance(event_class, str) or event_class not in gate._payloads:
        return ("UNKNOWN_EVENT_CLASS", f"event_class {event_class!r} is not one of {sorted(gate._payloads)}", None, None, None)
    allowed = gate._event_types.get(event_class)
    if allowed is not None and isinstance(event.get("event_type"), str) and event["event_type"] not in allowed:
        return ("EVENT_TYPE_NOT_OF_CLASS", f"event_type {event.get('event_type')!r:.80} is not one of"
                f" {event_class}: {sorted(allowed)}", None, None, None)
    problem = envelope_check(event, "(root)")
    if problem:
        return ("ENVELOPE_INVALID", problem, None, None, None)
    if event["platform_run_id"] != gate.platform_run_id:
        return ("RUN_PIN_MISMATCH", f"platform_run_id {event['platform_run_id']} is not the pinned run {gate.platform_run_id}",
                None, None, None)
    problem = compile_schema(load_schema(f"events/payloads/{event_class}.schema.json"))(event["payload"], "payload")
    if problem:
        return ("PAYLOAD_INVALID", problem, None, None, None)
    digest = hashlib.sha256(canonical(event["payload"])).hexdigest()
    value = canonical({**event, "payload_hash": digest})
    if len(value) > limit:
        return ("EVENT_TOO_LARGE", f"{len(value)} bytes exceed IG_MAX_EVENT_BYTES={limit}; only its size, sha256 and an"
                " excerpt are kept", None, None, None)
    return (None, None, (event["platform_run_id"], event_class, event["event_id"]), digest, value)


def _gate():
    from runtime.ig.domain import EventValidator, Limits
    from runtime.settings import load_settings

    return EventValidator(load_settings({"FP_ENV": "local_parity"}).registry, RUN, Limits(500, 4 << 20, 65536))


def _same_as_before(gate, i, event, measure):
    got = gate.check(i, event, measure=measure)
    assert (got.error_code, got.error_message, got.identity, got.payload_hash, got.value) == \
           _reference_check(gate, i, event, measure), event
    return got.error_code


@pytest.mark.parametrize("event_class", sorted(OUTPUT_OF))
def test_gate_decides_and_explains_every_mutated_envelope_as_it_did_before_predicates(event_class):
    gate = _gate()
    codes = set()
    for i, event in enumerate(_random_documents(len(event_class), envelope(RUN, 3, event_class), 1500)):
        for measure in (False, True):
            codes.add(_same_as_before(gate, i, event, measure))
    assert {None, "ENVELOPE_INVALID", "PAYLOAD_INVALID", "EVENT_TOO_LARGE"} <= codes, codes


@pytest.mark.parametrize(("in_payload", "in_envelope"), [
    ({}, {}), ({"note": 1.5e-7}, {}), ({"note": "é\x7f\n"}, {}), ({}, {"payload_hash": "0" * 64}), ({}, {"x": 1})])
def test_gate_sizes_events_around_the_limit_as_it_did_before(in_payload, in_envelope):
    gate = _gate()
    messages = set()
    for pad in range(65536 - 800, 65536 - 400):
        event = {**envelope(RUN, 5), **in_envelope}
        event["payload"] = {**event["payload"], **in_payload, "pad": "x" * pad}
        for measure in (False, True):
            _same_as_before(gate, 0, event, measure)
            got = gate.check(0, event, measure=measure)
            messages.add((got.error_code, (got.error_message or "").startswith("event ")))
    if not in_envelope:  # valid below the limit, then over it by the publish value, then by the event itself
        assert messages == {(None, False), ("EVENT_TOO_LARGE", False), ("EVENT_TOO_LARGE", True)}, messages


def test_gate_sizes_an_event_it_cannot_encode_before_failing_as_it_did_before():
    gate = _gate()
    small, large = envelope(RUN, 5), envelope(RUN, 6)
    small["payload"]["note"] = "\ud800"
    large["payload"]["note"] = "\ud800" + "x" * 70_000
    assert gate.check(0, large, measure=True).error_code == "EVENT_TOO_LARGE"
    with pytest.raises(UnicodeEncodeError):
        gate.check(0, small, measure=True)


def test_predicate_refuses_a_schema_outside_the_compiled_subset():
    with pytest.raises(Unsupported):
        compile_predicate({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}})
