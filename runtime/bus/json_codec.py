"""One JSON decoder for bus records and PostgreSQL's JSON values: orjson, with the standard
library where orjson differs.

Every consumer of the bus parses each record (run scope, then the worker's envelope); on the RTDL
workers that parse was the largest CPU item per record (json.loads ~20 us for an engine envelope,
orjson ~3 us). orjson differs from `json` in two ways: it refuses NaN, Infinity and numbers beyond
a double, and it reads an integer beyond 64 bits as a float. A document it refuses, and a document
in which it returned a float of magnitude 2**63 or more (where such an integer would show), is
parsed by `json.loads`: what is accepted, and the objects returned, are exactly what `json.loads`
gives. Such an integer is written with at least 19 digits in a row, so a text without them is
not walked: digits are mapped to "0" and everything else to " " (bytes.translate) and 19 zeros
searched for, ~0.6 us on an engine envelope against 1-4 us for the walk (a regular expression
took 11-13 us). A run of 19 digits inside a string (a hex digest holds one now and then, so a large
document such as a DLA batch nearly always does) is not a number: only a run that starts where JSON
allows a value (the document's start, or after `[`, `:` or `,`, with a sign and whitespace between)
sends the document to the walk.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Floats at least this large may be integers orjson could not hold in 64 bits.
_HUGE = float(2**63)
#: Every digit to "0", every other byte to " ": 19 zeros in a row then mark a 19-digit number.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
_MINUS = ord("-")
_JSON_WHITESPACE = b" \t\n\r"
#: What a JSON value follows (besides the document's start and whitespace).
_VALUE_OPENERS = b"[:,"


def loads(value: bytes | str) -> Any:
    """The JSON document `value` holds; ValueError (or UnicodeDecodeError) when it holds none, as
    `json.loads` raises."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    if not _may_hold_long_integer(raw, raw.translate(_DIGITS_AS_ZEROS)):
        return document
    return json.loads(value) if _has_huge_float(document) else document


def _may_hold_long_integer(raw: bytes, digits: bytes) -> bool:
    """Whether a run of 19 or more digits of `raw` (`digits`: raw translated) starts a JSON number."""
    start = digits.find(_LONG_NUMBER)
    while start >= 0:
        before = start - 1
        if before >= 0 and raw[before] == _MINUS:
            before -= 1
        while before >= 0 and raw[before] in _JSON_WHITESPACE:
            before -= 1
        if before < 0 or raw[before] in _VALUE_OPENERS:
            return True
        end = digits.find(b" ", start)  # the run's end; the next run starts after it
        if end < 0:
            return False
        start = digits.find(_LONG_NUMBER, end)
    return False


def _has_huge_float(document: Any) -> bool:
    """Whether any number in `document` is a float of magnitude >= 2**63 (objects and arrays walked)."""
    return _huge_in(document.values() if type(document) is dict else (document,))


def _huge_in(values: Any) -> bool:
    for value in values:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            if not -_HUGE < value < _HUGE:
                return True
        elif kind is dict:
            if _huge_in(value.values()):
                return True
        elif kind is list and _huge_in(value):
            return True
    return False
