"""Runs one stream-worker component as a daemon: settings -> handler, consumer, store, health -> loop.

Every RTDL worker (and later every consumer plane) starts here, so the run scope, the consumer
group, where health is written, the start-up back-off and the stop on SIGTERM are the same for
all. A component's handler module is imported only when it runs (`runtime.rtdl.<c>.handler`),
so the map lists a component before its handler exists and fails closed naming it when started.
"""

from __future__ import annotations

import importlib
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from runtime.components import COMPONENTS
from runtime.contracts.ids import is_platform_run_id, utc_iso
from runtime.errors import PermanentError, PlatformError, TransientError
from runtime.garbage import BatchCollection
from runtime.settings import Settings
from runtime.store.local import FolderStore
from runtime.store.port import ObjectStore
from runtime.worker.handler import StreamHandler
from runtime.worker.health import HealthWriter
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore

#: Component -> (handler module, as in the component map's `requires`; run-folder directory of seed 001).
WORKER_COMPONENTS: dict[str, tuple[str, str]] = {
    name: (str(COMPONENTS[name].requires), directory) for name, directory in (
        ("archive_writer", "archive_writer"), ("ieg", "identity_entity_graph"), ("ofp", "online_feature_plane"),
        ("csfb", "context_store_flow_binding"), ("df", "decision_fabric"), ("al", "action_layer"),
        ("dla", "decision_log_audit"),
        ("case_trigger", "case_trigger"), ("cm", "case_management"), ("ls", "label_store"))
}
#: Components whose tables are idempotent across consumer groups, so a second group (`run
#: --replay-group`) may re-read their topics: DF re-emits held decisions, AL counts duplicates
#: prevented, DLA drops records its index holds.
REPLAYABLE = ("df", "al", "dla")
#: Periodic daemons that consume no topic but write health like a worker (component -> run-folder directory).
DAEMON_DIRS: dict[str, str] = {"dl": "degrade_ladder"}

#: Default seconds a worker retries its start-up while the bus, database or object store is down.
DEFAULT_STARTUP_TIMEOUT_S = 300.0

Progress = Callable[[str], None]


class ComponentNotBuilt(PermanentError):
    """The component is in the map but its handler module is not in this image."""

    code = "COMPONENT_NOT_BUILT"
    next_step = "install a build that contains the component's handler, or run a slice without its pack"


class ReplayNotSupported(PermanentError):
    """A replay group asked of a component whose writes are not idempotent across consumer groups."""

    code = "REPLAY_NOT_SUPPORTED"
    next_step = f"replay only {', '.join(REPLAYABLE)}; rebuild RTDL state with `python -m runtime rtdl rebuild --from-archive`"


class RunUnknown(PermanentError):
    """The run id is not a pinned run (malformed, or no run.json under its evidence prefix)."""

    code = "RUN_UNKNOWN"
    next_step = "pass the platform_run_id P1 pinned (`fp status` shows the active run)"


def component_dir(component: str) -> str:
    """The component's folder in a run (seed 001: archive_writer, identity_entity_graph, ...)."""
    if component in DAEMON_DIRS:
        return DAEMON_DIRS[component]
    if component not in WORKER_COMPONENTS:
        raise PlatformError(f"{component!r} is not a stream-worker component; known: {', '.join(WORKER_COMPONENTS)}",
                            code="UNKNOWN_COMPONENT", next_step="use one of runtime/worker/run.py WORKER_COMPONENTS")
    return WORKER_COMPONENTS[component][1]


def import_built(module_name: str, missing: type[PermanentError], what: str) -> ModuleType:
    """Import a module another part of the platform provides; when it (not something it imports)
    is absent, raise `missing` naming it: the component is listed but not in this build."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise missing(f"{what}: {module_name} is not in this build") from None
        raise


def build_handler(component: str, settings: Settings, platform_run_id: str) -> StreamHandler:
    """Import `runtime.rtdl.<c>.handler` and call its `build(settings, platform_run_id)`; a module or
    `build` that is not there fails closed with COMPONENT_NOT_BUILT naming it."""
    component_dir(component)
    module_name = WORKER_COMPONENTS[component][0]
    module = import_built(module_name, ComponentNotBuilt, component)
    build = getattr(module, "build", None)
    if build is None:
        raise ComponentNotBuilt(f"{component}: {module_name} has no build(settings, platform_run_id)")
    handler: StreamHandler = build(settings, platform_run_id)
    return handler


def health_targets(settings: Settings, component: str, platform_run_id: str,
                   environ: Mapping[str, str], *, replay_group: str | None = None) -> list[tuple[ObjectStore, str]]:
    """Where `last_health.json` goes: under the run's evidence prefix in the object store (what
    dev_min and P8 read) and, when the local backend passes the runs root, the local run folder.
    A replay writes under `<component dir>/replay_<name>/` and never over the live worker's."""
    directory = component_dir(component) + (f"/replay_{replay_group}" if replay_group else "")
    relative = settings.registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=directory)
    return run_targets(settings, platform_run_id, relative, environ)


def run_targets(settings: Settings, platform_run_id: str, relative: str,
                environ: Mapping[str, str]) -> list[tuple[ObjectStore, str]]:
    """Where a document a daemon rewrites goes: `relative` under the run's evidence prefix in the
    object store and, when the local backend passes the runs root, under the local run folder."""
    registry = settings.registry
    prefix = registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    targets: list[tuple[ObjectStore, str]] = [(settings.bucket("S3_EVIDENCE_BUCKET"), prefix + relative)]
    runs_root = environ.get(registry.group("runtime_env")["ENVVAR_RUNS_ROOT"])
    if runs_root:
        targets.append((FolderStore(Path(runs_root) / platform_run_id), relative))
    return targets


