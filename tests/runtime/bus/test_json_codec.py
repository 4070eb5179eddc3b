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
