"""The oracle lane as plain functions: each step alone (for the CLI, whose commands are P3's jobs:
`seed_step` = generate-or-reuse + sync + seal, then stream-sort, then check) and the whole lane in
one process (`run_oracle_lane`, for tests and scripts): generate-if-needed -> sync -> pack ->
stream-sort -> check.

Evidence (seed_snapshot, stream_sort_summary, checker_pass) goes through the EvidenceWriter the
caller passes; without one, nothing is written to the evidence bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter
from runtime.oracle.checker import OutputCheck, run_checker, write_failure_report
from runtime.oracle.duck import S3Access, SortKnobs
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import EngineRun, generate, open_run
from runtime.oracle.errors import CheckerFailed
from runtime.oracle.layout import OracleLayout
from runtime.oracle.outputs import OutputCatalog
from runtime.oracle.pack import PackResult, check_strict, pack
from runtime.oracle.streamsort import Progress as SortProgress
from runtime.oracle.streamsort import SortOutcome, memory_bytes, sort_output
from runtime.oracle.sync import Progress as ByteProgress
from runtime.oracle.sync import SyncResult, changed_files, sync_engine_run
from runtime.settings import Settings
from runtime.store.port import ObjectStore

PHASE = "P3"


@dataclass(frozen=True)
class OracleContext:
    """Everything a step needs: registry-derived layout, the oracle bucket and DuckDB's S3 access."""

    layout: OracleLayout
    store: ObjectStore
    access: S3Access | None
    catalog: OutputCatalog

    @classmethod
    def from_settings(cls, settings: Settings, platform_run_id: str) -> OracleContext:
        """Build from runtime settings (endpoint, region, registry)."""
        store = settings.bucket("S3_ORACLE_BUCKET")
        return cls(
            layout=OracleLayout(settings.registry, platform_run_id),
            store=store,
            access=S3Access.from_boto(settings.object_store_endpoint, settings.aws_region),
            catalog=OutputCatalog(settings.registry),
        )


@dataclass
class SortFailure:
    """A stream-sort that failed for one output: its error code and message."""

    output_id: str
    code: str
    message: str
    next_step: str = ""


@dataclass
class SortReport:
    """Stream-sort over several outputs: what succeeded and what failed."""

    outcomes: list[SortOutcome] = field(default_factory=list)
    failures: list[SortFailure] = field(default_factory=list)


@dataclass(frozen=True)
class OracleLaneResult:
    """The P3 lane's result, for the controller's gate."""

    platform_run_id: str
    engine: EngineRun | None  # None when the engine run was already in the bucket
    sync: SyncResult | None
    pack: PackResult
    sort: SortReport
    checks: list[OutputCheck]

    @property
    def passed(self) -> bool:
        """True when every required output passed the checker."""
        return bool(self.checks) and all(c.ok for c in self.checks) and not self.sort.failures


def sync_step(ctx: OracleContext, engine_root: Path, writer: EvidenceWriter | None, progress: ByteProgress | None = None) -> SyncResult:
    """Sync the engine run and, with a writer, record the seed snapshot."""
    result = sync_engine_run(engine_root, ctx.store, ctx.layout, progress=progress)
    if writer is not None:
        doc = writer.base_fields(PHASE, ["S3_ORACLE_BUCKET", "ORACLE_ENGINE_RUN_PREFIX_PATTERN"])
        doc.update(
            {
                "engine_run_root": ctx.store.uri(ctx.layout.engine_prefix),
                "objects": result.objects,
                "bytes": result.bytes,
                "uploaded": result.uploaded,
                "skipped": result.skipped,
                "seed": result.seed,
                "outputs": [{"output_id": k, "objects": v["objects"], "rows": v["rows"]} for k, v in sorted(result.outputs.items())],
            }
        )
        writer.write("SEED_SNAPSHOT_PATH_PATTERN", doc)
    return result


def pack_step(ctx: OracleContext, progress: ByteProgress | None = None) -> PackResult:
    """Manifest + seal (write-once)."""
    return pack(ctx.store, ctx.layout, progress=progress)


def check_strict_step(ctx: OracleContext, progress: ByteProgress | None = None) -> dict[str, Any]:
    """Re-verify every sealed object."""
    return check_strict(ctx.store, ctx.layout, progress=progress)


def sort_step(
    ctx: OracleContext,
    output_ids: list[str] | None,
    knobs: SortKnobs,
    progress: SortProgress | None = None,
    on_done: Callable[[SortOutcome | SortFailure], None] | None = None,
) -> SortReport:
    """Stream-sort each selected output (all required ones by default); one failure does not stop the others."""
    memory_bytes(knobs.memory_limit)  # refuse a malformed knob before touching anything
    specs = ctx.catalog.select(output_ids)
    report = SortReport()
    for spec in specs:
        item: SortOutcome | SortFailure
        try:
            item = sort_output(spec, ctx.store, ctx.layout, ctx.access, knobs, progress=progress)
            report.outcomes.append(item)
        except PlatformError as e:
            item = SortFailure(spec.output_id, e.code, e.message, e.next_step)
            report.failures.append(item)
        if on_done is not None:
            on_done(item)
    return report


