"""The bus records' JSON decoder: orjson where it can, and exactly what `json.loads` accepts and returns."""

from __future__ import annotations

import json

import pytest

from runtime.bus.json_codec import loads
from tests.runtime.rtdl.envelopes import engine_run


def test_engine_envelopes_decode_to_the_same_objects_as_the_standard_library():
    for _, envelope in engine_run(60):
        raw = json.dumps(envelope, sort_keys=True).encode()
        decoded = loads(raw)
        assert decoded == json.loads(raw)
        assert [type(v) for v in decoded["payload"].values()] == [type(v) for v in json.loads(raw)["payload"].values()]


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 123456789012345678901234567890}', b'"x"',
                                 '{"é": "ü"}'.encode()])
def test_documents_orjson_refuses_but_json_accepts_decode_as_json_does(raw):
    first, second = loads(raw), json.loads(raw)
    assert repr(first) == repr(second)


@pytest.mark.parametrize("raw", [b'{"a": 1', b"", b"\xff\xfe{}", b'{"a": 1} trailing'])
def test_what_is_not_json_raises_a_value_error_like_json(raw):
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads(raw)


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "9223372036854775807", "1e400",
                                    "0.1000000000000000055511151231257827"])
def test_integers_beyond_64_bits_and_huge_numbers_keep_their_json_type_and_value(number):
    raw = f'{{"a": {number}}}'.encode()
    assert repr(loads(raw)) == repr(json.loads(raw))
    assert repr(loads(raw.decode())) == repr(json.loads(raw))


@pytest.mark.parametrize("raw", ["18446744073709551616", " -18446744073709551616", "[18446744073709551616]",
                                 "[1, 18446744073709551616]", '{"a":\n\t-18446744073709551617}', '{"a": [0,\r 99999999999999999999]}'])
def test_an_integer_beyond_64_bits_wherever_json_allows_a_value_keeps_its_json_type(raw):
    assert repr(loads(raw.encode())) == repr(json.loads(raw))


def test_long_digit_runs_inside_strings_do_not_send_the_document_to_the_walk(monkeypatch):
    import runtime.bus.json_codec as codec

    def walked(document):
        raise AssertionError("walked a document whose long digit runs are all inside strings")

    monkeypatch.setattr(codec, "_has_huge_float", walked)
    raw = json.dumps({"sha": "ab" + "1234567890" * 3, "ids": ["x12345678901234567890123", "-12345678901234567890"],
                      "n": 12}).encode()
    assert loads(raw) == json.loads(raw)


@pytest.mark.parametrize("text", ["a:12345678901234567890", "[12345678901234567890", "b, 12345678901234567890"])
def test_a_string_that_looks_like_a_value_position_is_walked_and_still_decodes_as_json_does(text):
    raw = json.dumps({"s": text, "f": 1.5e300}).encode()
    assert repr(loads(raw)) == repr(json.loads(raw))
