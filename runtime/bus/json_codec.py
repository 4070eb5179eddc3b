"""One JSON decoder for bus records and PostgreSQL's JSON values: orjson, with the standard
library where orjson differs.

Every consumer of the bus parses each record (run scope, then the worker's envelope); on the RTDL
workers that parse was the largest CPU item per record (json.loads ~20 us for an engine envelope,
orjson ~3 us). orjson differs from `json` in two ways: it refuses NaN, Infinity and numbers beyond
a double, and it reads an integer beyond 64 bits as a float. A document it refuses, and a document
in which it returned a float of magnitude 2**63 or more (where such an integer would show), is
parsed by `json.loads`: what is accepted, and the objects returned, are exactly what `json.loads`
gives. (A regular expression looking for 19 digits in a row, to skip that walk, took 2-3 times
as long as the walk itself.)
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Floats at least this large may be integers orjson could not hold in 64 bits.
_HUGE = float(2**63)


def loads(value: bytes | str) -> Any:
    """The JSON document `value` holds; ValueError (or UnicodeDecodeError) when it holds none, as
    `json.loads` raises."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
    return json.loads(value) if _has_huge_float(document) else document


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
