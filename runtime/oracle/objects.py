"""Object-level helpers over the ObjectStore port: streamed sha256, uploads that carry it.

S3 has no server-side sha256 of arbitrary objects, so uploads record it as user metadata and the
incremental sync trusts only size + that recorded digest; the seal and check-strict always hash
the bytes themselves. A store that keeps no metadata (a folder) falls back to hashing the content.
Everything goes through the ObjectStore port; the S3 specifics live in its adapter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from runtime.store.port import ObjectStore

CHUNK = 8 * 1024 * 1024
SHA_META = "sha256"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def object_sha256(store: ObjectStore, key: str) -> str:
    """Hex sha256 of the stored bytes of `key`, streamed."""
    digest = hashlib.sha256()
    for chunk in store.chunks(key, CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def download_with_sha256(store: ObjectStore, key: str, path: Path) -> str:
    """Copy `key` to a local file and return the sha256 of its bytes (one read of the object)."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for chunk in store.chunks(key, CHUNK):
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def recorded_sha256(store: ObjectStore, key: str) -> str | None:
    """The sha256 an upload recorded for `key`, or None (absent object or no record); a store that
    keeps no metadata (a folder) answers with the content's own sha256."""
    info = store.head(key)
    if info is None:
        return None
    if store.keeps_metadata:
        return info.metadata.get(SHA_META) or None
    return object_sha256(store, key)


def upload_file(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    """Upload a local file to `key`, recording its sha256 where the store keeps metadata."""
    store.put_file(key, path, metadata={SHA_META: sha256})
