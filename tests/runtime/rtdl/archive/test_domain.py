"""Archive objects: the line encoding is byte for byte the standard library's, whatever the record."""

from __future__ import annotations

import json

import pytest

from runtime.bus.port import EbRef
from runtime.rtdl.archive.domain import _LINE_ENCODER, ArchiveBatch, ArchivedRecord, decode_object, encode_line

ALL_ASCII = "".join(chr(i) for i in range(128))


@pytest.mark.parametrize("key", [None, "0123456789abcdef0123456789abcdef", ALL_ASCII, "caf\u00e9 \u2603", "\ufffd\x7f"])
@pytest.mark.parametrize("offset", [0, 2**40, "49590338271490256608559692538361571095921575989136588898"])
def test_a_line_is_the_bytes_the_json_encoder_gives(key, offset):
    item = {"eb_ref": {"offset_kind": "kafka_offset", "topic": "fp.bus.traffic.fraud.v1", "partition": 3, "offset": offset},
            "key": key, "value_b64": "eyJhIjogMX0="}
    assert encode_line(item) == _LINE_ENCODER.encode(item).encode("utf-8")
    assert encode_line(item) == json.dumps(item, sort_keys=True, separators=(",", ":")).encode("utf-8")


def test_an_integer_beyond_64_bits_falls_back_to_the_json_encoder():
    item = {"eb_ref": {"offset": 2**70}, "key": None, "value_b64": ""}
    assert encode_line(item) == _LINE_ENCODER.encode(item).encode("utf-8")


def test_a_batch_object_decodes_back_to_its_records():
    records = tuple(ArchivedRecord(EbRef("kafka_offset", "t", 0, i), key, value)
                    for i, (key, value) in enumerate([("k1", b'{"a":1}'), (None, b"\x00\xff"), ("\u00e9\x7f", b"")]))
    batch = ArchiveBatch("t", "0", 0, 2, records)
    assert tuple(decode_object(batch.encode(), batch.sha256())) == records
