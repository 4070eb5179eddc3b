"""The object-store port every component writes through.

Write-once truth needs a conditional put (`create_only`): S3 `If-None-Match: *`, or an exclusive
create on a local folder. An append-only log kept in one object (the governance events) needs a
conditional overwrite (`if_match`): S3 `If-Match: <etag>` of the version read with
`read_versioned`, or a compare-and-swap under a file lock on a local folder. Adapters raise
`WriteConflict` when the object exists already (create_only) or changed since it was read
(if_match), `ObjectMissing` for an absent key and `ObjectStoreUnavailable` for anything else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ObjectMissing


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or head says of one object."""

    key: str
    size: int
    etag: str = ""
    #: User metadata recorded with the object (head only; stores that keep none leave it empty).
    metadata: Mapping[str, str] = field(default_factory=dict)


class ObjectStore(ABC):
    """A bucket (or folder) of objects addressed by key."""

    #: Where the store lives, for messages: `s3://bucket` or a folder path.
    location: str
    #: Whether `put_file` metadata is kept and `head` reports it (S3 user metadata); a folder keeps none.
    keeps_metadata: bool = False

    @abstractmethod
    def put(self, key: str, data: bytes, *, create_only: bool = False, content_type: str = "application/json",
            if_match: str | None = None) -> None:
        """Store `data` at `key`; with `create_only`, fail with WriteConflict if it exists; with
        `if_match` (an etag from `read_versioned`), fail with WriteConflict unless the stored
        object is still that version (ObjectMissing when it is gone)."""

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The bytes at `key` and the etag of exactly those bytes (None if absent): what a
        read-modify-write passes back as `put(..., if_match=etag)`. This default reads the etag
        first, so a change between the two calls makes the later conditional put fail, never
        overwrite a newer version."""
        info = self.head(key)
        if info is None:
            return None
        try:
            return self.get(key), info.etag
        except ObjectMissing:
            return None

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes at `key`; ObjectMissing if absent."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and etag of `key`, or None if absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (derived artefacts only; truth is never deleted)."""

    def chunks(self, key: str, size: int) -> Iterator[bytes]:
        """The bytes at `key` in pieces of at most `size` (large objects never sit in memory whole on
        stores that can stream); ObjectMissing if absent."""
        data = self.get(key)
        for start in range(0, len(data), size):
            yield data[start:start + size]

    def put_file(self, key: str, path: Path, *, metadata: Mapping[str, str] | None = None) -> None:
        """Store the local file `path` at `key`, with `metadata` where the store keeps it."""
        self.put(key, path.read_bytes(), content_type="application/octet-stream")

    def exists(self, key: str) -> bool:
        """True when `key` is present."""
        return self.head(key) is not None

    def uri(self, key: str) -> str:
        """A printable address of `key`."""
        return f"{self.location.rstrip('/')}/{key}"