def check_step(ctx: OracleContext, writer: EvidenceWriter | None, knobs: SortKnobs,
               output_ids: list[str] | None = None) -> list[OutputCheck]:
    """Run the checker over every required output (or the selected ones: a traffic mode's set);
    evidence on PASS, a failure report otherwise."""
    specs = ctx.catalog.select(output_ids)
    results = run_checker(specs, ctx.store, ctx.layout, ctx.access, knobs)
    passed = all(r.ok for r in results)
    if writer is not None:
        summary = writer.base_fields(PHASE, ["S3_ORACLE_BUCKET", "S3_STREAM_SORT_RECEIPT_PATTERN", "ORACLE_REQUIRED_OUTPUT_IDS"])
        summary.update(
            {
                "outputs": [
                    {
                        "output_id": r.output_id,
                        "status": "PASS" if r.ok else "FAIL",
                        "rows": r.rows,
                        "receipt_key": r.receipt_key,
                        "error_code": None if r.ok else "ORACLE_CHECKER_FAILED",
                    }
                    for r in results
                ],
                "all_pass": passed,
            }
        )
        writer.write("STREAM_SORT_SUMMARY_PATH_PATTERN", summary)
    if not passed:
        where = write_failure_report(ctx.store, ctx.layout, results)
        failing = [f"{r.output_id} ({'; '.join(r.problems[:2])})" for r in results if not r.ok]
        raise CheckerFailed(f"{len(failing)} of {len(results)} required output(s) failed: {', '.join(failing)}; report {where}")
    if writer is not None:
        doc = writer.base_fields(
            PHASE, ["S3_ORACLE_BUCKET", "ORACLE_PACK_PREFIX_PATTERN", "S3_STREAM_VIEW_PREFIX_PATTERN", "ORACLE_REQUIRED_OUTPUT_IDS"]
        )
        doc.update({"status": "PASS", "outputs": [{"output_id": r.output_id, "status": "PASS", "rows": r.rows} for r in results]})
        writer.write("CHECKER_PASS_PATH_PATTERN", doc)
    return results


@dataclass(frozen=True)
class SeedResult:
    """P3.A as one job: the engine run used, what sync copied, and the seal."""

    engine: EngineRun
    sync: SyncResult
    pack: PackResult


def engine_cache_root(cache: Path, config: EngineConfig) -> Path:
    """Where the engine run of `config` lives inside a cache folder shared by runs with that config."""
    return cache / f"{config.scenario}-seed{config.seed}-scale{config.scale}"


def seed_step(ctx: OracleContext, config: EngineConfig, root: Path, writer: EvidenceWriter | None,
              progress: ByteProgress | None = None) -> SeedResult:
    """Generate the engine run under `root` (no-op when the same run is there), sync it into the
    oracle bucket with its seed snapshot, then seal the pack: the oracle_seed job of P3."""
    engine = generate(config, root)
    if ctx.store.exists(ctx.layout.seal_key):
        changed = changed_files(root, ctx.store, ctx.layout)
        if changed:
            raise PlatformError(
                f"the pack of this run is sealed, and {len(changed)} file(s) of engine run {root} differ from it "
                f"(first: {changed[0]}); nothing was uploaded",
                code="MANIFEST_MISMATCH", next_step="seed with the config the pack was sealed with, or start a fresh run")
    synced = sync_step(ctx, root, writer, progress)
    return SeedResult(engine, synced, pack_step(ctx))


def run_oracle_lane(
    settings: Settings,
    platform_run_id: str,
    engine_root: Path | None,
    evidence_writer: EvidenceWriter | None,
    *,
    config: EngineConfig | None = None,
    knobs: SortKnobs | None = None,
    output_ids: list[str] | None = None,
) -> OracleLaneResult:
    """P3 in order: generate (only if `engine_root` has no run and a config is given), sync, pack,
    stream-sort, check. `engine_root=None` means the engine run is already under the run's engine
    prefix (seeded elsewhere): generate and sync are skipped. Raises the first failing step's
    PlatformError; CheckerFailed if any output fails."""
    knobs = knobs or SortKnobs()
    ctx = OracleContext.from_settings(settings, platform_run_id)
    engine: EngineRun | None = None
    synced: SyncResult | None = None
    if engine_root is not None:
        engine = generate(config, engine_root) if config is not None else open_run(engine_root)
        synced = sync_step(ctx, engine_root, evidence_writer)
    packed = pack_step(ctx)
    sorted_report = sort_step(ctx, output_ids, knobs)
    if sorted_report.failures:
        first = sorted_report.failures[0]
        raise PlatformError(
            f"stream-sort failed for {first.output_id}: {first.message}",
            code=first.code,
            next_step=first.next_step or "fix the cause, then re-run stream-sort for that output only",
        )
    checks = check_step(ctx, evidence_writer, knobs)
    return OracleLaneResult(platform_run_id, engine, synced, packed, sorted_report, checks)
