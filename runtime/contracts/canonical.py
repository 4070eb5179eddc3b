"""Canonical JSON and its digest: the one way the platform hashes a document.

Canonical = sorted keys, no whitespace, UTF-8. Config digests, payload hashes and evidence
digests all go through here so the same content always has the same hash.

The bytes are what `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes.
orjson writes the very same bytes ~4x faster for documents made only of JSON's own types whose
floats are zero or have a magnitude in [1e-4, 1e16) (there both write the shortest round-trip digits
without an exponent; outside it the exponent is spelled differently, and NaN/Infinity differ):
`compact_json` checks that and takes the standard encoder for anything else, so no output changes.

orjson (3.12 on) hands back its whole write buffer, at least 4 KB, whatever the document's length:
a 330-byte row kept in a list held 4 KB, and P8's digest of a 500k run's state (millions of rows,
sorted in memory) grew past 7.5 GB and was OOM-killed. What leaves here is a copy of exactly the
document's bytes (~0.3 us for 330 bytes); the buffer is freed at once and reused by the next call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SCALARS = (str, int, bool, type(None))


def canonical_json(document: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON-compatible value."""
    return compact_json(document, sort_keys=True)


def canonical_json_list(items: Sequence[bytes]) -> bytes:
    """The canonical bytes of a list, from the canonical bytes of each of its items."""
    return b"[" + b",".join(items) + b"]"


def canonical_json_embedding(document: Mapping[str, Any], embedded: Mapping[str, bytes]) -> bytes:
    """`canonical_json({**document, **values})`, byte for byte, where each value of `embedded` is given
    as its canonical bytes already: a large member written once (a DLA record) is reused, not walked
    and written again. `embedded` must hold canonical JSON (what `canonical_json` returned)."""
    if orjson_writes_as_json(document):
        try:
            return _exact(orjson.dumps({**document, **{k: orjson.Fragment(v) for k, v in embedded.items()}},
                                       option=orjson.OPT_SORT_KEYS))
        except TypeError:  # see compact_json: the standard encoder below writes it or refuses it
            pass
    return canonical_json({**document, **{k: json.loads(v) for k, v in embedded.items()}})


def compact_json(document: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """`json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=default)`
    as UTF-8, byte for byte (orjson where it writes the same bytes, the standard encoder elsewhere)."""
    data, buffered = _write(document, sort_keys, default)
    return _exact(data) if buffered else data


def _exact(data: bytes) -> bytes:
    """A copy of orjson's bytes in an allocation of their own length (see the module docstring)."""
    return bytes(memoryview(data))


def _write(document: Any, sort_keys: bool, default: Callable[[Any], Any] | None) -> tuple[bytes, bool]:
    """`compact_json`'s bytes, and whether they are orjson's buffer (which holds more than their length)."""
    if orjson_writes_as_json(document):  # no value `default` would be asked about
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS if sort_keys else 0), True
        except TypeError:  # lone surrogates, integers beyond 64 bits, non-str keys, nesting too deep
            pass
    if default is not None:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys,
                          default=default).encode("utf-8"), False
    return (_CANONICAL if sort_keys else _COMPACT).encode(document).encode("utf-8"), False


def orjson_writes_as_json(document: Any) -> bool:
    """Whether orjson's bytes for `document` are the standard encoder's: only dicts, lists, str, int,
    bool, None and floats that are 0 or of magnitude in [1e-4, 1e16) (what orjson refuses it raises for)."""
    try:
        return _plain(document)
    except RecursionError:
        return False


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return _plain_all(value.values())
    if kind is list:
        return _plain_all(value)
    if kind is float:
        return _plain_float(value)
    return kind in _SCALARS


def _plain_all(values: Any) -> bool:
    for v in values:
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        if kind is float:
            if not _plain_float(v):
                return False
        elif not _plain(v):
            return False
    return True


def _plain_float(value: float) -> bool:
    return value == 0.0 or 1e-4 <= abs(value) < 1e16


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of raw bytes."""
    return hashlib.sha256(data).hexdigest()


def canonical_digest(document: Any) -> str:
    """Hex sha256 of the canonical JSON of `document`, hashed where it was written (a run's decisions
    at full cap are hundreds of MB: no copy of them)."""
    return sha256_hex(_write(document, True, None)[0])
