"""`python -m runtime oracle ...`: thin typer commands over runtime.oracle.lane.

Each command parses options, shows rich progress and calls one lane function; a PlatformError
becomes one stderr line (code, message, next step) and exit code 1.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtime.cli_errors import operator_errors
from runtime.errors import PlatformError
from runtime.evidence.writer import EvidenceWriter, run_bundle
from runtime.oracle.duck import SortKnobs
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import generate as generate_run
from runtime.oracle.lane import (
    OracleContext,
    SortFailure,
    check_step,
    check_strict_step,
    engine_cache_root,
    pack_step,
    seed_step,
    sort_step,
    sync_step,
)
from runtime.oracle.sync import plan_bytes
from runtime.settings import Settings, load_settings

app = typer.Typer(
    help="Oracle lane (P3): generate, sync, pack, check-strict, stream-sort, check.", no_args_is_help=True, add_completion=False
)
console = Console()
err = Console(stderr=True)
RUN_ID = re.compile(r"^platform_\d{8}T\d{6}Z$")

RunIdOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="platform run the oracle lane serves")]
EvidenceOpt = Annotated[bool, typer.Option("--evidence/--no-evidence", help="write P3 evidence to the run's evidence bundle")]
MemoryOpt = Annotated[str, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 1GB")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, max=64, help="DuckDB threads (fewer = less memory)")]


def _context(platform_run_id: str) -> tuple[Settings, OracleContext]:
    if not RUN_ID.match(platform_run_id):
        raise PlatformError(
            f"{platform_run_id!r} is not a platform run id (platform_<yyyymmddTHHMMSSZ>)",
            code="PLATFORM_RUN_ID_INVALID",
            next_step="pass the run id the controller created",
        )
    settings = load_settings()
    return settings, OracleContext.from_settings(settings, platform_run_id)


def _writer(settings: Settings, platform_run_id: str, enabled: bool) -> EvidenceWriter | None:
    if not enabled:
        return None
    return EvidenceWriter(settings.registry, platform_run_id, [run_bundle(settings, platform_run_id)])


def _byte_progress(total: int, label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}"),
        console=err,
        transient=False,
    )


@app.command()
def generate(
    root: Annotated[Path, typer.Option("--root", help="local engine run folder to create")],
    seed: Annotated[int, typer.Option(help="world seed; same seed -> byte-identical files")] = 42,
    scale: Annotated[int, typer.Option(help="approximate baseline traffic events")] = 10_000,
    scenario: Annotated[str, typer.Option(help="scenario name (part of the seed)")] = "baseline_v0",
    fraud_rate: Annotated[float, typer.Option(help="share of flows that are fraud, [0, 0.5)")] = 0.02,
    files_per_output: Annotated[int, typer.Option(help="unsorted Parquet files per output")] = 4,
    start_utc: Annotated[str, typer.Option(help="start of the simulated window (UTC)")] = "2026-01-05T00:00:00Z",
    days: Annotated[int, typer.Option(help="length of the simulated window in days")] = 3,
) -> None:
    """Generate a deterministic synthetic engine run (no-op if the same run is already there)."""
    with operator_errors():
        config = EngineConfig(
            seed=seed,
            scale=scale,
            scenario=scenario,
            fraud_rate=fraud_rate,
            files_per_output=files_per_output,
            start_utc=start_utc,
            days=days,
        )
        with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[item]}"), console=err) as bar:
            task = bar.add_task("generate", total=10, item="")
            run = generate_run(config, root, on_output=lambda oid, rows: bar.update(task, advance=1, item=f"{oid} {rows} rows"))
        verb = "generated" if run.generated else "already present (same config)"
        console.print(f"engine run {verb}: {root} ({run.traffic_events} fraud-stream traffic events)")


@app.command()
def sync(
    root: Annotated[Path, typer.Option("--root", help="local engine run folder")],
    platform_run_id: RunIdOpt,
    evidence: EvidenceOpt = True,
) -> None:
    """Copy the engine run into the oracle bucket (skips objects with the same size + sha256)."""
    with operator_errors():
        settings, ctx = _context(platform_run_id)
        with _byte_progress(plan_bytes(root), "sync") as bar:
            task = bar.add_task("sync", total=plan_bytes(root), item="")
            result = sync_step(
                ctx, root, _writer(settings, platform_run_id, evidence), progress=lambda n, key: bar.update(task, advance=n, item=key)
            )
        console.print(
            f"synced {result.objects} objects ({result.bytes} bytes): {result.uploaded} uploaded, {result.skipped} unchanged "
            f"-> {ctx.store.uri(ctx.layout.engine_prefix)}"
        )


@app.command()
def pack(platform_run_id: RunIdOpt) -> None:
    """Write the pack manifest and the write-once _SEALED.json (MANIFEST_MISMATCH if sealed differently)."""
    with operator_errors():
        _, ctx = _context(platform_run_id)
        with _byte_progress(0, "hash") as bar:
            task = bar.add_task("hash", total=None, item="")
            result = pack_step(ctx, progress=lambda n, key: bar.update(task, advance=n, item=key))
        state = "sealed" if result.newly_sealed else "already sealed with the same manifest (no-op)"
        console.print(
            f"{state}: {result.objects} objects, manifest sha256 {result.manifest_sha256} -> {ctx.store.uri(ctx.layout.seal_key)}"
        )


@app.command()
def seed(
    platform_run_id: RunIdOpt,
    seed: Annotated[int, typer.Option(help="world seed; same seed -> byte-identical files")] = 42,
    scale: Annotated[int, typer.Option(help="approximate baseline traffic events")] = 10_000,
    root: Annotated[Path | None, typer.Option("--root", help="engine run folder (default: engine cache, else scratch)")] = None,
    evidence: EvidenceOpt = True,
) -> None:
    """P3.A as one job: generate the engine run (or reuse it), sync it, seal the pack.

    Without --root the run goes to the engine cache the environment names (local runs share it),
    else to a scratch folder removed afterwards (an ECS task has no disk worth keeping)."""
    with operator_errors():
        settings, ctx = _context(platform_run_id)
        config = EngineConfig(seed=seed, scale=scale)
        config.validate()
        cache = settings.oracle_engine_cache
        with tempfile.TemporaryDirectory(prefix="fp-engine-") as scratch:
            folder = root or (engine_cache_root(Path(cache), config) if cache else Path(scratch) / "engine")
            with _byte_progress(0, "seed") as bar:
                task = bar.add_task("seed", total=None, item="")
                result = seed_step(ctx, config, folder, _writer(settings, platform_run_id, evidence),
                                   progress=lambda n, key: bar.update(task, advance=n, item=key))
        state = "sealed" if result.pack.newly_sealed else "already sealed with the same manifest"
        console.print(f"engine run {'generated' if result.engine.generated else 'reused'} ({folder}); synced "
                      f"{result.sync.objects} objects ({result.sync.uploaded} uploaded); {state}: "
                      f"{ctx.store.uri(ctx.layout.seal_key)}", highlight=False)


@app.command("check-strict")
def check_strict(platform_run_id: RunIdOpt) -> None:
    """Re-hash every sealed object and compare with the manifest (SEAL_VERIFY_FAILED on any change)."""
    with operator_errors():
        _, ctx = _context(platform_run_id)
        with _byte_progress(0, "verify") as bar:
            task = bar.add_task("verify", total=None, item="")
            result = check_strict_step(ctx, progress=lambda n, key: bar.update(task, advance=n, item=key))
        console.print(f"seal OK: {result['objects']} objects match manifest {result['manifest_sha256']}")


@app.command("stream-sort")
def stream_sort(
    platform_run_id: RunIdOpt,
    output_id: Annotated[
        list[str] | None, typer.Option("--output-id", help="sort only this output (repeatable); default: every required output")
    ] = None,
    memory_limit: MemoryOpt = "1GB",
    threads: ThreadsOpt = 2,
    temp_dir: Annotated[str | None, typer.Option(help="DuckDB spill folder")] = None,
    max_temp_size: Annotated[str | None, typer.Option(help="DuckDB spill cap, e.g. 50GiB")] = None,
    chunk_days: Annotated[int, typer.Option(min=0, max=366, help="one ordered part per N days (0 = single part)")] = 0,
    rows_per_part: Annotated[
        int, typer.Option(min=0, help="rows per ordered part by key range (0 = automatic: one part unless it would not fit --memory-limit)")
    ] = 0,
    preserve_order: Annotated[bool, typer.Option("--preserve-order/--no-preserve-order", help="DuckDB preserve_insertion_order")] = True,
) -> None:
    """Build the per-output stream views (sorted parts + manifest + receipt); valid receipts are skipped."""
    with operator_errors():
        _, ctx = _context(platform_run_id)
        knobs = SortKnobs(
            memory_limit=memory_limit,
            threads=threads,
            temp_dir=temp_dir,
            max_temp_size=max_temp_size,
            chunk_days=chunk_days,
            rows_per_part=rows_per_part,
            preserve_order=preserve_order,
        )
        specs = ctx.catalog.select(output_id)
        with Progress(
            TextColumn("stream-sort"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[item]}"),
            console=err,
        ) as bar:
            task = bar.add_task("sort", total=len(specs), item="")
            chunk_task = bar.add_task("chunks", total=None, item="")

            def on_chunk(oid: str, done: float, total: int) -> None:
                bar.update(chunk_task, completed=done, total=total, item=f"{oid} chunk {min(int(done) + 1, total)}/{total}")

            def on_done(item: object) -> None:
                label = f"{item.output_id} FAILED" if isinstance(item, SortFailure) else f"{getattr(item, 'output_id', '')} done"
                bar.update(task, advance=1, item=label)

            report = sort_step(ctx, [s.output_id for s in specs], knobs, progress=on_chunk, on_done=on_done)
        for o in report.outcomes:
            console.print(
                f"{o.output_id}: {o.status} rows={o.rows} parts={o.parts} {o.seconds:.2f}s receipt={ctx.store.uri(o.receipt_key)}"
            )
        for f in report.failures:
            err.print(f"[bold red]error[/] {f.output_id}: {f.code}: {f.message}", highlight=False, soft_wrap=True)
        if report.failures:
            first = report.failures[0]
            raise PlatformError(
                f"{len(report.failures)} output(s) failed (first: {first.output_id}: {first.message})",
                code=first.code,
                next_step=(first.next_step or "fix the cause") + "; re-run with --output-id for the failed outputs only",
            )


@app.command()
def check(
    platform_run_id: RunIdOpt,
    output_id: Annotated[
        list[str] | None, typer.Option("--output-id", help="check only this output (repeatable); default: every required output")
    ] = None,
    evidence: EvidenceOpt = True,
    memory_limit: MemoryOpt = "1GB",
    threads: ThreadsOpt = 2,
) -> None:
    """Verify the stream view of every required output (or of each --output-id); writes checker_pass only when all pass."""
    with operator_errors():
        settings, ctx = _context(platform_run_id)
        results = check_step(ctx, _writer(settings, platform_run_id, evidence), SortKnobs(memory_limit=memory_limit, threads=threads),
                             output_ids=output_id)
        for r in results:
            console.print(f"{r.output_id}: PASS rows={r.rows}")
        console.print(f"oracle checker PASS ({len(results)} outputs)")
