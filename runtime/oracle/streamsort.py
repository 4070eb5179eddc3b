"""Stream-sort: one time-ordered stream view per output, proven by a manifest and a receipt.

Per output: read the sealed files through DuckDB, order by the registry's sort key (ties broken by
source file (listed in key order) and row number, so the order is total and deterministic), write `part-*.parquet`
(one per day-chunk when chunking), re-read the parts to prove the same rows came out (count and
an order-independent content hash), then write `_stream_view_manifest.json` and, last, the
`_stream_sort_receipt.json` that means "done". A valid receipt makes a re-run a no-op; a receipt
that disagrees fails closed; parts without a receipt are STREAM_VIEW_PARTIAL_EXISTS.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from runtime.contracts.canonical import canonical_digest, canonical_json, sha256_hex
from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError, WriteConflict
from runtime.oracle import duck
from runtime.oracle.duck import S3Access, SortKnobs
from runtime.oracle.errors import (
    InputMissing,
    OutputEmpty,
    SortColumnMissing,
    StreamViewConflict,
    StreamViewInvalid,
    StreamViewPartialExists,
)
from runtime.oracle.layout import OracleLayout
from runtime.oracle.objects import download_with_sha256
from runtime.oracle.outputs import TIE_BREAKERS, OutputSpec
from runtime.oracle.pack import read_sealed_manifest
from runtime.store.local import FolderStore
from runtime.store.port import ObjectStore

#: progress(output_id, chunks_done, chunks_total); chunks_done is fractional while a chunk is sorting
Progress = Callable[[str, float, int], None]
RECEIPT_VERSION = 1
#: Receipt fields left out of its content hash: run-specific or timing-only.
_VOLATILE = ("platform_run_id", "started_at_utc", "ended_at_utc", "timings_seconds", "knobs", "content_hash")


@dataclass(frozen=True)
class SortOutcome:
    """What stream-sort did for one output."""

    output_id: str
    status: str  # SORTED | SKIPPED_VALID_RECEIPT
    rows: int
    parts: int
    receipt_key: str
    content_hash: str
    seconds: float


def input_files(manifest: dict[str, Any], spec: OutputSpec) -> list[dict[str, Any]]:
    """The sealed files of one output; ORACLE_INPUT_MISSING when it has none."""
    files = list(manifest.get("outputs", {}).get(spec.output_id, []))
    if not files:
        raise InputMissing(f"the sealed pack holds no files for {spec.output_id}")
    return files


def input_fingerprint(manifest: dict[str, Any], spec: OutputSpec) -> str:
    """Digest of what a sort reads: file names (relative to the engine prefix), sizes, sha256, sort keys."""
    prefix = manifest["engine_run_prefix"]
    files = [{"name": f["key"][len(prefix) :], "size": f["size"], "sha256": f["sha256"]} for f in input_files(manifest, spec)]
    return canonical_digest({"output_id": spec.output_id, "files": files, "sort_keys": list(spec.sort_keys)})


def receipt_content_hash(receipt: dict[str, Any]) -> str:
    """Digest of a receipt without run id, timings and knobs: equal for equal inputs and outputs."""
    return canonical_digest({k: v for k, v in receipt.items() if k not in _VOLATILE})


def read_json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """A JSON object at `key`, or None when absent; unreadable JSON is a conflict."""
    if not store.exists(key):
        return None
    try:
        return dict(json.loads(store.get(key)))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise StreamViewConflict(f"{store.uri(key)} is not valid JSON: {e}") from e


def existing_view_status(store: ObjectStore, layout: OracleLayout, spec: OutputSpec, fingerprint: str) -> dict[str, Any] | None:
    """The valid receipt of an existing view, None if the prefix is empty; otherwise fail closed."""
    prefix = layout.view_prefix(spec.output_id)
    present = {o.key[len(prefix) :]: o.size for o in store.list(prefix)}
    receipt = read_json(store, layout.receipt_key(spec.output_id))
    if receipt is None:
        if present and not _orphaned_complete_view(store, layout, spec, present):
            raise StreamViewPartialExists(
                f"{store.uri(prefix)} holds {len(present)} object(s) but no receipt: {', '.join(sorted(present)[:5])}"
            )
        for name in sorted(present):  # a complete view of ours that lost its receipt: rebuilt from scratch
            store.delete(prefix + name)
        return None
    problems = []
    if receipt.get("input", {}).get("fingerprint") != fingerprint:
        problems.append("its input fingerprint is not the sealed input's")
    expected_parts = {p["name"]: p["size"] for p in receipt.get("output", {}).get("parts", [])}
    actual_parts = {n: s for n, s in present.items() if n.startswith("part-")}
    if expected_parts != actual_parts:
        problems.append(f"parts present {sorted(actual_parts)} differ from the receipt's {sorted(expected_parts)}")
    manifest_name = layout.view_manifest_key(spec.output_id)[len(prefix) :]
    if manifest_name not in present:
        problems.append("the stream view manifest is missing")
    elif sha256_hex(store.get(layout.view_manifest_key(spec.output_id))) != receipt.get("view_manifest_sha256"):
        problems.append("the stream view manifest differs from the receipt")
    if problems:
        raise StreamViewConflict(f"receipt {store.uri(layout.receipt_key(spec.output_id))} conflicts: " + "; ".join(problems))
    return receipt


def _orphaned_complete_view(store: ObjectStore, layout: OracleLayout, spec: OutputSpec, present: dict[str, int]) -> bool:
    """True when the prefix holds exactly a view manifest and the parts it lists (sizes equal).

    That is the state after the receipt alone was removed (or the job died between manifest and
    receipt): every object is accounted for, so the view may be rebuilt. Anything else - a part
    the manifest does not list, a missing part, no manifest - is a partial write and fails closed.
    """
    prefix = layout.view_prefix(spec.output_id)
    manifest_name = layout.view_manifest_key(spec.output_id)[len(prefix) :]
    if manifest_name not in present:
        return False
    try:
        manifest = json.loads(store.get(prefix + manifest_name))
        listed = {str(p["name"]): int(p["size"]) for p in manifest["parts"]}
    except (ValueError, KeyError, TypeError):
        return False
    others = {n: size for n, size in present.items() if n != manifest_name}
    return bool(listed) and listed == others and manifest.get("output_id") == spec.output_id


def _day_chunks(days: list[tuple[date, int]], chunk_days: int) -> list[tuple[date, date, int]]:
    """Group the days that have rows into windows of `chunk_days` calendar days: (first, end, rows)."""
    chunks: list[tuple[date, date, int]] = []
    for day, rows in days:
        if chunks and day < chunks[-1][0] + timedelta(days=chunk_days):
            first, _, n = chunks[-1]
            chunks[-1] = (first, first + timedelta(days=chunk_days), n + rows)
        else:
            chunks.append((day, day + timedelta(days=chunk_days), rows))
    return chunks


def _chunk_progress(progress: Progress, output_id: str, index: int, total: int, percent: float) -> None:
    progress(output_id, index + min(percent, 99.0) / 100.0, total)


def _plan_chunks(con: Any, spec: OutputSpec, src: str, uris: list[str], rows: int, knobs: SortKnobs) -> list[str]:
    """The WHERE clause of every part, in order: day windows (chunk_days), key ranges (rows_per_part,
    or automatic when the input would not fit the memory limit in one sort), or one part.

    Every chunk is a range of the first sort key, so parts in name order are globally ordered and
    ties on that key never straddle two parts.
    """
    if knobs.chunk_days > 0 and spec.time_key is not None:
        column = duck.ident(spec.time_key)
        day_rows = duck.fetch(
            con,
            f"SELECT CAST(timezone('UTC', {column}) AS DATE) AS d, count(*) FROM {src} GROUP BY d ORDER BY d",
            f"day histogram of {spec.output_id}",
        )
        return [
            f"WHERE {column} >= {_ts_literal(lo)} AND {column} < {_ts_literal(hi)}"
            for lo, hi, _ in _day_chunks([(d, int(n)) for d, n in day_rows], knobs.chunk_days)
        ]
    per_part = knobs.rows_per_part or auto_rows_per_part(con, uris, rows, knobs.memory_limit)
    if rows <= per_part:
        return [""]
    column = duck.ident(spec.data_keys[0])
    # Lower bounds: the first key value of every per_part-th row of the key order (a keys-only sort,
    # which fits where the full-width sort does not), deduplicated.
    duck.fetch(
        con,
        f"CREATE OR REPLACE TEMP TABLE _fp_bounds AS SELECT row_number() OVER (ORDER BY lo) - 1 AS i, lo FROM ("
        f"SELECT DISTINCT k AS lo FROM (SELECT {column} AS k, row_number() OVER (ORDER BY {column}) AS rn FROM {src}) "
        f"WHERE (rn - 1) % {int(per_part)} = 0)",
        f"range bounds of {spec.output_id}",
    )
    [(count,)] = duck.fetch(con, "SELECT count(*) FROM _fp_bounds", "range bounds")
    wheres = []
    for i in range(int(count)):
        where = f"WHERE {column} >= (SELECT lo FROM _fp_bounds WHERE i = {i})"
        if i + 1 < int(count):
            where += f" AND {column} < (SELECT lo FROM _fp_bounds WHERE i = {i + 1})"
        wheres.append(where)
    return wheres


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B?\s*$", re.IGNORECASE)


def memory_bytes(limit: str) -> int:
    """Bytes of a DuckDB-style size (`100MB`, `1GB`, `512MiB`); unparsable sizes are refused."""
    match = _SIZE.match(limit)
    if match is None:
        raise PlatformError(f"memory limit {limit!r} is not a size like 512MB or 2GiB", code="SORT_KNOB_INVALID",
                            next_step="pass --memory-limit as <number><KB|MB|GB|TB|KiB|MiB|GiB|TiB>")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit.upper() or " "))


def auto_rows_per_part(con: Any, uris: list[str], rows: int, memory_limit: str) -> int:
    """Rows per sorted part so one part's uncompressed data stays within half the memory limit.

    Measured on 2 cores: a full-width sort fits when its uncompressed Parquet size is about the
    memory limit and fails at twice it; half leaves room for the writer and reader buffers.
    """
    [(uncompressed,)] = duck.fetch(con, f"SELECT sum(total_uncompressed_size) FROM parquet_metadata({duck.source_list(uris)})",
                                   "reading Parquet metadata", corrupt_is_input=True)
    per_row = max(1.0, float(uncompressed or 0) / max(1, rows))
    return max(10_000, int(memory_bytes(memory_limit) * 0.5 / per_row))


def _ts_literal(day: date) -> str:
    return "TIMESTAMPTZ '" + datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat() + "'"


def sort_output(
    spec: OutputSpec,
    store: ObjectStore,
    layout: OracleLayout,
    access: S3Access | None,
    knobs: SortKnobs,
    *,
    progress: Progress | None = None,
) -> SortOutcome:
    """Build (or confirm) the stream view of one output."""
    t0 = time.monotonic()
    started = utc_iso()
    _, manifest = read_sealed_manifest(store, layout)
    files = input_files(manifest, spec)
    fingerprint = input_fingerprint(manifest, spec)
    receipt_key = layout.receipt_key(spec.output_id)
    valid = existing_view_status(store, layout, spec, fingerprint)
    if valid is not None:
        return SortOutcome(
            spec.output_id,
            "SKIPPED_VALID_RECEIPT",
            int(valid["output"]["rows"]),
            len(valid["output"]["parts"]),
            receipt_key,
            str(valid["content_hash"]),
            time.monotonic() - t0,
        )

    uris = [store.uri(f["key"]) for f in files]
    with duck.session(access, knobs) as con:
        cols = duck.columns(con, uris)
        missing = [k for k in spec.data_keys if k not in cols]
        if missing:
            raise SortColumnMissing(f"{spec.output_id} has no column(s) {', '.join(missing)} needed by sort key {list(spec.sort_keys)}")
        absent = [c for c in spec.required_columns if c not in cols]
        if absent:
            raise PlatformError(
                f"{spec.output_id} lacks payload column(s) {', '.join(absent)} of event class {spec.event_class}",
                code="ORACLE_SCHEMA_INVALID",
                next_step="fix the engine output schema",
            )
        data_cols = sorted(c for c in cols if c not in TIE_BREAKERS)
        hash_expr = "sum(hash(" + ", ".join(duck.ident(c) for c in data_cols) + "))::HUGEINT"
        src = duck.source_sql(uris)
        t_validate = time.monotonic()
        null_keys = ", ".join(f"count(*) - count({duck.ident(k)})" for k in spec.data_keys)
        [(in_rows, in_hash, *nulls)] = duck.fetch(
            con, f"SELECT count(*), {hash_expr}, {null_keys} FROM {src}", f"reading {spec.output_id}", corrupt_is_input=True
        )
        if int(in_rows) == 0:
            raise OutputEmpty(f"{spec.output_id} has {len(files)} file(s) and 0 rows")
        with_nulls = {k: int(n) for k, n in zip(spec.data_keys, nulls, strict=True) if int(n)}
        if with_nulls:
            raise PlatformError(f"{spec.output_id} has NULL sort-key values: {with_nulls}", code="SORT_KEY_NULL",
                                next_step="fix the engine output: every row needs its sort key")
        wheres = _plan_chunks(con, spec, src, uris, int(in_rows), knobs)
        validate_s = time.monotonic() - t_validate

        t_sort = time.monotonic()
        order = duck.order_by(spec.sort_keys)
        part_keys: list[str] = []
        for index, where in enumerate(wheres):
            key = layout.part_key(spec.output_id, index)
            if isinstance(store, FolderStore):  # DuckDB does not create local folders
                (store.root / key).parent.mkdir(parents=True, exist_ok=True)
            sql = (
                f"COPY (SELECT * FROM {src} {where} ORDER BY {order}) "
                f"TO {duck.quote(store.uri(key))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {int(knobs.row_group_size)})"
            )
            on_progress = None
            if progress is not None:
                on_progress = functools.partial(_chunk_progress, progress, spec.output_id, index, len(wheres))
            duck.fetch(con, sql, f"sorting {spec.output_id} chunk {index + 1}/{len(wheres)}", on_progress=on_progress)
            part_keys.append(key)
            if progress is not None:
                progress(spec.output_id, index + 1, len(wheres))
        sort_s = time.monotonic() - t_sort

        t_verify = time.monotonic()
        # Each part is fetched once: hashed while it streams to a local copy, and the row stats are
        # read from that copy - one read of the output instead of two.
        with tempfile.TemporaryDirectory(prefix="fp-stream-view-", dir=knobs.temp_dir) as scratch:
            local = {}
            digests = {}
            for index, key in enumerate(part_keys):
                path = Path(scratch) / f"{index:06d}.parquet"
                digests[key] = download_with_sha256(store, key, path)
                local[str(path)] = key
            first = duck.ident(spec.data_keys[0])
            stats = duck.fetch(
                con,
                f"SELECT filename, count(*), {hash_expr}, CAST(min({first}) AS VARCHAR), CAST(max({first}) AS VARCHAR) "
                f"FROM read_parquet([{', '.join(duck.quote(p) for p in local)}], filename = true) GROUP BY filename",
                f"re-reading the stream view of {spec.output_id}",
            )
    by_key = {local[str(r[0])]: r for r in stats}
    out_rows = sum(int(r[1]) for r in stats)
    out_hash = sum(int(r[2]) for r in stats)
    if out_rows != int(in_rows) or out_hash != int(in_hash):
        raise StreamViewInvalid(f"{spec.output_id}: input {in_rows} rows / hash {in_hash}, stream view {out_rows} rows / hash {out_hash}")
    prefix = layout.view_prefix(spec.output_id)
    parts = []
    for key in part_keys:
        head = store.head(key)
        row = by_key.get(key)
        if head is None or row is None:
            raise StreamViewInvalid(f"part {store.uri(key)} was not written")
        parts.append(
            {
                "name": key[len(prefix) :],
                "size": head.size,
                "sha256": digests[key],
                "rows": int(row[1]),
                "first_key_min": row[3],
                "first_key_max": row[4],
            }
        )
    verify_s = time.monotonic() - t_verify

    engine_prefix = manifest["engine_run_prefix"]
    # No run id inside: the same input sorts to the same manifest bytes in every run (the path says which run).
    view_manifest = {
        "output_id": spec.output_id,
        "sort_keys": list(spec.sort_keys),
        "ordering": "ascending, parts in name order",
        "columns": data_cols,
        "rows": out_rows,
        "parts": parts,
    }
    manifest_bytes = canonical_json(view_manifest)
    receipt: dict[str, Any] = {
        "receipt_version": RECEIPT_VERSION,
        "output_id": spec.output_id,
        "platform_run_id": layout.platform_run_id,
        "sort_keys": list(spec.sort_keys),
        "input": {
            "fingerprint": fingerprint,
            "files": [{"name": f["key"][len(engine_prefix) :], "size": f["size"], "sha256": f["sha256"]} for f in files],
            "rows": int(in_rows),
            "content_hash": str(in_hash),
        },
        "output": {
            "fingerprint": canonical_digest(parts),
            "parts": parts,
            "rows": out_rows,
            "content_hash": str(out_hash),
        },
        "view_manifest_sha256": sha256_hex(manifest_bytes),
        "started_at_utc": started,
        "knobs": knobs.as_dict(),
    }
    receipt["ended_at_utc"] = utc_iso()
    receipt["timings_seconds"] = {
        "validate": round(validate_s, 3),
        "sort": round(sort_s, 3),
        "verify": round(verify_s, 3),
        "total": round(time.monotonic() - t0, 3),
    }
    receipt["content_hash"] = receipt_content_hash(receipt)
    try:
        store.put(layout.view_manifest_key(spec.output_id), manifest_bytes, create_only=True)
        store.put(receipt_key, canonical_json(receipt), create_only=True)
    except WriteConflict as e:
        raise StreamViewConflict(f"another writer produced the view of {spec.output_id} concurrently: {e.message}") from None
    return SortOutcome(spec.output_id, "SORTED", out_rows, len(parts), receipt_key, receipt["content_hash"], time.monotonic() - t0)
