"""Streams one output to IG: in view order, batched, paced, retried with the same ids, checkpointed.

A batch counts as sent only when IG has answered for every event with a final outcome; events
IG reports PUBLISH_AMBIGUOUS are pushed again (same ids) so IG reconciles them. Only then does
the output's checkpoint move. QUARANTINE/ANOMALY answers, a non-retryable HTTP answer or an
exhausted retry budget stop the output (and, through `stop`, the others): fail closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.ids import event_time_micros
from runtime.errors import PlatformError
from runtime.wsp.align import EventTimeAlignment
from runtime.wsp.flow import FlowGate
from runtime.wsp.sender import IgClient, RetryableSend

FINAL_OK = frozenset({"ADMIT", "DUPLICATE"})
REJECTED = frozenset({"QUARANTINE", "ANOMALY"})
RETRY = frozenset({"PUBLISH_AMBIGUOUS"})


class RetriesExhausted(PlatformError):
    """IG stayed unreachable or ambiguous beyond WSP_RETRY_MAX_ATTEMPTS."""

    code = "WSP_RETRIES_EXHAUSTED"
    next_step = "check IG health, then rerun WSP: it resumes from its checkpoint with the same event ids"


class EventsRejected(PlatformError):
    """IG quarantined events of the stream: a contract problem, not a transient one."""

    code = "WSP_EVENTS_REJECTED"
    next_step = "read ingest/quarantine_summary.json and the quarantine objects; fix the view or the contract"


class Stopped(PlatformError):
    """Another output failed; this one stopped too."""

    code = "WSP_STOPPED"


@dataclass
class OutputStats:
    """What happened to one output in this run."""

    output_id: str
    resumed_from: int = 0
    emitted: int = 0  # rows IG has answered for (including those of a resumed checkpoint)
    sends: int = 0
    retries: int = 0
    failures: int = 0
    aligned_wait_s: float = 0.0  # time spent waiting for the other outputs to reach this one's event time
    flow_wait_s: float = 0.0  # time its pushes waited for the RTDL stores (runtime/wsp/flow.py)
    outcomes: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The per-output entry of wsp_summary.json."""
        return {"output_id": self.output_id, "emitted": self.emitted, "resumed_from": self.resumed_from,
                "sends": self.sends, "retries": self.retries, "failures": self.failures,
                "aligned_wait_s": round(self.aligned_wait_s, 3), "flow_wait_s": round(self.flow_wait_s, 3),
                "outcomes": dict(self.outcomes),
                "error": self.error}


@dataclass(frozen=True)
class StreamKnobs:
    """Batching, pacing and retry knobs of a stream."""

    batch_size: int
    retry_max_attempts: int
    retry_backoff_ms: int
    speedup: float | None = None  # None: as fast as possible
    max_events: int | None = None
    progress_every_s: float = 5.0


