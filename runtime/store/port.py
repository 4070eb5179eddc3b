"""The object-store port every component writes through.

Write-once truth needs a conditional put (`create_only`): S3 `If-None-Match: *`, or an exclusive
create on a local folder. Adapters raise `WriteConflict` when the object exists already,
`ObjectMissing` for an absent key and `ObjectStoreUnavailable` for anything else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or head says of one object."""

    key: str
    size: int
    etag: str = ""


class ObjectStore(ABC):
    """A bucket (or folder) of objects addressed by key."""

    #: Where the store lives, for messages: `s3://bucket` or a folder path.
    location: str

    @abstractmethod
    def put(self, key: str, data: bytes, *, create_only: bool = False, content_type: str = "application/json") -> None:
        """Store `data` at `key`; with `create_only`, fail with WriteConflict if it exists."""

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

    def exists(self, key: str) -> bool:
        """True when `key` is present."""
        return self.head(key) is not None

    def uri(self, key: str) -> str:
        """A printable address of `key`."""
        return f"{self.location.rstrip('/')}/{key}"
