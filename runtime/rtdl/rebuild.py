"""Replay: rebuild a run's OFP, IEG and CSFB state from the ArchiveWriter's objects into empty state.

The archive index (runtime/rtdl/archive/store.py) names every archived batch of the run; its
records are read in index order (topic, partition, offset), verified against their sha256, decoded
as the worker decodes them, and applied through the same handlers' `apply`, a batch per
transaction. Derived state is a function of the set of records applied, so the state digest
equals the live run's (issue 12, acceptance "Replay"). A record a handler refuses is skipped and
counted, as the live worker dead-lettered it. Rebuild never writes over state: a run that already
has RTDL state in the target database is refused; target a fresh (migrated) database instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.port import BusRecord
from runtime.db.postgres import Database
from runtime.errors import PermanentError
from runtime.rtdl import store as progress
from runtime.rtdl.archive.store import index_rows, read_records
from runtime.rtdl.csfb import handler as csfb_handler
from runtime.rtdl.csfb import store as csfb_store
from runtime.rtdl.ieg import handler as ieg_handler
from runtime.rtdl.ieg import store as ieg_store
from runtime.rtdl.ofp import handler as ofp_handler
from runtime.rtdl.ofp import store as ofp_store
from runtime.settings import Settings
from runtime.store.port import ObjectStore
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, decode

#: The components a rebuild can target, in digest-section order, with how each is built and whether a run has state.
BUILDERS: dict[str, Callable[[Settings, str], StreamHandler]] = {
    "csfb": csfb_handler.build, "ieg": ieg_handler.build, "ofp": ofp_handler.build}
HAS_STATE: dict[str, Callable[[Any, str], bool]] = {
    "csfb": csfb_store.has_state, "ieg": ieg_store.has_state, "ofp": ofp_store.has_state}
DEFAULT_BATCH = 500


class RebuildTargetNotEmpty(PermanentError):
    """The target database already holds RTDL state (or progress) for the run."""

    code = "RTDL_REBUILD_TARGET_NOT_EMPTY"
    next_step = ("a rebuild never writes over state: point it at a fresh, migrated database (its own DSN) or rebuild a "
                 "run with no RTDL state there")


class RebuildUnknownComponent(PermanentError):
    """A component name the rebuild does not know."""

    code = "RTDL_REBUILD_UNKNOWN_COMPONENT"
    next_step = f"name components among: {', '.join(BUILDERS)}"


@dataclass
class RebuildResult:
    """What a rebuild read and applied, and the state digest it produced."""

    platform_run_id: str
    state_digest: str
    archive_objects: int
    records_read: int
    applied: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0


def handlers_for(settings: Settings, platform_run_id: str, components: Sequence[str]) -> list[StreamHandler]:
    """The handlers of `components` (names: ofp, ieg, csfb) for a run, built as the daemons build them."""
    unknown = [c for c in components if c not in BUILDERS]
    if unknown:
        raise RebuildUnknownComponent(f"unknown RTDL component(s): {', '.join(unknown)}")
    return [BUILDERS[c](settings, platform_run_id) for c in components]


def rebuild_from_archive(db: Database, object_store: ObjectStore, platform_run_id: str, components: Sequence[StreamHandler], *,
                         index_db: Database | None = None, batch_size: int = DEFAULT_BATCH) -> RebuildResult:
    """Apply the run's archived records through `components` into empty state in `db`; returns the
    state digest of the rebuilt sections. The archive index is read from `index_db` (default `db`:
    pass the live database when `db` is a fresh one)."""
    names = [h.component for h in components]
    unknown = [n for n in names if n not in HAS_STATE]
    if unknown:
        raise RebuildUnknownComponent(f"cannot rebuild component(s): {', '.join(unknown)}")
    with db.connection() as conn:
        occupied = [n for n in names if HAS_STATE[n](conn, platform_run_id) or progress.has_progress(conn, platform_run_id, n)]
    if occupied:
        raise RebuildTargetNotEmpty(f"run {platform_run_id} already has {', '.join(occupied)} state in the target database")
    topics = sorted({t for h in components for t in h.input_topics()})
    with (index_db or db).connection() as conn:
        rows = index_rows(conn, platform_run_id, topics)
    result = RebuildResult(platform_run_id, "", len(rows), 0, dict.fromkeys(names, 0), dict.fromkeys(names, 0))
    batch: list[InputRecord] = []
    for archived in read_records(object_store, rows):
        result.records_read += 1
        try:
            record = decode(BusRecord(archived.eb_ref, archived.key, archived.value))
        except PermanentError:
            result.unreadable += 1
            continue
        if record.envelope.get("platform_run_id") != platform_run_id:
            result.unreadable += 1
            continue
        batch.append(record)
        if len(batch) >= batch_size:
            _apply(db, components, batch, result)
            batch = []
    if batch:
        _apply(db, components, batch, result)
    with db.connection() as conn:
        result.state_digest = progress.state_digest(conn, platform_run_id, sorted(names))
    return result


def _apply(db: Database, components: Sequence[StreamHandler], batch: list[InputRecord], result: RebuildResult) -> None:
    """One transaction: each handler applies its records of the batch; a refused record is skipped
    (the batch is redone record by record, as the worker does before dead-lettering)."""
    with db.transaction() as conn:
        for handler in components:
            mine = [r for r in batch if r.eb_ref.topic in handler.input_topics()]
            if not mine:
                continue
            try:
                with conn.transaction():
                    handler.apply(conn, mine)
                result.applied[handler.component] += len(mine)
                continue
            except PermanentError:
                pass
            for record in mine:
                try:
                    with conn.transaction():
                        handler.apply(conn, [record])
                    result.applied[handler.component] += 1
                except PermanentError:
                    result.refused[handler.component] += 1
