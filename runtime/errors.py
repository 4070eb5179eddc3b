"""Project errors: every failure carries an error code and the operator's next step.

Adapters translate driver errors into these (`raise ObjectStoreUnavailable(...) from e`); the CLI
turns them into one clear line and a non-zero exit. Codes from the seeds keep their names
(MANIFEST_MISMATCH, LEASE_BUSY, STREAM_VIEW_PARTIAL_EXISTS, ...).
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


class RegistryError(PlatformError):
    """The handles registry is unreadable, malformed or breaks its schema."""

    code = "HANDLES_REGISTRY_INVALID"
    next_step = "fix handles.registry.yaml and run `fp handles lint`"


class HandleMissing(PlatformError):
    """Code asked for a handle key the environment does not define."""

    code = "HANDLE_MISSING"
    next_step = "add the key to handles.registry.yaml for this environment"


class SchemaMissing(PlatformError):
    """A JSON schema the code needs is not in schemas/."""

    code = "SCHEMA_MISSING"


class EvidenceInvalid(PlatformError):
    """An evidence document breaks its schema; nothing was written."""

    code = "EVIDENCE_SCHEMA_INVALID"
    next_step = "fix the producer of this evidence file; the writer refuses invalid documents"


class EvidenceConflict(PlatformError):
    """A base-truth evidence file exists already with different content."""

    code = "EVIDENCE_CONFLICT"
    next_step = "base truth is written once: start a fresh platform_run_id instead of rewriting"


class ObjectStoreUnavailable(PlatformError):
    """The object store (S3 API) cannot be reached or refused the request."""

    code = "OBJECT_STORE_UNAVAILABLE"
    next_step = "check the S3 endpoint (FP_OBJECT_STORE_ENDPOINT) and credentials"


class ObjectMissing(PlatformError):
    """An object the caller expected is not in the store."""

    code = "OBJECT_MISSING"


class WriteConflict(PlatformError):
    """A conditional (write-once) put found the object already present."""

    code = "WRITE_CONFLICT"


class DatabaseUnavailable(PlatformError):
    """PostgreSQL cannot be reached with the configured DSN."""

    code = "DB_UNAVAILABLE"
    next_step = "check the DSN (FP_DB_DSN) and that PostgreSQL is running"


class SubstrateError(PlatformError):
    """The local substrate could not be started, checked or stopped."""

    code = "SUBSTRATE_ERROR"


class BusUnavailable(PlatformError):
    """The event bus (Kafka or Kinesis) cannot be reached or refused the request."""

    code = "BUS_UNAVAILABLE"
    next_step = "check the bus endpoint (FP_KAFKA_BOOTSTRAP / FP_OBJECT_STORE_ENDPOINT) and that the topic exists"


class PublishAmbiguous(PlatformError):
    """A publish whose delivery outcome is unknown: never assume it landed or failed."""

    code = "PUBLISH_AMBIGUOUS"
    next_step = "reconcile against the topic before retrying"


class TopicMissing(PlatformError):
    """A topic/stream the registry names does not exist on the bus."""

    code = "TOPIC_MISSING"
    next_step = "run `fp substrate up` (bootstrap creates topics) or create the topic"
