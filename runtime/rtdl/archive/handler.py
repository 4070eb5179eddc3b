"""ArchiveWriter as a stream handler: every admitted topic -> immutable batch objects + index rows.

The object is written before the index row, inside the worker's transaction: an index row never
points at a missing object, and an object whose transaction rolled back is simply not indexed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from runtime.rtdl.archive.domain import ArchivedRecord, slice_batches
from runtime.rtdl.archive.store import index_batch, put_batch
from runtime.store.port import ObjectStore
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

if TYPE_CHECKING:
    from runtime.settings import Settings

#: Object puts of one batch in flight at once (one per partition slice, up to this many).
PARALLEL_PUTS = 8


class ArchiveHandler(StreamHandler):
    """Archives what it reads; emits nothing."""

    component = "archive_writer"

    def __init__(self, topics: list[str], store: ObjectStore, prefix: str, platform_run_id: str):
        self.topics = list(topics)
        self.store = store
        self.prefix = prefix
        self.platform_run_id = platform_run_id
        self._puts: ThreadPoolExecutor | None = None
        self.objects_written = 0
        self.records_archived = 0

    def input_topics(self) -> list[str]:
        """Every admitted topic of the run's event classes."""
        return self.topics

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Write one object per partition slice (the puts run side by side: a batch spans many
        partitions and each put waits on the object store), then index them in order."""
        batches = slice_batches([ArchivedRecord(r.eb_ref, r.key, r.raw) for r in records])
        keys = [batch.object_key(self.prefix) for batch in batches]
        if len(batches) > 1:
            if self._puts is None:
                self._puts = ThreadPoolExecutor(max_workers=PARALLEL_PUTS, thread_name_prefix="archive-put")
            futures = [self._puts.submit(put_batch, self.store, key, batch) for key, batch in zip(keys, batches, strict=True)]
            digests = [future.result() for future in futures]  # the first failure is raised, as in a sequential loop
        else:
            digests = [put_batch(self.store, key, batch) for key, batch in zip(keys, batches, strict=True)]
        for batch, key, digest in zip(batches, keys, digests, strict=True):
            if index_batch(conn, self.platform_run_id, batch, key, digest):
                self.objects_written += 1
                self.records_archived += len(batch.records)
        return []

    def counters(self) -> dict[str, int]:
        """Objects and records archived by this process."""
        return {"archive_objects_written": self.objects_written, "archive_records": self.records_archived}


def build(settings: Settings, platform_run_id: str) -> ArchiveHandler:
    """The run's ArchiveWriter: every admitted topic (EVENT_CLASS_MAP), the archive bucket, the
    run's prefix (S3_ARCHIVE_PREFIX_PATTERN)."""
    from runtime.ig.summaries import event_topics

    registry = settings.registry
    prefix = registry.render("S3_ARCHIVE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    return ArchiveHandler(event_topics(registry), settings.bucket("S3_ARCHIVE_BUCKET"), prefix, platform_run_id)
