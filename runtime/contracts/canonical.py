"""Canonical JSON and its digest: the one way the platform hashes a document.

Canonical = sorted keys, no whitespace, UTF-8. Config digests, payload hashes and evidence
digests all go through here so the same content always has the same hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(document: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON-compatible value."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of raw bytes."""
    return hashlib.sha256(data).hexdigest()


def canonical_digest(document: Any) -> str:
    """Hex sha256 of the canonical JSON of `document`."""
    return sha256_hex(canonical_json(document))
