"""Project errors: every failure carries an error code and the operator's next step.

Adapters translate driver errors into these (`raise ObjectStoreUnavailable(...) from e`); the CLI
turns them into one clear line and a non-zero exit. Codes from the seeds keep their names
(MANIFEST_MISMATCH, LEASE_BUSY, STREAM_VIEW_PARTIAL_EXISTS, ...).

Two families tell a worker what to do with a failure: a `TransientError` (a dependency is down or
busy: bus, database, object store, secret store) is worth a retry with back-off; a
`PermanentError` (bad input, a conflict with what is stored, an invalid schema, a refused
privilege) fails the same way every time, so the item goes to the dead letter / the operator.
An error in neither family (e.g. PUBLISH_AMBIGUOUS) needs its own handling.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every project error: a stable code, what went wrong, what to do next."""

    code: str = "PLATFORM_ERROR"
    next_step: str = ""

    def __init__(self, message: str, *, code: str | None = None, next_step: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if next_step is not None:
            self.next_step = next_step

    def operator_line(self) -> str:
        """One line for the operator: code, message and, when known, the next step."""
        line = f"{self.code}: {self.message}"
        if self.next_step:
            line += f" -> {self.next_step}"
        return line


class TransientError(PlatformError):
    """A dependency is unreachable or busy: the same call may succeed later (retry with back-off)."""

    code = "TRANSIENT_ERROR"


class PermanentError(PlatformError):
    """The request itself is wrong or conflicts with what is stored: a retry fails the same way."""

    code = "PERMANENT_ERROR"


def is_retryable(error: BaseException) -> bool:
    """True when `error` is worth a retry (a TransientError); stream workers back off on these and
    dead-letter the rest."""
    return isinstance(error, TransientError)


class RegistryError(PermanentError):
    """The handles registry is unreadable, malformed or breaks its schema."""

    code = "HANDLES_REGISTRY_INVALID"
    next_step = "fix handles.registry.yaml and run `fp handles lint`"


class HandleMissing(PermanentError):
    """Code asked for a handle key the environment does not define."""

    code = "HANDLE_MISSING"
    next_step = "add the key to handles.registry.yaml for this environment"


class SchemaMissing(PermanentError):
    """A JSON schema the code needs is not in schemas/."""

    code = "SCHEMA_MISSING"


class EvidenceInvalid(PermanentError):
    """An evidence document breaks its schema; nothing was written."""

    code = "EVIDENCE_SCHEMA_INVALID"
    next_step = "fix the producer of this evidence file; the writer refuses invalid documents"


class EvidenceConflict(PermanentError):
    """A base-truth evidence file exists already with different content."""

    code = "EVIDENCE_CONFLICT"
    next_step = "base truth is written once: start a fresh platform_run_id instead of rewriting"


class ObjectStoreUnavailable(TransientError):
    """The object store (S3 API) cannot be reached or refused the request."""

    code = "OBJECT_STORE_UNAVAILABLE"
    next_step = "check the S3 endpoint (FP_OBJECT_STORE_ENDPOINT) and credentials"


class ObjectMissing(PermanentError):
    """An object the caller expected is not in the store."""

    code = "OBJECT_MISSING"


class WriteConflict(PermanentError):
    """A conditional (write-once) put found the object already present."""

    code = "WRITE_CONFLICT"


class DatabaseUnavailable(TransientError):
    """PostgreSQL cannot be reached with the configured DSN."""

    code = "DB_UNAVAILABLE"
    next_step = "check the DSN (FP_DB_DSN) and that PostgreSQL is running"


class DatabaseConflict(PermanentError):
    """A write broke a uniqueness, foreign-key or check constraint: the row conflicts with what is stored."""

    code = "DB_CONFLICT"
    next_step = "the same write will conflict again: inspect the stored row instead of retrying"


class AppendOnlyViolation(PermanentError):
    """An UPDATE, DELETE or TRUNCATE of an append-only truth table was refused by its trigger."""

    code = "APPEND_ONLY_VIOLATION"
    next_step = "truth is append-only: write a new row (a correction) instead of changing or removing one"


class DatabasePermissionDenied(PermanentError):
    """The database role lacks the privilege (the runtime role may not truncate, alter or drop)."""

    code = "DB_PERMISSION_DENIED"
    next_step = "this statement needs the owner role: run it through the migrations, not the runtime"


class DatabaseStatementFailed(PermanentError):
    """PostgreSQL refused a statement for a reason other than a conflict or a privilege (a bug or bad data)."""

    code = "DB_STATEMENT_FAILED"
    next_step = "read the message: the statement or its parameters are wrong; a retry fails the same way"


class DatabaseMigrationsPending(PermanentError):
    """The database lacks migrations this code needs; the runtime role cannot apply them itself."""

    code = "DB_MIGRATIONS_PENDING"
    next_step = "apply the migrations as the owner: `fp substrate up` locally, the db_migrations job in dev_min"


class SecretStoreUnavailable(TransientError):
    """The secret store (SSM Parameter Store) cannot be reached or refused the request."""

    code = "SECRET_STORE_UNAVAILABLE"
    next_step = "check the SSM endpoint (FP_OBJECT_STORE_ENDPOINT locally, AWS credentials in dev_min) and the parameter path"


class SubstrateError(PlatformError):
    """The local substrate could not be started, checked or stopped."""

    code = "SUBSTRATE_ERROR"


class BusUnavailable(TransientError):
    """The event bus (Kafka or Kinesis) cannot be reached or refused the request."""

    code = "BUS_UNAVAILABLE"
    next_step = "check the bus endpoint (FP_KAFKA_BOOTSTRAP / FP_OBJECT_STORE_ENDPOINT) and that the topic exists"


class PublishAmbiguous(PlatformError):
    """A publish whose delivery outcome is unknown: never assume it landed or failed."""

    code = "PUBLISH_AMBIGUOUS"
    next_step = "reconcile against the topic before retrying"


class TopicMissing(PermanentError):
    """A topic/stream the registry names does not exist on the bus."""

    code = "TOPIC_MISSING"
    next_step = "run `fp substrate up` (bootstrap creates topics) or create the topic"
