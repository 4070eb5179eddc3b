"""One JSON decoder for bus records: orjson, with the standard library for what orjson refuses.

Every consumer of the bus parses each record (run scope, then the worker's envelope); on the RTDL
workers that parse was the largest CPU item per record (json.loads ~20 us for an engine envelope,
orjson ~3 us). orjson is stricter than `json` (no NaN/Infinity, integers within 64 bits), so a
document it refuses is parsed again by `json.loads`: what is accepted, and the objects returned,
are exactly what `json.loads` gives.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(value: bytes | str) -> Any:
    """The JSON document `value` holds; ValueError (or UnicodeDecodeError) when it holds none, as
    `json.loads` raises."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
