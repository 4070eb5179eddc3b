"""Bring the embedded local substrate up, report it, take it down.

`up` starts only what the environment does not already provide: an S3 endpoint
(FP_OBJECT_STORE_ENDPOINT), a DSN (FP_DB_DSN) or a Kafka bootstrap (FP_KAFKA_BOOTSTRAP) replaces
the embedded server. It records every process it starts; `down` stops exactly those pids. Running
`up` twice is harmless: live processes are kept, dead ones are restarted. A restarted in-memory
server (moto, Tansu) has lost its state: `up` then refuses (SUBSTRATE_STATE_LOST) instead of
re-creating buckets and a new IG API key behind the running IG; `down` clears the state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from controller.substrate.bootstrap import BootstrapReport, bootstrap
from controller.substrate.epoch import IN_MEMORY_NOTE, IN_MEMORY_SERVERS, SubstrateStateLost, new_epoch, require_epoch, write_marks
from controller.substrate.processes import StartedProcess, is_running, port_answers, port_is_free, stop_pid
from controller.substrate.servers import start_moto, start_postgres, start_tansu
from controller.substrate.state import SubstrateState, clear_state, read_state, state_dir, write_state
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.db.postgres import connect
from runtime.errors import DatabaseUnavailable, ObjectStoreUnavailable, SubstrateError
from runtime.settings import BUS_KINDS, Settings, load_settings

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "fp-local", "AWS_SECRET_ACCESS_KEY": "fp-local", "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the embedded servers (registry defaults, overridable per call)."""

    moto: int
    postgres: int
    kafka: int

    @classmethod
    def from_registry(cls, registry: Registry, moto: int | None = None, postgres: int | None = None,
                      kafka: int | None = None) -> Ports:
        """Registry ports unless overridden."""
        return cls(moto or registry.integer("LOCAL_MOTO_PORT"), postgres or registry.integer("LOCAL_POSTGRES_PORT"),
                   kafka or registry.integer("LOCAL_KAFKA_PORT"))


@dataclass(frozen=True)
class SubstrateUp:
    """The result of `up`: the state in force, what bootstrap did, and what was (re)started now."""

    state: SubstrateState
    bootstrap: BootstrapReport
    started_now: list[str]


def ensure_local_credentials() -> None:
    """Local endpoints accept any credentials; make sure boto3 has some."""
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)


def settings_for(state: SubstrateState, registry: Registry) -> Settings:
    """Runtime settings that point at this substrate."""
    ensure_local_credentials()
    return load_settings({**os.environ, **state.runtime_environment(registry)}, environment=state.environment)


def _alive(state: SubstrateState, name: str) -> StartedProcess | None:
    for proc in state.processes:
        if proc.name == name and is_running(proc.pid, proc.argv):
            return proc
    return None


def _check_external_s3(endpoint: str) -> None:
    parsed = urlparse(endpoint)
    if not parsed.hostname or not port_answers(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80), timeout=2):
        raise ObjectStoreUnavailable(f"the S3 endpoint {endpoint} is down (no answer)",
                                     next_step="start it, or unset FP_OBJECT_STORE_ENDPOINT to use the embedded moto server")


def _check_dsn(dsn: str) -> None:
    try:
        with connect(dsn) as conn:
            conn.execute("SELECT 1")
    except DatabaseUnavailable as e:
        raise DatabaseUnavailable(f"the DSN refuses connections: {e.message}",
                                  next_step="fix FP_DB_DSN, or unset it to use the embedded PostgreSQL") from e


def _ensure_database(admin_dsn: str, db_name: str) -> None:
    """Create the platform's database unless it exists, with the C collation whatever the machine's
    locale: text compares byte by byte, as the runtime's Python code orders ids, so an ORDER BY or a
    `(ts, event_id) <` cut means the same on every laptop, and index probes on text keys skip the
    locale's collation routines (docs/decisions.md). A database created before keeps its collation."""
    with connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE \"{db_name}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")