def stream_output(
    output_id: str,
    envelopes: Iterator[dict[str, Any]],
    client: IgClient,
    knobs: StreamKnobs,
    *,
    resumed_from: int,
    advance: Callable[[int, int | None, bool], None],
    stop: threading.Event,
    progress: Callable[[str], None],
    stats: OutputStats | None = None,
    alignment: EventTimeAlignment | None = None,
    flow: FlowGate | None = None,
) -> OutputStats:
    """Send `envelopes` (already past the checkpoint) until the cap or the end of the view.

    After each answered batch `advance(rows_sent, frontier_ts_micros, ended)` records how far the
    output got: its row count and its event-time frontier (the time of the first row not yet
    answered: every row before it in the ts-ordered view has been answered), `ended` once nothing
    more will be sent. With `alignment` the output never runs ahead of the others in event time
    (runtime/wsp/align.py); with `flow` a push first waits while an RTDL store is far behind
    (runtime/wsp/flow.py)."""
    stats = stats or OutputStats(output_id)
    stats.resumed_from = stats.emitted = resumed_from
    position = resumed_from
    batch: list[dict[str, Any]] = []
    wall0 = time.monotonic()
    ts0: float | None = None
    last_progress = time.monotonic()
    recorded: int | None = None  # the frontier last recorded with advance()

    def flush(frontier: int | None, *, ended: bool = False) -> None:
        nonlocal position, batch, last_progress, recorded
        if not batch and not ended and frontier == recorded:
            return  # nothing sent and nothing new to record
        if batch:
            if flow is not None:
                stats.flow_wait_s += flow.wait_for_room(stop)
            _send_batch(batch, client, knobs, stats, stop)
        position += len(batch)
        stats.emitted = position
        batch = []
        recorded = frontier
        advance(position, frontier, ended)
        if alignment is not None:
            alignment.frontier(output_id, None if ended else frontier)
        if time.monotonic() - last_progress >= knobs.progress_every_s:
            last_progress = time.monotonic()
            rate = (position - resumed_from) / max(time.monotonic() - wall0, 1e-6)
            progress(f"WSP progress output_id={output_id} emitted={position} sends={stats.sends} "
                     f"retries={stats.retries} rate={rate:.0f}/s")

    try:
        for envelope in envelopes:
            if stop.is_set():
                raise Stopped(f"{output_id} stopped at row {position + len(batch)} because another output failed")
            if knobs.max_events is not None and position + len(batch) >= knobs.max_events:
                break
            micros = event_time_micros(envelope.get("ts_utc"))
            if len(batch) >= knobs.batch_size:
                flush(micros)
            if alignment is not None and micros is not None:
                if not batch:
                    alignment.frontier(output_id, micros)
                if not alignment.allowed(output_id, micros):
                    flush(micros)  # what it holds goes first: its frontier is then this row
                    stats.aligned_wait_s += alignment.wait(output_id, micros, stop)
            if knobs.speedup and micros is not None:
                ts = micros / 1e6
                ts0 = ts if ts0 is None else ts0
                due = wall0 + (ts - ts0) / knobs.speedup
                wait = due - time.monotonic()
                if wait > 0:
                    flush(micros)  # what is due goes now; then wait for this event's moment
                    time.sleep(wait)
            batch.append(envelope)
        flush(None, ended=True)
    except PlatformError as e:
        stats.error = e.operator_line()
        stats.failures += 1
        raise
    finally:
        if alignment is not None:
            alignment.frontier(output_id, None)  # ended or failed: it holds no one back
    return stats


def _send_batch(batch: list[dict[str, Any]], client: IgClient, knobs: StreamKnobs, stats: OutputStats,
                stop: threading.Event) -> None:
    pending = list(batch)
    attempt = 0
    rejected: list[str] = []
    while pending:
        try:
            stats.sends += 1
            results = client.push(pending)
        except RetryableSend as e:
            attempt += 1
            if attempt >= knobs.retry_max_attempts or stop.is_set():
                raise RetriesExhausted(f"{stats.output_id}: {attempt} attempts failed; last: {e.message}") from e
            stats.retries += 1
            time.sleep(min(knobs.retry_backoff_ms * (2 ** (attempt - 1)), 5_000) / 1000)
            continue
        again = []
        for event, result in zip(pending, results, strict=True):
            outcome = str(result.get("outcome"))
            if outcome in RETRY:
                again.append(event)
                continue
            stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
            if outcome in REJECTED:
                code = (result.get("error") or {}).get("code")
                rejected.append(f"{event.get('event_id')}:{outcome}:{code}")
        if again:
            attempt += 1
            if attempt >= knobs.retry_max_attempts:
                raise RetriesExhausted(f"{stats.output_id}: {len(again)} events still PUBLISH_AMBIGUOUS after {attempt} attempts")
            stats.retries += 1
            time.sleep(knobs.retry_backoff_ms / 1000)
        pending = again
    if rejected:
        raise EventsRejected(f"{stats.output_id}: IG rejected {len(rejected)} events, e.g. {', '.join(rejected[:3])}")
