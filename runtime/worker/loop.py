"""The stream-worker loop: poll -> handle -> one transaction -> publish outbox -> commit offsets.

Offsets never move ahead of the durable write: the consumer is told a batch is done only after the
transaction holding its state, positions, outbox rows and dead letters committed and the outbox was
published. A transient failure (bus, database, object store down) keeps the batch in hand, turns
health RED naming the dependency, counts the outage and backs off; a record the handler refuses is
dead-lettered and the partition moves on. A dependency that hangs instead of failing (a frozen
broker leaves a commit waiting) is caught by a watchdog thread that turns health RED while the call
has not returned; the outage closes when an operation on the dependency succeeds again. Health is
written by a thread of its own, so its reads (positions, end offsets) and its object-store put never
hold a batch up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from runtime.bus.port import BusAdmin, BusRecord, EbRef, OutboundRecord, PartitionRange, Publisher, RunScopedConsumer
from runtime.errors import (
    BusUnavailable,
    DatabaseUnavailable,
    ObjectStoreUnavailable,
    PermanentError,
    PlatformError,
    PublishAmbiguous,
    TransientError,
)
from runtime.garbage import BatchCollection
from runtime.worker.handler import StreamHandler
from runtime.worker.health import Dependencies, HealthInputs, HealthWriter, WorkerCounters, dependency_of, health_document
from runtime.worker.memory import FreedMemory
from runtime.worker.records import InputRecord, OutputRecord, decode
from runtime.worker.store import DeadLetter, PartitionKey, WorkerStore, partition_key

Transaction = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class WorkerConfig:
    """Knobs of the loop (defaults suit a laptop and ECS alike)."""

    batch_size: int = 2000
    poll_timeout_s: float = 1.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    outbox_batch: int = 1000
    #: A bus call (poll, commit, publish, end offsets) that has not returned after this long counts
    #: as a bus outage (a frozen broker answers nothing and fails nothing).
    bus_stall_s: float = 5.0
    #: The same for a database transaction (a big batch may legitimately take a while).
    db_stall_s: float = 30.0


class StreamWorker:
    """Runs one handler over its run-scoped consumer until told to stop."""

    def __init__(self, handler: StreamHandler, consumer: RunScopedConsumer, publisher: Publisher | None,
                 transaction: Transaction, store: WorkerStore, *, admin: BusAdmin | None = None,
                 health: HealthWriter | None = None, health_base: Callable[[], dict[str, Any]] | None = None,
                 config: WorkerConfig | None = None, sleep: Callable[[float], None] = time.sleep,
                 memory: FreedMemory | None = None, collection: BatchCollection | None = None):
        self.handler = handler
        self.consumer = consumer
        self.publisher = publisher
        self.transaction = transaction
        self.store = store
        self.admin = admin
        self.health = health
        self.health_base = health_base
        self.config = config or WorkerConfig()
        self.sleep = sleep
        #: Returns what a finished batch freed to the OS (RSS follows what the worker holds, not its biggest batch).
        self.memory = memory or FreedMemory()
        #: When set, the cycle collector runs between batches, not on allocation counts (a daemon's
        #: process; None leaves the process's collector alone).
        self.collection = collection
        #: Whether a batch finished since the last trim (an idle worker has nothing to give back).
        self._freed = False
        self.counters = WorkerCounters()
        self.dependencies = Dependencies()
        self.last_error: PlatformError | None = None
        self._pending: list[BusRecord] | None = None
        #: Durable batches whose offset commit failed: retried after the next poll, never re-applied
        #: (the consumer must poll to rejoin its group after a broker outage cost it its membership).
        self._to_commit: list[BusRecord] | None = None
        self._backoff = 0.0
        #: Whether this worker's last outbox sweep left nothing unpublished: a batch that added no
        #: outputs then skips the sweep (a store that never publishes saves a transaction a batch).
        #: Unknown at start: the first batch sweeps what a crashed predecessor left.
        self._outbox_drained = False
        #: The dependency calls in progress, per thread: (dependency, what, started at) for the watchdog.
        self._calls: dict[int, tuple[str, str, float]] = {}
        #: Positions, dead letters and end offsets of the last health read that succeeded.
        self._view: tuple[dict[PartitionKey, int], int, list[PartitionRange]] = ({}, 0, [])
        self._health_lock = threading.Lock()
        #: One health read and write at a time (the health thread's and a forced one of the loop).
        self._flush_lock = threading.Lock()

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, idle_exit_after: int | None = None) -> WorkerCounters:
        """Loop until `stop` is set (SIGTERM: the batch in hand is finished and committed first), or
        after `idle_exit_after` empty polls in a row (tests and one-shot catch-up runs)."""
        idle = 0
        done = threading.Event()
        watchdog = threading.Thread(target=self._watch_stalls, args=(done,), name="worker-stall-watchdog", daemon=True)
        reporter = threading.Thread(target=self._report_health, args=(done,), name="worker-health", daemon=True)
        watchdog.start()
        reporter.start()
        if self.collection is not None:
            self.collection.start()
        try:
            while not stop.is_set():
                got = self.step()
                if self.collection is not None:
                    self.collection.after_step(got)
                idle = idle + 1 if got == 0 and self._pending is None and self._to_commit is None else 0
                if idle_exit_after is not None and idle >= idle_exit_after:
                    break
            if self._to_commit is not None:  # stopping: one last try (on failure the records are redelivered and skipped)
                with suppress(TransientError):
                    self._commit()
        finally:
            if self.collection is not None:
                self.collection.stop()
            done.set()
            watchdog.join(timeout=10.0)  # it wakes every second; a health write it is in has its own timeouts
            reporter.join(timeout=10.0)
        self.flush_health(force=True)
        return self.counters

    def step(self) -> int:
        """One cycle. Returns the number of records finished (0 when idle or backing off)."""
        try:
            if self._pending is None:
                with self._calling("bus", "poll"):
                    self._pending = self.consumer.poll(self.config.batch_size, self.config.poll_timeout_s)
                self.counters.polled += len(self._pending)
            batch = self._pending
            if batch:
                self._process(batch)
            elif self._to_commit is not None:
                self._commit()
            else:
                self._publish_outbox()
            self._pending = None
            self._backoff = 0.0
            finished = len(batch)
            del batch  # the batch's records and what they decoded to are garbage now: the health thread gives the pages back
            self._freed = self._freed or finished > 0
            return finished
        except TransientError as e:
            self._transient(e)
            return 0

    def _transient(self, error: PlatformError) -> None:
        _drop_frames(error)  # kept for health: its frames would keep the failed batch alive past its retry
        self.last_error = error
        self._note_down(error)
        self.counters.backoffs += 1
        self._backoff = min(self.config.backoff_max_s, max(self.config.backoff_initial_s, self._backoff * 2))
        self.flush_health(force=True, backing_off=True)
        self.sleep(self._backoff)

    # -- one batch ------------------------------------------------------------------------------

    def _process(self, batch: list[BusRecord]) -> None:
        decoded: list[tuple[BusRecord, InputRecord]] = []
        unreadable: list[DeadLetter] = []
        for record in batch:
            try:
                decoded.append((record, decode(record)))
            except PermanentError as e:
                unreadable.append(DeadLetter(record, self.store.platform_run_id, e.code, e.message))
        with self._calling("db", "batch transaction"), self.transaction() as conn:
            durable = self.store.lock_positions(conn, sorted({partition_key(r.eb_ref) for r in batch}))
            fresh = [(r, d) for r, d in decoded if _position(r.eb_ref) > durable.get(partition_key(r.eb_ref), -1)]
            letters = [d for d in unreadable if _position(d.record.eb_ref) > durable.get(partition_key(d.record.eb_ref), -1)]
            self.counters.redelivered_skipped += len(decoded) + len(unreadable) - len(fresh) - len(letters)
            outputs, refused = self._apply(conn, fresh)
            added = self.store.add_outputs(conn, outputs)
            self.counters.dead_lettered += self.store.add_dead_letters(conn, letters + refused)
            self.store.add_tally(conn, processed=len(fresh) - len(refused), dead_lettered=len(letters) + len(refused))
            self.store.advance_positions(conn, _last_positions(batch))
        self.dependencies.up("db")
        self.counters.outputs_added += added
        self.counters.applied += len(fresh) - len(refused)
        self.counters.batches += 1
        if added or not self._outbox_drained:
            self._publish_outbox()
        # Durable and published: only the commit is left. If it fails the batch is not applied
        # again; its commit is retried with the next batch, after the next poll (polling is what
        # lets a Kafka consumer rejoin its group when a broker outage cost it its membership).
        self._to_commit, self._pending = (self._to_commit or []) + batch, None
        self._commit()

    def _commit(self) -> None:
        """Commit the offsets of every durable batch not committed yet."""
        with self._calling("bus", "offset commit"):
            self.consumer.commit(self._to_commit or [])
        self._to_commit = None
        self.dependencies.up("bus")

    def _apply(self, conn: Any, fresh: list[tuple[BusRecord, InputRecord]]) -> tuple[list[OutputRecord], list[DeadLetter]]:
        """Apply the batch in one savepoint; if the handler refuses a record, redo it record by
        record so only the refused ones are dead-lettered."""
        if not fresh:
            return [], []
        try:
            with conn.transaction():
                return self.handler.apply(conn, [d for _, d in fresh]), []
        except PermanentError:
            pass
        outputs: list[OutputRecord] = []
        refused: list[DeadLetter] = []
        for record, item in fresh:
            try:
                with conn.transaction():
                    outputs.extend(self.handler.apply(conn, [item]))
            except PermanentError as e:
                refused.append(DeadLetter(record, self.store.platform_run_id, e.code, e.message))
        return outputs, refused

    def _publish_outbox(self) -> None:
        """Publish what the outbox holds for this component and run, then mark it published."""
        if self.publisher is None:
            return
        self._outbox_drained = False
        while True:
            with self._calling("db", "outbox read"), self.transaction() as conn:
                pending = self.store.pending_outputs(conn, self.config.outbox_batch)
            self.dependencies.up("db")
            if not pending:
                self._outbox_drained = True
                return
            with self._calling("bus", "outbox publish"):
                results = self.publisher.publish([OutboundRecord(p.topic, p.key, p.value) for p in pending])
            landed: dict[str, EbRef] = {}
            failure: PlatformError | None = None
            for row, result in zip(pending, results, strict=True):
                if isinstance(result, EbRef):
                    landed[row.record_id] = result
                elif isinstance(result, PlatformError):
                    failure = failure or result
                else:
                    failure = failure or PublishAmbiguous(f"publish of {row.record_id} failed: {result}")
            with self._calling("db", "outbox mark"), self.transaction() as conn:
                self.store.mark_published(conn, landed)
            self.counters.published += len(landed)
            if failure is not None:
                # An ambiguous or failed publish is retried with the same record id; consumers dedupe.
                raise failure if isinstance(failure, TransientError) else _as_transient(failure)
            if len(pending) < self.config.outbox_batch:
                self._outbox_drained = True
                return

    # -- health ---------------------------------------------------------------------------------

    def flush_health(self, *, force: bool = False, backing_off: bool = False) -> None:
        """Write last_health.json when due (always when forced); never raises for a health write.

        Reading positions and end offsets for it doubles as a probe of PostgreSQL and the bus: an
        idle worker notices an outage (and its end) too. When the consumer knows every end itself
        (`known_ranges`, no request), one topic's partition count is asked of the bus instead."""
        if self.health is None or self.health_base is None or not (force or self.health.due()):
            return
        if not self._flush_lock.acquire(blocking=False):
            if force:  # the health thread is in a read (maybe stuck on the outage itself): write what is known
                self._write_health(backing_off)
            return
        try:
            if force or self.health.due():
                self._flush_health(backing_off)
        finally:
            self._flush_lock.release()

    def _flush_health(self, backing_off: bool) -> None:
        positions, dead, ranges = self._view
        try:
            with self._calling("db", "health read"), self.transaction() as conn:
                positions = self.store.positions(conn)
                dead = self.store.dead_letter_count(conn)
            self.dependencies.up("db")
        except TransientError as e:
            self._note_down(e)
            dead = max(dead, self.counters.dead_lettered)
        if self.admin is not None:
            try:
                fresh: list[PartitionRange] = []
                with self._calling("bus", "end offsets"):
                    topics, probed = self.handler.input_topics(), False
                    for topic in topics:
                        known = self.consumer.known_ranges(topic)
                        if known is None:
                            fresh.extend(self.admin.ranges(topic))
                            probed = True
                        else:
                            fresh.extend(known)
                    if topics and not probed:  # the consumer's own view asks nothing: ask the bus once, as the probe
                        self.admin.partitions(topics[0])
                ranges = fresh
                self.dependencies.up("bus")
            except TransientError as e:
                self._note_down(e)
            except PlatformError:
                pass
        self._view = (positions, dead, ranges)
        self._write_health(backing_off)

    def _report_health(self, done: threading.Event) -> None:
        """The health thread: write the document whenever it is due, off the loop's path."""
        while not done.wait(HEALTH_TICK_S):
            with suppress(PlatformError, RuntimeError):  # RuntimeError: a counter dict the loop is growing
                self.flush_health()
            self.give_back_memory()

    def give_back_memory(self) -> None:
        """Return the pages finished batches freed to the OS (at most every `memory.interval_s`).

        Called by the health thread: a trim takes 10-70 ms and releases the GIL, so the loop keeps
        going meanwhile instead of holding a batch up."""
        if self._freed and self.memory.release():
            self._freed = False

    def _write_health(self, backing_off: bool) -> None:
        """Write the document from the last view (the watchdog calls this while the loop is stuck)."""
        if self.health is None or self.health_base is None:
            return
        with self._health_lock:
            positions, dead, ranges = self._view
            inputs = HealthInputs(self.counters, self.handler.counters(), positions, ranges, dead, self.last_error,
                                  backing_off, self.consumer.counts.as_dict(), self.dependencies)
            self.health.write(health_document(self.health_base(), self.handler.component, self.store.consumer_group, inputs))
            store_error = self.health.last_store_error
        if store_error is not None and dependency_of(store_error) == "object_store":
            self.dependencies.down("object_store", store_error)
        elif store_error is None and self.dependencies.is_down("object_store"):
            self.dependencies.up("object_store")

    # -- dependencies ---------------------------------------------------------------------------

    def _note_down(self, error: PlatformError) -> None:
        name = dependency_of(error)
        if name is not None:
            self.dependencies.down(name, error)

    @contextmanager
    def _calling(self, dependency: str, what: str) -> Iterator[None]:
        """Mark a call of this thread on `dependency` in progress, for the stall watchdog."""
        thread = threading.get_ident()
        self._calls[thread] = (dependency, what, time.monotonic())
        try:
            yield
        finally:
            self._calls.pop(thread, None)

    def _watch_stalls(self, done: threading.Event) -> None:
        """Every second: a dependency call running longer than its stall limit opens an outage of
        that dependency and writes a RED health from the last view (the loop itself is stuck)."""
        limits = {"bus": self.config.bus_stall_s, "db": self.config.db_stall_s}
        while not done.wait(1.0):
            now = time.monotonic()
            stalled = [(now - started, dependency, what) for dependency, what, started in list(self._calls.values())
                       if now - started >= limits.get(dependency, float("inf"))]
            if not stalled:
                continue
            waited, dependency, what = max(stalled)
            error = _STALLED[dependency](f"{what} has not returned for {waited:.1f}s (the {dependency} does not answer)")
            if self.dependencies.down(dependency, error) or (self.health is not None and self.health.due()):
                with suppress(PlatformError, RuntimeError):  # RuntimeError: a counter dict the loop is growing
                    self._write_health(backing_off=True)


#: How often the health thread looks whether a health document is due.
HEALTH_TICK_S = 0.25

#: The error a stalled call on each dependency is reported as.
_STALLED: dict[str, type[TransientError]] = {"bus": BusUnavailable, "db": DatabaseUnavailable,
                                             "object_store": ObjectStoreUnavailable}


class _OutboxPublishFailed(TransientError):
    code = "OUTBOX_PUBLISH_FAILED"
    next_step = "the outbox row stays unpublished and is retried with the same id; check the bus"


def _drop_frames(error: BaseException) -> None:
    """Forget the tracebacks of `error` and the errors it was raised from (their frames hold the
    locals of the failed call: a whole batch). Code and message, all health reports, stay."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


def _as_transient(error: PlatformError) -> TransientError:
    return _OutboxPublishFailed(f"{error.code}: {error.message}")


def _position(ref: EbRef) -> int:
    return int(ref.offset)


def _last_positions(batch: list[BusRecord]) -> dict[PartitionKey, int]:
    out: dict[PartitionKey, int] = {}
    for record in batch:
        key = partition_key(record.eb_ref)
        out[key] = max(out.get(key, -1), _position(record.eb_ref))
    return out