def require_run_id(platform_run_id: str) -> None:
    """Refuse what is not a platform_run_id at all (before any connection)."""
    if not is_platform_run_id(platform_run_id):
        raise RunUnknown(f"{platform_run_id!r} is not a platform_run_id")


def require_run(settings: Settings, platform_run_id: str) -> None:
    """Refuse a malformed run id, or one P1 never pinned (no run.json in the evidence bucket)."""
    require_run_id(platform_run_id)
    prefix = settings.registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    key = prefix + settings.registry.text("EVIDENCE_RUN_JSON_KEY")
    if not store.exists(key):
        raise RunUnknown(f"run {platform_run_id} is not pinned: {store.uri(key)} does not exist")


@dataclass
class Assembled:
    """A worker ready to run and what must be closed after it."""

    worker: StreamWorker
    close: Callable[[], None]


def worker_group(settings: Settings, component: str, platform_run_id: str, replay_group: str | None = None) -> str:
    """The consumer group a worker reads as: the component's group of the run, or a replay's
    (REPLAY_NOT_SUPPORTED for a component outside REPLAYABLE)."""
    from runtime.components import consumer_group_id, replay_consumer_group_id

    if replay_group is None:
        return consumer_group_id(settings.registry, component, platform_run_id)
    if component not in REPLAYABLE:
        raise ReplayNotSupported(f"{component} cannot be replayed under a second consumer group: its state is not "
                                 "idempotent across groups")
    return replay_consumer_group_id(settings.registry, component, platform_run_id, replay_group)


def assemble(settings: Settings, component: str, platform_run_id: str, *, environ: Mapping[str, str],
             config: WorkerConfig | None = None, replay_group: str | None = None) -> Assembled:
    """Build the worker of `component` for one run: database, run-scoped consumer of its group (or
    of a replay group), publisher, admin, store and health. Raises TransientError while a dependency is down."""
    from runtime.bus import factory
    from runtime.db.migrate import require_migrations
    from runtime.db.postgres import Database

    if not settings.db_dsn:
        raise PlatformError("a stream worker keeps its positions in PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN")
    require_run(settings, platform_run_id)
    require_migrations(settings.db_dsn)
    group = worker_group(settings, component, platform_run_id, replay_group)
    handler = build_handler(component, settings, platform_run_id)
    db = Database(settings.db_dsn, name=f"{component} worker", max_size=2)
    closers: list[Callable[[], None]] = [db.close]
    try:
        db.ping()
        consumer = factory.consumer(settings, handler.input_topics(), group, platform_run_id,
                                    prompt=handler.on_decision_path)
        closers.insert(0, consumer.close)
        publisher = factory.publisher(settings)
        admin = factory.admin(settings)
    except BaseException:
        for close in closers:
            close()
        raise
    health = HealthWriter(health_targets(settings, component, platform_run_id, environ, replay_group=replay_group))

    def base() -> dict[str, Any]:
        return {"platform_run_id": platform_run_id, "written_at_utc": utc_iso(), "phase_id": "P8",
                "source_handles": ["COMPONENT_HEALTH_PATH_PATTERN", "CONSUMER_GROUP_ID_PATTERN"]}

    worker = StreamWorker(handler, consumer, publisher, db.transaction, WorkerStore(group, component, platform_run_id),
                          admin=admin, health=health, health_base=base, config=config, collection=BatchCollection())

    def close_all() -> None:
        for close in closers:
            close()

    return Assembled(worker, close_all)


def assemble_with_retry(settings: Settings, component: str, platform_run_id: str, *, environ: Mapping[str, str],
                        startup_timeout_s: float, progress: Progress, stop: threading.Event,
                        sleep: Callable[[float], None] = time.sleep, config: WorkerConfig | None = None,
                        replay_group: str | None = None) -> Assembled | None:
    """`assemble`, retried with back-off while a dependency is down (progress line each try); the
    last TransientError is raised once `startup_timeout_s` has passed; None when stopped meanwhile."""
    deadline = time.monotonic() + startup_timeout_s
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            return assemble(settings, component, platform_run_id, environ=environ, config=config, replay_group=replay_group)
        except TransientError as e:
            left = deadline - time.monotonic()
            then = f"retrying in {delay:.1f}s ({left:.0f}s left)" if left > 0 else f"giving up after {startup_timeout_s:g}s"
            progress(f"{component}: start-up attempt {attempt} failed ({e.code}: {e.message[:200]}); {then}")
            if left <= 0:
                raise
            if stop.wait(min(delay, left)):
                return None
            delay = min(delay * 2, 10.0)


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the loop finishes the batch in hand, commits and returns."""
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_component(settings: Settings, component: str, platform_run_id: str, *, environ: Mapping[str, str],
                  startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, progress: Progress = print,
                  stop: threading.Event | None = None, idle_exit_after: int | None = None,
                  replay_group: str | None = None) -> dict[str, int]:
    """Run the component's worker until stopped (SIGTERM/SIGINT) or idle; returns its counters."""
    stop = stop or threading.Event()
    worker_group(settings, component, platform_run_id, replay_group)  # refuse a bad replay before any connection
    assembled = assemble_with_retry(settings, component, platform_run_id, environ=environ,
                                    startup_timeout_s=startup_timeout_s, progress=progress, stop=stop,
                                    replay_group=replay_group)
    if assembled is None:
        return {}
    worker = assembled.worker
    progress(f"{component} consuming {', '.join(worker.handler.input_topics())} for run {platform_run_id} "
             f"as {worker.store.consumer_group}")
    try:
        counters = worker.run(stop, idle_exit_after=idle_exit_after)
    finally:
        assembled.close()
    progress(f"{component} stopped: applied {counters.applied}, dead letters {counters.dead_lettered}")
    return counters.as_dict()
