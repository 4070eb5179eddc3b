"""A local folder as an object store: the run folder's copy of the evidence bundle."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from runtime.errors import ObjectMissing, ObjectStoreUnavailable, WriteConflict
from runtime.store.port import ObjectInfo, ObjectStore


class FolderStore(ObjectStore):
    """Objects are files under `root`; keys are relative POSIX paths."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise ObjectStoreUnavailable(f"key {key!r} escapes the folder {self.root}")
        return path

    def put(self, key: str, data: bytes, *, create_only: bool = False, content_type: str = "application/json",
            if_match: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_match is not None:
            self._replace_if_match(key, path, data, if_match)
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        if create_only:
            try:
                os.link(tmp, path)  # atomic create-if-absent
            except FileExistsError:
                raise WriteConflict(f"{self.uri(key)} exists already") from None
            finally:
                tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)

    def _replace_if_match(self, key: str, path: Path, data: bytes, etag: str) -> None:
        """Compare-and-swap under an exclusive lock on a sidecar file (every conditional writer
        of this key takes it), so the check and the rename are one step."""
        with path.with_name(f".{path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                raise ObjectMissing(f"{self.uri(key)} does not exist (a conditional overwrite needs it)") from None
            if hashlib.md5(current).hexdigest() != etag:
                raise WriteConflict(f"{self.uri(key)} changed since it was read")
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The bytes and their md5 (the etag an S3 single-part put would carry)."""
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.md5(data).hexdigest()

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{self.uri(key)} does not exist") from None

    def chunks(self, key: str, size: int) -> Iterator[bytes]:
        """The file read piece by piece."""
        try:
            with self._path(key).open("rb") as fh:
                while chunk := fh.read(size if size > 0 else -1):
                    yield chunk
        except FileNotFoundError:
            raise ObjectMissing(f"{self.uri(key)} does not exist") from None

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return ObjectInfo(key=key, size=path.stat().st_size)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if not self.root.exists():
            return
        found = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key=key, size=path.stat().st_size))
        yield from sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
