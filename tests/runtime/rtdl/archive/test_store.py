"""Reading a run's archive back: index order kept while objects are fetched ahead, a bounded number
at once, and a corrupt object still refused."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from runtime.bus.port import EbRef
from runtime.rtdl.archive.domain import ArchiveBatch, ArchiveCorrupt, ArchivedRecord
from runtime.rtdl.archive.store import IndexRow, put_batch, read_records
from runtime.store.local import FolderStore


class SlowUnevenStore(FolderStore):
    """A store whose reads take uneven times (later objects often come back first) and that counts
    how many are in flight at once."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.random = random.Random(7)

    def get(self, key: str) -> bytes:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            pause = self.random.uniform(0, 0.01)
        time.sleep(pause)
        try:
            return super().get(key)
        finally:
            with self.lock:
                self.in_flight -= 1


def archive(store: FolderStore, objects: int, per_object: int) -> list[IndexRow]:
    rows = []
    for n in range(objects):
        first = n * per_object
        records = tuple(ArchivedRecord(EbRef("kafka_offset", "t", "0", str(first + i)), f"k{i}", f"v{first + i}".encode())
                        for i in range(per_object))
        batch = ArchiveBatch("t", "0", first, first + per_object - 1, records)
        key = batch.object_key("archive/run/")
        rows.append(IndexRow("t", "0", batch.first_offset, batch.last_offset, per_object, key, put_batch(store, key, batch)))
    return rows


@pytest.mark.parametrize("read_ahead", [1, 4])
def test_records_come_back_in_index_order_with_at_most_read_ahead_objects_in_flight(tmp_path: Path, read_ahead: int) -> None:
    store = SlowUnevenStore(tmp_path)
    rows = archive(store, 30, 5)
    values = [r.value for r in read_records(store, rows, read_ahead=read_ahead)]
    assert values == [f"v{i}".encode() for i in range(150)]
    assert 1 <= store.most_in_flight <= read_ahead
    if read_ahead > 1:
        assert store.most_in_flight > 1  # the reads did overlap


def test_an_object_whose_bytes_changed_is_refused_after_the_records_before_it(tmp_path: Path) -> None:
    store = SlowUnevenStore(tmp_path)
    rows = archive(store, 6, 3)
    (tmp_path / rows[3].object_key).write_bytes(b"tampered\n")
    seen = []
    with pytest.raises(ArchiveCorrupt):
        for record in read_records(store, rows):
            seen.append(record.value)
    assert seen == [f"v{i}".encode() for i in range(9)]
