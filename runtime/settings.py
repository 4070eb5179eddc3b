"""The one settings object of a runtime process: environment, endpoints, DSN, bus.

Values come from environment variables whose names are registry handles (group `runtime_env`),
so the compute backend (local supervisor or ECS) and the runtime agree on them in one place.
Unset endpoints mean "the real AWS endpoint"; nothing is branched on the environment's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.contracts.registry import Registry, load_registry
from runtime.errors import PlatformError, SecretStoreUnavailable
from runtime.store.s3 import S3Store, s3_client

DEFAULT_ENV = "local_parity"
BUS_KINDS = ("kinesis", "kafka")


@dataclass(frozen=True)
class Settings:
    """Where this process finds its substrate."""

    environment: str
    registry: Registry
    aws_region: str
    object_store_endpoint: str | None
    db_dsn: str | None
    bus: str
    kafka_bootstrap: str | None
    oracle_engine_cache: str | None = None  # local engine-run cache shared between runs (unset on ECS)

    def s3(self) -> Any:
        """The S3 client of these settings, made at the first use: daemons read health documents and
        bundles every tick, and making a boto3 client costs far more than the read (boto3 clients are
        thread-safe)."""
        client = self.__dict__.get("_s3_client")
        if client is None:
            client = s3_client(self.object_store_endpoint, self.aws_region)
            object.__setattr__(self, "_s3_client", client)
        return client

    def bucket(self, bucket_key: str) -> S3Store:
        """The object store of the bucket named by handle `bucket_key`."""
        return S3Store(self.registry.text(bucket_key), client=self.s3())

    def aws_client(self, service: str) -> Any:
        """A boto3 client for `service` on the configured endpoint (S3 API server locally)."""
        import boto3

        return boto3.client(service, endpoint_url=self.object_store_endpoint, region_name=self.aws_region)


def load_settings(environ: Mapping[str, str] | None = None, *, environment: str | None = None) -> Settings:
    """Build settings from the environment; an unknown bus kind is refused."""
    env = os.environ if environ is None else environ
    bootstrap_registry = load_registry(environment or env.get("FP_ENV") or DEFAULT_ENV)
    names = bootstrap_registry.group("runtime_env")
    environment = environment or env.get(names["ENVVAR_PLATFORM_ENV"]) or DEFAULT_ENV
    registry = load_registry(environment)
    default_bus = registry.text("LOCAL_DEFAULT_BUS") if "LOCAL_DEFAULT_BUS" in registry else "kafka"
    bus = env.get(names["ENVVAR_BUS_KIND"]) or default_bus
    if bus not in BUS_KINDS:
        raise PlatformError(
            f"unknown bus {bus!r}; known: {', '.join(BUS_KINDS)}", code="UNKNOWN_BUS", next_step="use kafka or kinesis"
        )
    return Settings(
        environment=environment,
        registry=registry,
        aws_region=env.get(names["ENVVAR_AWS_REGION"]) or registry.text("AWS_REGION"),
        object_store_endpoint=env.get(names["ENVVAR_OBJECT_STORE_ENDPOINT"]) or None,
        db_dsn=env.get(names["ENVVAR_DB_DSN"]) or None,
        bus=bus,
        kafka_bootstrap=env.get(names["ENVVAR_KAFKA_BOOTSTRAP"]) or None,
        oracle_engine_cache=env.get(names["ENVVAR_ORACLE_ENGINE_CACHE"]) or None,
    )


def read_parameter(ssm_client: Any, path: str) -> str | None:
    """The decrypted SSM parameter at `path`, or None when it does not exist; the one way secrets are read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(ssm_client.get_parameter(Name=path, WithDecryption=True)["Parameter"]["Value"])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise SecretStoreUnavailable(f"SSM get {path} failed: {e}") from e
    except BotoCoreError as e:
        raise SecretStoreUnavailable(f"SSM endpoint unreachable: {e}") from e
