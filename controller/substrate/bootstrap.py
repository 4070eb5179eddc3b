"""Idempotent bootstrap of a substrate from the registry: buckets, topics, secrets, schemas.

Runs against whatever endpoints the settings name (the embedded servers, or MinIO/LocalStack/
a real DSN). Running it twice changes nothing; the IG API key and the runtime database role's
password are generated once and kept in SSM. Migrations run as the database owner; the runtime
gets a DSN of its own least-privilege role (runtime/db/roles.py), kept at SSM_DB_DSN_PATH.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runtime.bus.factory import admin as bus_admin
from runtime.db.migrate import prepare_database
from runtime.db.postgres import with_credentials
from runtime.errors import ObjectStoreUnavailable, PlatformError, SecretStoreUnavailable
from runtime.settings import Settings, read_parameter

BUCKET_KEYS = ("S3_ORACLE_BUCKET", "S3_EVIDENCE_BUCKET", "S3_ARCHIVE_BUCKET", "S3_QUARANTINE_BUCKET")


@dataclass
class BootstrapReport:
    """What bootstrap created now (empty lists on a second run)."""

    buckets_created: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)
    secrets_written: list[str] = field(default_factory=list)
    migrations_applied: list[str] = field(default_factory=list)
    runtime_dsn: str = ""


def bucket_names(settings: Settings) -> dict[str, str]:
    """Handle key -> bucket name, for the buckets of the environment."""
    return {key: settings.registry.text(key) for key in BUCKET_KEYS}


def ensure_buckets(settings: Settings) -> list[str]:
    """Create every registry bucket that does not exist yet."""
    client = settings.s3()
    created = []
    for name in sorted(set(bucket_names(settings).values())):
        try:
            client.head_bucket(Bucket=name)
            continue
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise ObjectStoreUnavailable(f"cannot inspect bucket {name}: {e}") from e
        except BotoCoreError as e:
            raise ObjectStoreUnavailable(f"S3 endpoint {settings.object_store_endpoint or 'AWS'} is unreachable: {e}") from e
        try:
            kwargs: dict[str, Any] = {"Bucket": name}
            if settings.aws_region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.aws_region}
            client.create_bucket(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise ObjectStoreUnavailable(f"cannot create bucket {name}: {e}") from e
        created.append(name)
    return created


def ensure_topics(settings: Settings) -> list[str]:
    """Create every registry topic (Kafka) or stream (Kinesis) with its partition count."""
    admin = bus_admin(settings)
    return [t.name for t in settings.registry.topics() if admin.ensure_topic(t.name, t.partitions, t.retention_hours)]


def _ssm(settings: Settings) -> Any:
    return settings.aws_client("ssm")


def read_secret(settings: Settings, path_key: str) -> str | None:
    """The value of the SSM parameter at the registry path `path_key`, or None if absent."""
    return read_parameter(_ssm(settings), settings.registry.text(path_key))


def _put_secret(settings: Settings, path_key: str, value: str, *, overwrite: bool) -> bool:
    path = settings.registry.text(path_key)
    try:
        _ssm(settings).put_parameter(Name=path, Value=value, Type="SecureString", Overwrite=overwrite)
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ParameterAlreadyExists":
            return False
        raise SecretStoreUnavailable(f"SSM put {path} failed: {e}") from e
    except BotoCoreError as e:
        raise SecretStoreUnavailable(f"SSM endpoint unreachable: {e}") from e


def ensure_secrets(settings: Settings) -> list[str]:
    """IG API key (generated once) and the Kafka bootstrap, at their registry paths."""
    written = []
    if _put_secret(settings, "SSM_IG_API_KEY_PATH", secrets.token_urlsafe(32), overwrite=False):
        written.append("SSM_IG_API_KEY_PATH")
    bootstrap_known = settings.kafka_bootstrap and read_secret(settings, "SSM_CONFLUENT_BOOTSTRAP_PATH") == settings.kafka_bootstrap
    if settings.bus == "kafka" and settings.kafka_bootstrap and not bootstrap_known:
        _put_secret(settings, "SSM_CONFLUENT_BOOTSTRAP_PATH", settings.kafka_bootstrap, overwrite=True)
        written.append("SSM_CONFLUENT_BOOTSTRAP_PATH")
    return written


def ensure_database(settings: Settings, owner_dsn: str) -> tuple[list[str], str, list[str]]:
    """As the owner: the runtime role (its password generated once, kept at
    SSM_DB_RUNTIME_PASSWORD_PATH), migrations and grants. Returns (migrations applied now, the
    runtime's DSN, secrets written now); the runtime DSN is kept at SSM_DB_DSN_PATH."""
    written = []
    if _put_secret(settings, "SSM_DB_RUNTIME_PASSWORD_PATH", secrets.token_urlsafe(32), overwrite=False):
        written.append("SSM_DB_RUNTIME_PASSWORD_PATH")
    password = read_secret(settings, "SSM_DB_RUNTIME_PASSWORD_PATH")
    if not password:
        raise SecretStoreUnavailable("the runtime database password vanished from SSM right after it was written")
    role = settings.registry.text("DB_RUNTIME_ROLE")
    applied = prepare_database(owner_dsn, role, password)
    runtime_dsn = with_credentials(owner_dsn, role, password)
    if read_secret(settings, "SSM_DB_DSN_PATH") != runtime_dsn:
        _put_secret(settings, "SSM_DB_DSN_PATH", runtime_dsn, overwrite=True)
        written.append("SSM_DB_DSN_PATH")
    return applied, runtime_dsn, written


def bootstrap(settings: Settings, owner_dsn: str | None) -> BootstrapReport:
    """Buckets, topics, secrets, the runtime role and migrations; safe to run any number of times.
    `owner_dsn` connects as the database owner (never the runtime's role)."""
    if not owner_dsn:
        raise PlatformError("no database DSN is configured", code="DB_DSN_MISSING",
                            next_step="start the embedded PostgreSQL or set FP_DB_DSN")
    report = BootstrapReport()
    report.buckets_created = ensure_buckets(settings)
    report.topics_created = ensure_topics(settings)
    report.secrets_written = ensure_secrets(settings)
    report.migrations_applied, report.runtime_dsn, written = ensure_database(settings, owner_dsn)
    report.secrets_written += written
    return report
