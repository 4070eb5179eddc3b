"""Sync a local engine run into the oracle bucket: incremental and resumable.

An object already there with the same size and recorded sha256 is skipped, so an interrupted
sync simply runs again. The engine-run marker goes last: its presence in the bucket means every
file before it was uploaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.oracle.engine.run import MARKER, engine_files, open_run
from runtime.oracle.layout import OracleLayout
from runtime.oracle.objects import file_sha256, recorded_sha256, upload_file
from runtime.store.port import ObjectStore

#: progress(bytes_done_delta, relative_key)
Progress = Callable[[int, str], None]


@dataclass
class SyncResult:
    """What a sync did: totals and per-output object counts."""

    engine_run_prefix: str
    objects: int = 0
    bytes: int = 0
    uploaded: int = 0
    skipped: int = 0
    seed: int | None = None
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)


def plan_bytes(root: Path) -> int:
    """Total bytes a sync of `root` will look at (for a progress bar)."""
    return sum(p.stat().st_size for _, p in engine_files(root))


def changed_files(root: Path, store: ObjectStore, layout: OracleLayout) -> list[str]:
    """Files of the engine run at `root` that a sync would upload (absent or different in the bucket)."""
    out = []
    for relative, path in engine_files(root):
        key = f"{layout.engine_prefix}{relative}"
        head = store.head(key)
        if head is None or head.size != path.stat().st_size or recorded_sha256(store, key) != file_sha256(path):
            out.append(relative)
    return out


def sync_engine_run(root: Path, store: ObjectStore, layout: OracleLayout, *, progress: Progress | None = None) -> SyncResult:
    """Copy every file of the engine run at `root` under the run's engine prefix."""
    run = open_run(root)
    files = engine_files(root)
    files.sort(key=lambda item: (item[0] == MARKER, item[0]))  # marker last
    result = SyncResult(engine_run_prefix=layout.engine_prefix, seed=run.config.seed)
    for relative, path in files:
        key = f"{layout.engine_prefix}{relative}"
        size = path.stat().st_size
        local_sha = file_sha256(path)
        head = store.head(key)
        if head is not None and head.size == size and recorded_sha256(store, key) == local_sha:
            result.skipped += 1
        else:
            upload_file(store, key, path, local_sha)
            result.uploaded += 1
        result.objects += 1
        result.bytes += size
        output_id = relative.split("/", 1)[0] if "/" in relative else None
        if output_id is not None:
            entry = result.outputs.setdefault(output_id, {"objects": 0, "rows": run.outputs.get(output_id, {}).get("rows", 0)})
            entry["objects"] += 1
        if progress is not None:
            progress(size, relative)
    return result
