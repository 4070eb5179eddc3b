"""`run_wsp`: find READY for the pinned run, check the stream views, stream every output, write evidence.

Steps: poll the control topic with a consumer pinned to the run (the bus's run scoping skips, counts
and commits other runs' records; a READY whose checkpoint says COMPLETED is a duplicate and
skipped) -> confirm a stream view exists for every output of the mode -> checkpoint STARTED, then
commit the READY -> wsp_start.json -> one thread per output (traffic and context concurrently,
each in view order) -> wsp_summary.json -> checkpoint COMPLETED or FAILED. A failure anywhere
leaves the checkpoint where IG last answered, so the next run resumes with the same event ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.port import BusRecord, RunScopedConsumer
from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter, run_bundle
from runtime.settings import Settings
from runtime.store.port import ObjectStore
from runtime.wsp.align import EventTimeAlignment
from runtime.wsp.checkpoint import WspCheckpoint
from runtime.wsp.envelope import OutputPlan, to_envelope
from runtime.wsp.flow import FlowGate
from runtime.wsp.sender import IgClient
from runtime.wsp.stream import OutputStats, StreamKnobs, stream_output
from runtime.wsp.views import StreamView

SOURCE_HANDLES = ["FP_BUS_CONTROL_V1", "S3_ORACLE_BUCKET", "S3_STREAM_VIEW_PREFIX_PATTERN", "IG_BASE_URL",
                  "IG_AUTH_HEADER_NAME", "SSM_IG_API_KEY_PATH", "WSP_BATCH_SIZE", "WSP_RETRY_MAX_ATTEMPTS",
                  "WSP_RETRY_BACKOFF_MS", "WSP_CONTEXT_LEAD_SECONDS", "WSP_FLOW_LAG_HIGH", "WSP_FLOW_LAG_LOW",
                  "WSP_FLOW_DF_LAG_HIGH", "WSP_FLOW_DF_LAG_LOW",
                  "S3_EVIDENCE_BUCKET"]


class ReadyMissing(PlatformError):
    """No READY for the pinned run arrived on the control topic in time."""

    code = "WSP_READY_MISSING"
    next_step = "run SR (P5) for this platform_run_id, then rerun WSP; WSP never streams without READY"


@dataclass(frozen=True)
class WspOptions:
    """Knobs of one WSP run (None = the registry's value)."""

    mode: str = "fraud"
    max_events_per_output: int | None = None
    speedup: float | None = None
    batch_size: int | None = None
    retry_max_attempts: int | None = None
    retry_backoff_ms: int | None = None
    ready_timeout_s: float = 60.0
    restream: bool = False
    http_timeout_s: float = 30.0
    progress_every_s: float = 5.0


@dataclass(frozen=True)
class Ready:
    """A READY message of the pinned run and where it was read."""

    platform_run_id: str
    scenario_run_id: str
    message: dict[str, Any]
    record: BusRecord

    @property
    def ref(self) -> dict[str, Any]:
        """topic/partition/offset of the READY (evidence)."""
        r = self.record.eb_ref
        return {"topic": r.topic, "partition": r.partition, "offset": r.offset, "offset_kind": r.offset_kind}


@dataclass
class WspResult:
    """What a WSP run did."""

    status: str  # COMPLETED | SKIPPED_ALREADY_PROCESSED
    platform_run_id: str
    scenario_run_id: str | None = None
    per_output: list[OutputStats] = field(default_factory=list)
    skipped_other_runs: int = 0
    skipped_duplicate_ready: int = 0


def parse_ready(record: BusRecord) -> dict[str, Any] | None:
    """The READY document of a control record, or None when it is not one."""
    try:
        doc = json.loads(record.value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("platform_run_id"), str) or not isinstance(doc.get("scenario_run_id"), str):
        return None
    return doc


class ReadyConsumerNotPinned(PlatformError):
    """The READY consumer delivered another run's record: it was not pinned to the run WSP streams."""

    code = "WSP_READY_CONSUMER_NOT_PINNED"
    next_step = "build the READY consumer with runtime.bus.factory.consumer(..., required_platform_run_id=<the run>)"


def find_ready(consumer: RunScopedConsumer, platform_run_id: str, checkpoint: WspCheckpoint, *, timeout_s: float,
               restream: bool, progress: Callable[[str], None], result: WspResult) -> Ready | None:
    """The first READY of the pinned run not yet completed; None when only completed ones were seen.

    Run scoping is the consumer's (pinned to `platform_run_id`): other runs' records never reach
    this loop; they are skipped, counted and committed by the consumer. Records of the run that are
    not READY documents are committed past here.
    """
    deadline = time.monotonic() + timeout_s
    seen_completed = False
    try:
        while time.monotonic() < deadline:
            records = consumer.poll(100, min(5.0, max(deadline - time.monotonic(), 0.1)))
            skipped: list[BusRecord] = []
            for record in records:
                doc = parse_ready(record)
                if doc is None:
                    skipped.append(record)
                    continue
                if doc["platform_run_id"] != platform_run_id:
                    raise ReadyConsumerNotPinned(f"the READY consumer delivered a record of {doc['platform_run_id']} "
                                                 f"while WSP streams {platform_run_id}")
                status = checkpoint.status(platform_run_id, doc["scenario_run_id"])
                if status == "COMPLETED" and not restream:
                    progress(f"WSP READY duplicate skipped platform_run_id={platform_run_id} "
                             f"scenario_run_id={doc['scenario_run_id']}")
                    result.skipped_duplicate_ready += 1
                    seen_completed = True
                    skipped.append(record)
                    continue
                consumer.commit(skipped)
                return Ready(platform_run_id, doc["scenario_run_id"], doc, record)
            consumer.commit(skipped)
            if seen_completed and not records:
                return None
    finally:
        counts = consumer.counts
        result.skipped_other_runs = counts.skipped_other_run + counts.skipped_unscoped
    if seen_completed:
        return None
    raise ReadyMissing(f"no READY for {platform_run_id} on the control topic within {timeout_s:.0f}s")


def run_wsp(settings: Settings, platform_run_id: str, ready_consumer: RunScopedConsumer, *, ig_base_url: str, api_key: str,
            checkpoint: WspCheckpoint, oracle_store: ObjectStore | None = None,
            evidence_targets: list[BundleTarget] | None = None, options: WspOptions | None = None,
            progress: Callable[[str], None] = print, flow: FlowGate | None = None) -> WspResult:
    """Stream the pinned run's stream views to IG once READY is found; the controller's P6 entry point.

    With `flow` every push first waits while an RTDL store is far behind (runtime/wsp/flow.py)."""
    options = options or WspOptions()
    reg = settings.registry
    result = WspResult("COMPLETED", platform_run_id)
    ready = find_ready(ready_consumer, platform_run_id, checkpoint, timeout_s=options.ready_timeout_s,
                       restream=options.restream, progress=progress, result=result)
    if ready is None:
        result.status = "SKIPPED_ALREADY_PROCESSED"
        return result
    result.scenario_run_id = ready.scenario_run_id
    progress(f"WSP READY found platform_run_id={platform_run_id} scenario_run_id={ready.scenario_run_id} at {ready.ref}")

    plan = OutputPlan(reg, options.mode)
    store = oracle_store or settings.bucket("S3_ORACLE_BUCKET")
    views = {o: StreamView(reg, store, platform_run_id, o) for o in plan.outputs}
    for view in views.values():
        view.parts()  # STREAM_VIEW_MISSING before anything is sent
    progress(f"WSP stream views present: {', '.join(plan.outputs)}")

    previous = checkpoint.status(platform_run_id, ready.scenario_run_id)
    checkpoint.start(platform_run_id, ready.scenario_run_id, ready.ref, restart=options.restream, outputs=plan.outputs)
    ready_consumer.commit([ready.record])
    done = {} if options.restream else checkpoint.rows_sent(platform_run_id, ready.scenario_run_id)

    targets = evidence_targets or [run_bundle(settings, platform_run_id)]
    evidence = EvidenceWriter(reg, platform_run_id, targets)
    started = utc_iso()
    knobs = StreamKnobs(
        batch_size=options.batch_size or reg.integer("WSP_BATCH_SIZE"),
        retry_max_attempts=options.retry_max_attempts or reg.integer("WSP_RETRY_MAX_ATTEMPTS"),
        retry_backoff_ms=options.retry_backoff_ms if options.retry_backoff_ms is not None else reg.integer("WSP_RETRY_BACKOFF_MS"),
        speedup=options.speedup,
        max_events=options.max_events_per_output,
        progress_every_s=options.progress_every_s,
    )
    evidence.write("WSP_START_PATH_PATTERN", {
        **evidence.base_fields("P6", SOURCE_HANDLES),
        "scenario_run_id": ready.scenario_run_id,
        "ready_ref": ready.ref,
        "outputs": plan.outputs,
        "mode": options.mode,
        "max_events_per_output": options.max_events_per_output,
        "speedup": options.speedup,
        "batch_size": knobs.batch_size,
        "resumed": previous is not None and not options.restream,
        "resume_rows": done,
        "started_at_utc": started,
    })
    progress(f"WSP stream start outputs={len(plan.outputs)} mode={options.mode} resume={done or 'none'}")

    stop = threading.Event()
    lead = int(reg.integer("WSP_CONTEXT_LEAD_SECONDS")) * 1_000_000
    alignment = EventTimeAlignment({o: (lead if o in plan.context else 0) for o in plan.outputs})
    stats: dict[str, OutputStats] = {}
    errors: list[PlatformError] = []

    def one(output_id: str) -> None:
        client = IgClient(ig_base_url, reg.text("IG_INGEST_PATH"), reg.text("IG_AUTH_HEADER_NAME"), api_key,
                          timeout_s=options.http_timeout_s)
        skip = done.get(output_id, 0)
        stats[output_id] = OutputStats(output_id)
        try:
            stream_output(
                output_id, _envelopes(views[output_id], skip, plan.class_of[output_id], platform_run_id, ready.scenario_run_id),
                client, knobs, resumed_from=skip,
                advance=lambda n, frontier, ended: checkpoint.advance(platform_run_id, ready.scenario_run_id, output_id, n,
                                                                      frontier, ended),
                stop=stop, progress=progress, stats=stats[output_id], alignment=alignment, flow=flow)
        except PlatformError as e:
            stop.set()
            errors.append(e)
        finally:
            alignment.frontier(output_id, None)  # an output that never started holds no one back
            client.close()

    with ThreadPoolExecutor(max_workers=len(plan.outputs), thread_name_prefix="wsp") as pool:
        list(pool.map(one, plan.outputs))
    # Final counts come from the checkpoint: an output that failed mid-way still reports what IG answered for.
    final_rows = checkpoint.rows_sent(platform_run_id, ready.scenario_run_id)
    for output_id in plan.outputs:
        s = stats.setdefault(output_id, OutputStats(output_id))
        s.emitted = max(s.emitted, final_rows.get(output_id, 0))
    result.per_output = [stats[o] for o in plan.outputs]
    ended = utc_iso()
    evidence.write("WSP_SUMMARY_PATH_PATTERN", {
        **evidence.base_fields("P6", SOURCE_HANDLES),
        "scenario_run_id": ready.scenario_run_id,
        "ready_ref": ready.ref,
        "status": "FAILED" if errors else "COMPLETED",
        "per_output": [s.summary() for s in result.per_output],
        "totals": {"sends": sum(s.sends for s in result.per_output), "retries": sum(s.retries for s in result.per_output),
                   "failures": sum(s.failures for s in result.per_output),
                   "emitted": sum(s.emitted for s in result.per_output)},
        "flow_control": flow.summary() if flow is not None else None,
        "skipped_other_runs": result.skipped_other_runs,
        "skipped_duplicate_ready": result.skipped_duplicate_ready,
        "error": errors[0].operator_line() if errors else None,
        "started_at_utc": started,
        "ended_at_utc": ended,
    })
    checkpoint.finish(platform_run_id, ready.scenario_run_id, "FAILED" if errors else "COMPLETED")
    progress(f"WSP stream stop status={'FAILED' if errors else 'COMPLETED'} "
             + " ".join(f"{s.output_id}={s.emitted}" for s in result.per_output))
    if errors:
        raise errors[0]
    return result


def _envelopes(view: StreamView, skip: int, event_class: str, platform_run_id: str, scenario_run_id: str) -> Iterator[dict[str, Any]]:
    for row in view.rows(skip=skip):
        yield to_envelope(row, output_id=view.output_id, event_class=event_class, platform_run_id=platform_run_id,
                          scenario_run_id=scenario_run_id)
