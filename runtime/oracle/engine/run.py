"""Write an engine run to a local folder: several unsorted Parquet files per output, then a marker.

Layout: `<root>/<output_id>/part-NNNNN.parquet` and `<root>/_engine_run.json` (the config and
per-output row/file counts). The marker is written last, so a folder without it is a partial run.
Rows are shuffled with a seeded permutation before splitting, so no file is in time order - the
stream-sort step exists because of that, as in the real engine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from runtime.contracts.canonical import canonical_json
from runtime.errors import PlatformError
from runtime.oracle.engine.config import ENGINE_NAME, ENGINE_VERSION, EngineConfig
from runtime.oracle.engine.simulate import simulate
from runtime.oracle.engine.tables import build_tables
from runtime.oracle.errors import EngineRunMissing

MARKER = "_engine_run.json"
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "row_group_size": 256 * 1024, "write_statistics": True}


@dataclass(frozen=True)
class EngineRun:
    """A finished engine run on disk: where it is, its config and per-output counts."""

    root: Path
    config: EngineConfig
    outputs: dict[str, dict[str, int]]  # output_id -> {"rows": n, "files": n}
    generated: bool  # False when an identical run was already there

    @property
    def traffic_events(self) -> int:
        """Rows of the fraud traffic stream (the largest traffic output)."""
        return self.outputs.get("s3_event_stream_with_fraud_6B", {}).get("rows", 0)


def read_marker(root: Path) -> dict[str, Any] | None:
    """The engine-run marker of `root`, or None when there is none."""
    path = root / MARKER
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as e:
        raise PlatformError(
            f"{path} is unreadable: {e}", code="ENGINE_RUN_CORRUPT", next_step="delete the engine run folder and generate again"
        ) from e


def open_run(root: Path) -> EngineRun:
    """An existing engine run; EngineRunMissing when the folder has no marker."""
    marker = read_marker(root)
    if marker is None:
        raise EngineRunMissing(f"{root} holds no finished engine run ({MARKER} missing)")
    return EngineRun(root, EngineConfig(**marker["config"]), {k: dict(v) for k, v in marker["outputs"].items()}, generated=False)


def _write_files(table: pa.Table, folder: Path, files: int, rng: np.random.Generator) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    shuffled = table.take(pa.array(rng.permutation(table.num_rows), type=pa.int64())) if table.num_rows else table
    bounds = np.linspace(0, table.num_rows, files + 1).astype(np.int64)
    for i in range(files):
        part = shuffled.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
        target = folder / f"part-{i:05d}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(part, tmp, **PARQUET_OPTIONS)
        os.replace(tmp, target)
    return files


def generate(config: EngineConfig, root: Path, *, on_output: Callable[[str, int], None] | None = None) -> EngineRun:
    """Generate the engine run for `config` under `root`, unless the same run is already there.

    A finished run with another config, or leftovers of an unfinished one, are refused rather
    than overwritten: engine outputs are inputs to sealed packs.
    """
    config.validate()
    marker = read_marker(root)
    if marker is not None:
        if marker.get("config") != config.as_dict():
            raise PlatformError(
                f"{root} holds an engine run of another config ({marker.get('config')})",
                code="ENGINE_RUN_CONFLICT",
                next_step="choose another --root or the same seed/scale/scenario options",
            )
        existing = open_run(root)
        return EngineRun(root, existing.config, existing.outputs, generated=False)
    if root.exists() and any(root.iterdir()):
        raise PlatformError(
            f"{root} is not empty and has no {MARKER}: an unfinished generation was left behind",
            code="ENGINE_RUN_PARTIAL",
            next_step=f"delete {root} and generate again",
        )
    sim = simulate(config)
    seed_seq = np.random.SeedSequence(config.rng_seed())
    bank_seed, *file_seeds = seed_seq.spawn(11)
    tables = build_tables(sim, np.random.default_rng(bank_seed))
    outputs: dict[str, dict[str, int]] = {}
    for (output_id, table), file_seed in zip(sorted(tables.items()), file_seeds, strict=True):
        files = _write_files(table, root / output_id, config.files_per_output, np.random.default_rng(file_seed))
        outputs[output_id] = {"rows": table.num_rows, "files": files}
        if on_output is not None:
            on_output(output_id, table.num_rows)
    document = {"engine": ENGINE_NAME, "engine_version": ENGINE_VERSION, "config": config.as_dict(), "outputs": outputs}
    (root / MARKER).write_bytes(canonical_json(document) + b"\n")
    return EngineRun(root, config, outputs, generated=True)


def engine_files(root: Path) -> list[tuple[str, Path]]:
    """Every file of a finished run as (relative key, path), marker included, in key order."""
    open_run(root)
    files = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
    return sorted(files)
