"""The object store port (S3 API) and its adapters: S3 over boto3, and a local folder."""

from runtime.store.port import ObjectInfo, ObjectStore

__all__ = ["ObjectInfo", "ObjectStore"]
