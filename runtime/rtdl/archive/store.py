"""ArchiveWriter's adapters: the immutable objects in the object store and their Postgres index."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

from runtime.errors import WriteConflict
from runtime.rtdl.archive.domain import ArchiveBatch, ArchiveCorrupt, ArchivedRecord, decode_object
from runtime.store.port import ObjectStore

#: Archive objects fetched ahead of the one being decoded (`read_records`).
READ_AHEAD = 4


@dataclass(frozen=True)
class IndexRow:
    """One archive object as the index knows it."""

    topic: str
    partition: str
    first_offset: int
    last_offset: int
    record_count: int
    object_key: str
    sha256: str


def put_batch(store: ObjectStore, key: str, batch: ArchiveBatch) -> str:
    """Write the batch object once; the same bytes already there are fine, other bytes are corrupt."""
    data = batch.encode()
    try:
        store.put(key, data, create_only=True, content_type="application/x-ndjson")
    except WriteConflict:
        if store.get(key) != data:
            raise ArchiveCorrupt(f"{store.uri(key)} exists with other bytes than the records it names") from None
    return hashlib.sha256(data).hexdigest()  # of the bytes just written (encoding twice doubled the cost)


def index_batch(conn: Any, platform_run_id: str, batch: ArchiveBatch, key: str, sha256: str) -> bool:
    """Append the index row of a written object; True when it is new."""
    row = conn.execute(
        "INSERT INTO rtdl_archive_batches (platform_run_id, topic, partition, first_offset, last_offset, record_count,"
        " object_key, sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (platform_run_id, batch.topic, batch.partition, batch.first_offset, batch.last_offset, len(batch.records), key, sha256),
    ).fetchone()
    return row is not None


def index_rows(conn: Any, platform_run_id: str, topics: list[str] | None = None) -> list[IndexRow]:
    """The run's archive index in replay order (topic, partition, first offset)."""
    rows = conn.execute(
        "SELECT topic, partition, first_offset, last_offset, record_count, object_key, sha256 FROM rtdl_archive_batches"
        " WHERE platform_run_id = %s AND (%s::text[] IS NULL OR topic = ANY(%s::text[]))"
        " ORDER BY topic, partition, first_offset",
        (platform_run_id, topics, topics),
    ).fetchall()
    return [IndexRow(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), r[5], r[6]) for r in rows]


def read_records(store: ObjectStore, rows: list[IndexRow], *, read_ahead: int = READ_AHEAD) -> Iterator[ArchivedRecord]:
    """Every archived record the index names, verified against its sha256, in index order.

    The next `read_ahead` objects are fetched on threads while one is decoded: a run's archive is
    thousands of objects, read one request at a time it waited on each (on S3 each GET's latency,
    locally moto's time per object); at most `read_ahead` + 1 objects are held at once."""
    with ThreadPoolExecutor(max_workers=max(1, read_ahead), thread_name_prefix="archive-read") as pool:
        ahead: deque[tuple[IndexRow, Future[bytes]]] = deque()
        rest = iter(rows)
        for row in islice(rest, max(1, read_ahead)):
            ahead.append((row, pool.submit(store.get, row.object_key)))
        while ahead:
            row, fetched = ahead.popleft()
            following = next(rest, None)
            if following is not None:
                ahead.append((following, pool.submit(store.get, following.object_key)))
            records = list(decode_object(fetched.result(), row.sha256))
            if len(records) != row.record_count:
                raise ArchiveCorrupt(f"{row.object_key} holds {len(records)} records; its index row says {row.record_count}")
            yield from records
