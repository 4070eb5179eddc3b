"""The substrate epoch: one id per life of the local substrate's state, written into every store.

The embedded moto server (S3, SSM, Kinesis) and Tansu keep everything in memory: when their
process stops, buckets, the IG API key, streams and topics are gone, and a restarted server
answers as if it had never been used. `fp substrate up` mints an epoch, writes it to the object
store (LOCAL_SUBSTRATE_EPOCH_KEY in the evidence bucket), to SSM (LOCAL_SUBSTRATE_EPOCH_SSM_PATH)
and to PostgreSQL (the database's comment: no table, no migration), and records it in the state
file; P0 records it in the run. Every later phase, and `up` itself, compares: a store that no
longer holds the epoch lost its state, and the run fails SUBSTRATE_STATE_LOST instead of
failing later with a misleading code (or re-creating a new IG API key behind the running IG).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runtime.contracts.ids import utc_iso
from runtime.db.postgres import connect
from runtime.errors import DatabaseUnavailable, ObjectStoreUnavailable, PlatformError
from runtime.settings import Settings, read_parameter

_PG_PREFIX = "fp-substrate-epoch:"

#: The embedded servers whose state lives in their process's memory.
IN_MEMORY_SERVERS: frozenset[str] = frozenset({"moto", "tansu"})
#: What each embedded server keeps, for the operator (README, `fp substrate status`).
IN_MEMORY_NOTE = ("the moto server (S3 buckets, SSM parameters incl. the IG API key, Kinesis streams) and Tansu "
                  "(Kafka topics and records) keep everything IN MEMORY: if their process stops, that state is gone "
                  "and the run cannot resume. PostgreSQL keeps its data on disk; the run folders keep every run's evidence.")

NEW_RUN_STEP = ("this run's data is gone and cannot be resumed: `fp dev-min-down` (stops the packs and the substrate; "
                "the run folder keeps the evidence), then `fp dev-min-up` and `fp dev-min-run` for a new run")


class SubstrateStateLost(PlatformError):
    """A store no longer holds the epoch the substrate (or the run) was written in."""

    code = "SUBSTRATE_STATE_LOST"
    next_step = NEW_RUN_STEP


def new_epoch() -> str:
    """A fresh epoch id: when it was minted, plus randomness."""
    return f"{utc_iso()}#{secrets.token_hex(4)}"


@dataclass(frozen=True)
class EpochMarks:
    """The epoch each store holds (None: the store holds no epoch)."""

    object_store: str | None
    ssm: str | None
    postgres: str | None

    def as_dict(self) -> dict[str, str | None]:
        """Store name -> epoch held."""
        return {"object store": self.object_store, "SSM": self.ssm, "PostgreSQL": self.postgres}

    def lost(self, epoch: str) -> list[str]:
        """The stores that do not hold `epoch`."""
        return [name for name, held in self.as_dict().items() if held != epoch]


def _s3_location(settings: Settings) -> tuple[Any, str, str]:
    return settings.s3(), settings.registry.text("S3_EVIDENCE_BUCKET"), settings.registry.text("LOCAL_SUBSTRATE_EPOCH_KEY")


def read_marks(settings: Settings) -> EpochMarks:
    """The epoch every store holds now; a store that cannot be reached at all is an error (not a loss)."""
    client, bucket, key = _s3_location(settings)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        object_store: str | None = str(json.loads(body)["epoch"])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("NoSuchKey", "NoSuchBucket", "404"):
            raise ObjectStoreUnavailable(f"cannot read s3://{bucket}/{key}: {e}") from e
        object_store = None
    except BotoCoreError as e:
        raise ObjectStoreUnavailable(f"S3 endpoint {settings.object_store_endpoint} is unreachable: {e}") from e
    ssm = read_parameter(settings.aws_client("ssm"), settings.registry.text("LOCAL_SUBSTRATE_EPOCH_SSM_PATH"))
    return EpochMarks(object_store, ssm, _read_pg(settings))


def _read_pg(settings: Settings) -> str | None:
    if not settings.db_dsn:
        return None
    with connect(settings.db_dsn) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()").fetchone()
    comment = str(row[0]) if row and row[0] else ""
    return comment[len(_PG_PREFIX):] if comment.startswith(_PG_PREFIX) else None


def write_marks(settings: Settings, epoch: str) -> None:
    """Write `epoch` into every store (after bootstrap made the bucket and the database)."""
    client, bucket, key = _s3_location(settings)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps({"epoch": epoch, "written_at_utc": utc_iso()}).encode())
        settings.aws_client("ssm").put_parameter(Name=settings.registry.text("LOCAL_SUBSTRATE_EPOCH_SSM_PATH"), Value=epoch,
                                                 Type="String", Overwrite=True)
    except (ClientError, BotoCoreError) as e:
        raise ObjectStoreUnavailable(f"cannot write the substrate epoch: {e}") from e
    if settings.db_dsn:
        try:
            with connect(settings.db_dsn, autocommit=True) as conn:
                name = conn.execute("SELECT current_database()").fetchone()
                conn.execute(f"COMMENT ON DATABASE \"{name[0] if name else ''}\" IS '{_PG_PREFIX}{epoch}'")
        except PlatformError as e:  # e.g. the runtime role, which may not comment on the database
            raise DatabaseUnavailable(f"cannot record the substrate epoch in PostgreSQL: {e.message}",
                                      next_step="bring the substrate up with the database owner's DSN") from e


def require_epoch(settings: Settings, epoch: str, *, whose: str) -> None:
    """Fail SUBSTRATE_STATE_LOST naming each store that no longer holds `epoch` (`whose`: 'the run', ...)."""
    marks = read_marks(settings)
    lost = marks.lost(epoch)
    if lost:
        held = ", ".join(f"{name} holds {marks.as_dict()[name] or 'no epoch'}" for name in lost)
        raise SubstrateStateLost(f"the substrate lost the state {whose} was written in (epoch {epoch}): {held}. "
                                 f"Note: {IN_MEMORY_NOTE}")
