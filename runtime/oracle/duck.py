"""The DuckDB adapter: a connection that reads/writes S3 through httpfs, and the lane's queries.

Extensions cannot be downloaded at run time here, so httpfs is LOADed from the
`duckdb-extension-httpfs` wheel (pinned to the duckdb version). The S3 endpoint, URL style, SSL
and credentials come from settings / the boto3 credential chain - the same for moto and AWS.
DuckDB errors are translated to oracle error codes at this edge.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from runtime.errors import PlatformError
from runtime.oracle.errors import InputCorrupt, SortEngineError


@dataclass(frozen=True)
class SortKnobs:
    """Resource guard rails of a sort: DuckDB memory, threads, spill folder and size, chunking."""

    memory_limit: str = "1GB"
    threads: int = 2
    temp_dir: str | None = None
    max_temp_size: str | None = None
    chunk_days: int = 0
    rows_per_part: int = 0  # 0 = automatic from memory_limit and the input's row width
    preserve_order: bool = True
    row_group_size: int = 16_384

    def as_dict(self) -> dict[str, Any]:
        """Plain form for receipts."""
        return {
            "memory_limit": self.memory_limit,
            "threads": self.threads,
            "temp_dir": self.temp_dir,
            "max_temp_size": self.max_temp_size,
            "chunk_days": self.chunk_days,
            "rows_per_part": self.rows_per_part,
            "preserve_order": self.preserve_order,
            "row_group_size": self.row_group_size,
        }


@dataclass(frozen=True)
class S3Access:
    """How DuckDB reaches the object store (endpoint None = AWS)."""

    endpoint: str | None
    region: str
    key_id: str | None = None
    secret: str | None = None
    session_token: str | None = None

    @classmethod
    def from_boto(cls, endpoint: str | None, region: str) -> S3Access:
        """Credentials from the boto3 chain (env, profile, ECS task role)."""
        import boto3

        creds = boto3.Session(region_name=region).get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
        return cls(
            endpoint=endpoint,
            region=region,
            key_id=frozen.access_key if frozen else None,
            secret=frozen.secret_key if frozen else None,
            session_token=frozen.token if frozen else None,
        )


PROGRESS_POLL_SECONDS = 0.5


def httpfs_extension_path() -> Path:
    """The httpfs binary shipped in the duckdb-extension-httpfs wheel for this duckdb version."""
    import duckdb_extension_httpfs

    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    wanted = base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if wanted.exists():
        return wanted
    found = sorted(base.glob("*/httpfs.duckdb_extension"))
    raise PlatformError(
        f"no httpfs extension for duckdb {duckdb.__version__} in {base} (found: {[p.parent.name for p in found]})",
        code="DUCKDB_HTTPFS_MISSING",
        next_step="pin duckdb and duckdb-extension-httpfs to the same version",
    )


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def connect(access: S3Access | None, knobs: SortKnobs) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with httpfs loaded, an S3 secret and the knobs applied."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute(f"LOAD {quote(str(httpfs_extension_path()))}")
        con.execute(f"SET memory_limit = {quote(knobs.memory_limit)}")
        con.execute(f"SET threads = {int(knobs.threads)}")
        con.execute("SET enable_progress_bar = true")  # tracked for query_progress(), never printed
        con.execute("SET enable_progress_bar_print = false")
        con.execute(f"SET preserve_insertion_order = {'true' if knobs.preserve_order else 'false'}")
        # Never DuckDB's default (`.tmp` in the working directory): spill under the system temp dir.
        temp_dir = knobs.temp_dir or os.path.join(tempfile.gettempdir(), "fp-duckdb-spill")
        os.makedirs(temp_dir, exist_ok=True)
        con.execute(f"SET temp_directory = {quote(temp_dir)}")
        if knobs.max_temp_size:
            con.execute(f"SET max_temp_directory_size = {quote(knobs.max_temp_size)}")
        if access is not None:
            parts = ["TYPE s3", f"REGION {quote(access.region)}"]
            if access.key_id and access.secret:
                parts += [f"KEY_ID {quote(access.key_id)}", f"SECRET {quote(access.secret)}"]
                if access.session_token:
                    parts.append(f"SESSION_TOKEN {quote(access.session_token)}")
            if access.endpoint:
                url = urlparse(access.endpoint)
                parts += [f"ENDPOINT {quote(url.netloc)}", "URL_STYLE 'path'", f"USE_SSL {'true' if url.scheme == 'https' else 'false'}"]
            con.execute(f"CREATE OR REPLACE SECRET oracle_s3 ({', '.join(parts)})")
    except duckdb.Error as e:
        con.close()
        raise SortEngineError(f"DuckDB setup failed: {e}") from e
    return con


@contextmanager
def session(access: S3Access | None, knobs: SortKnobs) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection closed afterwards, so spill files are released between outputs."""
    con = connect(access, knobs)
    try:
        yield con
    finally:
        con.close()


def source_sql(uris: list[str]) -> str:
    """read_parquet over an explicit file list (never a glob: the sealed manifest is the input).

    DuckDB exposes `file_index` (position in this list) and `file_row_number` as virtual columns:
    usable in ORDER BY, absent from `SELECT *`.
    """
    return f"read_parquet({source_list(uris)})"


def source_list(uris: list[str]) -> str:
    """A SQL list literal of file URIs."""
    return "[" + ", ".join(quote(u) for u in uris) + "]"


#: The registry's tie-breakers as DuckDB virtual columns. `filename` becomes `file_index`: the
#: files are listed in key order, so the order is the same, and sorting an integer instead of a
#: long URI per row is what lets a sort fit a small memory limit.
_VIRTUAL = {"filename": "file_index", "file_row_number": "file_row_number"}


def order_by(sort_keys: tuple[str, ...] | list[str]) -> str:
    """The ORDER BY list of a registry sort key."""
    return ", ".join(_VIRTUAL.get(k, ident(k)) for k in sort_keys)


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def columns(con: duckdb.DuckDBPyConnection, uris: list[str]) -> dict[str, str]:
    """Column name -> DuckDB type of the files; unreadable Parquet is ORACLE_INPUT_CORRUPT."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql(uris)}").fetchall()
    except duckdb.Error as e:
        raise InputCorrupt(f"cannot read the Parquet input ({len(uris)} file(s)): {str(e).splitlines()[0]}") from e
    return {str(r[0]): str(r[1]) for r in rows}


def fetch(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    what: str,
    corrupt_is_input: bool = False,
    on_progress: Callable[[float], None] | None = None,
) -> list[tuple[Any, ...]]:
    """Run a query, translating DuckDB errors to a named oracle error.

    With `on_progress`, DuckDB's own query progress (0-100) is polled from a helper thread while
    the query runs, so a long COPY shows movement instead of a frozen bar.
    """
    done = threading.Event()
    poller: threading.Thread | None = None
    if on_progress is not None:

        def poll() -> None:
            while not done.wait(PROGRESS_POLL_SECONDS):
                with contextlib.suppress(duckdb.Error):
                    value = con.query_progress()
                    if value >= 0:
                        on_progress(float(value))

        poller = threading.Thread(target=poll, name="duckdb-progress", daemon=True)
        poller.start()
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        if corrupt_is_input and isinstance(e, duckdb.IOException | duckdb.InvalidInputException):
            raise InputCorrupt(f"{what}: {first}") from e
        raise SortEngineError(f"{what}: {first}") from e
    finally:
        done.set()
        if poller is not None:
            poller.join()