def up(registry: Registry, *, bus: str, ports: Ports, environ: Mapping[str, str] | None = None,
       base: Path | None = None) -> SubstrateUp:
    """Start (or keep) the embedded servers, record them, and bootstrap the substrate."""
    if bus not in BUS_KINDS:
        raise SubstrateError(f"unknown bus {bus!r}; known: {', '.join(BUS_KINDS)}", code="UNKNOWN_BUS")
    env = os.environ if environ is None else environ
    names = registry.group("runtime_env")
    host = registry.text("LOCAL_BIND_HOST")
    directory = state_dir(registry, base)
    previous = read_state(directory)
    kept = [p for p in (previous.processes if previous else []) if is_running(p.pid, p.argv)]
    state = SubstrateState(environment=registry.environment, bus=bus, object_store_endpoint=None, db_dsn=None,
                           kafka_bootstrap=None, processes=list(kept), started_at_utc=utc_iso())
    started_now: list[str] = []
    try:
        external_s3 = env.get(names["ENVVAR_OBJECT_STORE_ENDPOINT"])
        if external_s3:
            _check_external_s3(external_s3)
            state.object_store_endpoint = external_s3
        else:
            moto = _alive(state, "moto") or _start(state, started_now, directory, lambda: start_moto(host, ports.moto, directory))
            state.object_store_endpoint = f"http://{host}:{moto.port}"
        external_dsn = env.get(names["ENVVAR_DB_DSN"])  # the owner's: migrations run as it
        if external_dsn:
            _check_dsn(external_dsn)
            state.db_owner_dsn = external_dsn
        else:
            pg = _alive(state, "postgres") or _start(state, started_now, directory,
                                                       lambda: start_postgres(host, ports.postgres, directory / "postgres"))
            user = registry.text("LOCAL_DB_USER")
            _ensure_database(f"postgresql://{user}@{host}:{pg.port}/postgres", registry.text("DB_NAME"))
            state.db_owner_dsn = f"postgresql://{user}@{host}:{pg.port}/{registry.text('DB_NAME')}"
        if bus == "kafka":
            external_kafka = env.get(names["ENVVAR_KAFKA_BOOTSTRAP"])
            if external_kafka:
                state.kafka_bootstrap = external_kafka
            else:
                broker = _alive(state, "tansu") or _start(state, started_now, directory,
                                                           lambda: start_tansu(host, ports.kafka, directory))
                state.kafka_bootstrap = f"{host}:{broker.port}"
        write_state(directory, state)
        settings = replace(settings_for(state, registry), db_dsn=state.db_owner_dsn)  # the owner marks the epoch
        if previous is not None and previous.epoch:
            restarted = sorted({p.name for p in previous.processes if p.name in IN_MEMORY_SERVERS} & set(started_now))
            if restarted:
                raise SubstrateStateLost(f"{', '.join(restarted)} had stopped and was restarted empty: it keeps its state in "
                                         f"memory, so the substrate's state (epoch {previous.epoch}) is lost. {IN_MEMORY_NOTE}")
            require_epoch(settings, previous.epoch, whose="the substrate")  # before bootstrap re-creates anything
        report = bootstrap(settings, state.db_owner_dsn)
        state.db_dsn = report.runtime_dsn
        state.epoch = previous.epoch if previous is not None and previous.epoch else new_epoch()
        write_marks(settings, state.epoch)
        write_state(directory, state)
    except SubstrateStateLost:
        state.epoch = previous.epoch if previous is not None else ""
        write_state(directory, state)  # keep refusing until `down`: never re-create behind a running IG
        raise
    except Exception:
        for proc in state.processes:
            if proc.name in started_now:
                stop_pid(proc.pid, proc.argv)
        state.processes = [p for p in state.processes if p.name not in started_now]
        if state.processes:
            write_state(directory, state)
        else:
            clear_state(directory)
        raise
    return SubstrateUp(state, report, started_now)


def _start(state: SubstrateState, started_now: list[str], directory: Path, launch: Callable[[], StartedProcess]) -> StartedProcess:
    directory.mkdir(parents=True, exist_ok=True)
    proc: StartedProcess = launch()
    state.processes = [p for p in state.processes if p.name != proc.name] + [proc]
    started_now.append(proc.name)
    write_state(directory, state)
    return proc


@dataclass(frozen=True)
class ProcessStatus:
    """One row of `fp substrate status`."""

    name: str
    pid: int
    port: int
    running: bool
    answering: bool
    log: str


def status(registry: Registry, base: Path | None = None) -> tuple[SubstrateState | None, list[ProcessStatus]]:
    """The recorded state and, per process we started, whether it runs and answers."""
    state = read_state(state_dir(registry, base))
    if state is None:
        return None, []
    host = registry.text("LOCAL_BIND_HOST")
    rows = [ProcessStatus(p.name, p.pid, p.port, is_running(p.pid, p.argv), port_answers(host, p.port), p.log)
            for p in state.processes]
    return state, rows


@dataclass(frozen=True)
class SubstrateDown:
    """What `down` stopped and what it found still present afterwards."""

    stopped: list[str]
    still_running: list[str]
    ports_still_taken: list[int]


def down(registry: Registry, base: Path | None = None) -> SubstrateDown:
    """Stop exactly the processes `up` recorded, newest first, and confirm they are gone."""
    directory = state_dir(registry, base)
    state = read_state(directory)
    if state is None:
        return SubstrateDown([], [], [])
    host = registry.text("LOCAL_BIND_HOST")
    stopped = [p.name for p in reversed(state.processes) if stop_pid(p.pid, p.argv)]
    still = [p.name for p in state.processes if is_running(p.pid, p.argv)]
    taken = [p.port for p in state.processes if not port_is_free(host, p.port)]
    if not still:
        clear_state(directory)
    return SubstrateDown(stopped, still, taken)
