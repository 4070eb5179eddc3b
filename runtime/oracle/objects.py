"""Object-level helpers over the ObjectStore port: streamed sha256, uploads that carry it.

S3 has no server-side sha256 of arbitrary objects, so uploads record it as user metadata and the
incremental sync trusts only size + that recorded digest; the seal and check-strict always hash
the bytes themselves. Non-S3 stores (a folder) fall back to hashing the content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from runtime.errors import ObjectMissing, ObjectStoreUnavailable
from runtime.store.port import ObjectStore
from runtime.store.s3 import S3Store

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
    """Hex sha256 of the stored bytes of `key` (streamed on S3)."""
    if isinstance(store, S3Store):
        try:
            body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"]
            digest = hashlib.sha256()
            for chunk in iter(lambda: body.read(CHUNK), b""):
                digest.update(chunk)
            return digest.hexdigest()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissing(f"{store.uri(key)} does not exist") from None
            raise ObjectStoreUnavailable(f"GET {store.uri(key)} failed: {e}") from e
        except BotoCoreError as e:
            raise ObjectStoreUnavailable(f"GET {store.uri(key)} failed: {e}") from e
    return hashlib.sha256(store.get(key)).hexdigest()


def download_with_sha256(store: ObjectStore, key: str, path: Path) -> str:
    """Copy `key` to a local file and return the sha256 of its bytes (one read of the object)."""
    digest = hashlib.sha256()
    if isinstance(store, S3Store):
        try:
            body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"]
            with path.open("wb") as fh:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    digest.update(chunk)
                    fh.write(chunk)
            return digest.hexdigest()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissing(f"{store.uri(key)} does not exist") from None
            raise ObjectStoreUnavailable(f"GET {store.uri(key)} failed: {e}") from e
        except BotoCoreError as e:
            raise ObjectStoreUnavailable(f"GET {store.uri(key)} failed: {e}") from e
    data = store.get(key)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def recorded_sha256(store: ObjectStore, key: str) -> str | None:
    """The sha256 an upload recorded for `key`, or None (absent object or no record)."""
    if isinstance(store, S3Store):
        try:
            head = store.client.head_object(Bucket=store.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ObjectStoreUnavailable(f"HEAD {store.uri(key)} failed: {e}") from e
        except BotoCoreError as e:
            raise ObjectStoreUnavailable(f"HEAD {store.uri(key)} failed: {e}") from e
        value = head.get("Metadata", {}).get(SHA_META)
        return str(value) if value else None
    return object_sha256(store, key) if store.exists(key) else None


def upload_file(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    """Upload a local file to `key`, recording its sha256 (S3: user metadata)."""
    if isinstance(store, S3Store):
        try:
            store.client.upload_file(str(path), store.bucket, key, ExtraArgs={"Metadata": {SHA_META: sha256}})
        except (ClientError, BotoCoreError) as e:
            raise ObjectStoreUnavailable(f"upload {path} -> {store.uri(key)} failed: {e}") from e
        return
    store.put(key, path.read_bytes(), content_type="application/octet-stream")
