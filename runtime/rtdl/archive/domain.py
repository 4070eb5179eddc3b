"""How admitted records become archive batch objects (plain Python, no I/O).

One object per (topic, partition, contiguous slice of a consumed batch): JSON lines holding each
record's eb_ref and its exact bus bytes. The key names the partition and the offset range, so the
same slice always lands at the same key with the same bytes (a redelivery rewrites nothing), and
the index row (topic, partition, first, last, sha256) is what replay reads, never a listing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from runtime.bus.json_codec import loads
from runtime.bus.port import EbRef
from runtime.errors import PermanentError

#: The one line encoding (what `json.dumps(..., sort_keys=True, separators=(",", ":"))` gives, without
#: building an encoder per line).
_LINE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def encode_line(item: dict[str, Any]) -> bytes:
    """One archive line, byte for byte what `_LINE_ENCODER` gives (sorted keys, no spaces, ASCII
    with \\u escapes): orjson writes the same bytes for ASCII text except DEL (0x7f), which `json`
    escapes, so a line with any other byte (a non-ASCII key) or a number orjson refuses takes the
    standard encoder. orjson is ~20x faster on these lines; the archive's bytes and digests are
    unchanged."""
    try:
        line = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        line = None
    if line is None or not line.isascii() or b"\x7f" in line:
        return _LINE_ENCODER.encode(item).encode("utf-8")
    return line


class ArchiveCorrupt(PermanentError):
    """An archive object does not match its index (sha256, offsets) or cannot be decoded."""

    code = "ARCHIVE_CORRUPT"
    next_step = "the archive object was changed after it was written; rebuild from the bus or restore the object"


@dataclass(frozen=True)
class ArchivedRecord:
    """One record as the archive keeps it."""

    eb_ref: EbRef
    key: str | None
    value: bytes


@dataclass(frozen=True)
class ArchiveBatch:
    """One immutable archive object: a contiguous slice of one partition."""

    topic: str
    partition: str
    first_offset: int
    last_offset: int
    records: tuple[ArchivedRecord, ...]

    def object_key(self, prefix: str) -> str:
        """`<run archive prefix><topic>/partition=<p>/<first>-<last>.jsonl` (offsets zero-padded to sort)."""
        return f"{prefix}{self.topic}/partition={self.partition}/{self.first_offset:020d}-{self.last_offset:020d}.jsonl"

    def encode(self) -> bytes:
        """The object's bytes: one JSON line per record, in offset order."""
        lines = [encode_line({"eb_ref": r.eb_ref.to_dict(), "key": r.key, "value_b64": base64.b64encode(r.value).decode("ascii")})
                 for r in self.records]
        return b"\n".join(lines) + b"\n"

    def sha256(self) -> str:
        """sha256 of the object's bytes (kept in the index)."""
        return hashlib.sha256(self.encode()).hexdigest()


def slice_batches(records: list[ArchivedRecord]) -> list[ArchiveBatch]:
    """Group records by partition, in offset order, one batch per partition."""
    by_partition: dict[tuple[str, str], list[ArchivedRecord]] = {}
    for record in records:
        by_partition.setdefault((record.eb_ref.topic, str(record.eb_ref.partition)), []).append(record)
    out = []
    for (topic, partition), items in sorted(by_partition.items()):
        items.sort(key=lambda r: int(r.eb_ref.offset))
        out.append(ArchiveBatch(topic, partition, int(items[0].eb_ref.offset), int(items[-1].eb_ref.offset), tuple(items)))
    return out


def decode_object(data: bytes, expected_sha256: str | None = None) -> Iterator[ArchivedRecord]:
    """The records of an archive object; ArchiveCorrupt when it does not match its index."""
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ArchiveCorrupt("archive object sha256 differs from its index row")
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        try:
            item: dict[str, Any] = loads(line)
            ref = item["eb_ref"]
            yield ArchivedRecord(EbRef(ref["offset_kind"], ref["topic"], ref["partition"], ref["offset"]),
                                 item.get("key"), base64.b64decode(item["value_b64"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ArchiveCorrupt(f"archive line {number} unreadable: {e}") from None
