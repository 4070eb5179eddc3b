"""The S3 adapter of the object-store port (AWS S3, the moto server, MinIO, LocalStack).

The endpoint comes from settings (`FP_OBJECT_STORE_ENDPOINT`), never from a code path per
environment. Write-once puts use `If-None-Match: *` (S3 conditional writes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from runtime.errors import ObjectMissing, ObjectStoreUnavailable, WriteConflict
from runtime.store.port import ObjectInfo, ObjectStore

_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30)


def s3_client(endpoint_url: str | None, region: str) -> Any:
    """A boto3 S3 client for `endpoint_url` (None = AWS) with bounded retries and timeouts."""
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=_CLIENT_CONFIG)


class S3Store(ObjectStore):
    """One bucket of an S3 API endpoint."""

    keeps_metadata = True

    def __init__(self, bucket: str, *, client: Any):
        self.bucket = bucket
        self.client = client
        self.location = f"s3://{bucket}"

    def _fail(self, action: str, key: str, error: Exception) -> ObjectStoreUnavailable:
        return ObjectStoreUnavailable(f"{action} {self.uri(key)} failed: {error}")

    def put(self, key: str, data: bytes, *, create_only: bool = False, content_type: str = "application/json",
            if_match: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = f'"{if_match.strip(chr(34))}"'
        try:
            self.client.put_object(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                what = "changed since it was read" if if_match is not None else "exists already"
                raise WriteConflict(f"{self.uri(key)} {what}") from None
            if if_match is not None and code in ("NoSuchKey", "404"):
                raise ObjectMissing(f"{self.uri(key)} does not exist (a conditional overwrite needs it)") from None
            raise self._fail("PUT", key, e) from e
        except BotoCoreError as e:
            raise self._fail("PUT", key, e) from e

    def get(self, key: str) -> bytes:
        return b"".join(self.chunks(key, 0))

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """One GET: the body and the ETag of that very version."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(r["Body"].read()), str(r.get("ETag", "")).strip('"')
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail("GET", key, e) from e
        except BotoCoreError as e:
            raise self._fail("GET", key, e) from e

    def chunks(self, key: str, size: int) -> Iterator[bytes]:
        """Streamed GET (size 0: the whole body at once); errors, also mid-stream, as the port's."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            if size <= 0:
                yield bytes(body.read())
                return
            while chunk := body.read(size):
                yield bytes(chunk)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissing(f"{self.uri(key)} does not exist") from None
            raise self._fail("GET", key, e) from e
        except BotoCoreError as e:
            raise self._fail("GET", key, e) from e

    def put_file(self, key: str, path: Path, *, metadata: Mapping[str, str] | None = None) -> None:
        """Multipart-capable upload of a local file, with user metadata."""
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"Metadata": dict(metadata or {})})
        except (ClientError, BotoCoreError) as e:
            raise ObjectStoreUnavailable(f"upload {path} -> {self.uri(key)} failed: {e}") from e

    def head(self, key: str) -> ObjectInfo | None:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("HEAD", key, e) from e
        except BotoCoreError as e:
            raise self._fail("HEAD", key, e) from e
        return ObjectInfo(key=key, size=int(r["ContentLength"]), etag=str(r.get("ETag", "")).strip('"'),
                          metadata=dict(r.get("Metadata") or {}))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    yield ObjectInfo(key=o["Key"], size=int(o["Size"]), etag=str(o.get("ETag", "")).strip('"'))
        except (ClientError, BotoCoreError) as e:
            raise self._fail("LIST", prefix, e) from e

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            raise self._fail("DELETE", key, e) from e
