"""Pieces of stream-sort that need no server: day chunking, the httpfs wheel, sort-key mapping."""

from __future__ import annotations

from datetime import date

import duckdb

from runtime.contracts.registry import load_registry
from runtime.oracle.duck import SortKnobs, connect, httpfs_extension_path, order_by
from runtime.oracle.outputs import OutputCatalog
from runtime.oracle.streamsort import _day_chunks


def test_day_chunks_group_days_with_rows_into_windows() -> None:
    days = [(date(2026, 1, 5), 10), (date(2026, 1, 6), 5), (date(2026, 1, 9), 7)]
    assert _day_chunks(days, 1) == [
        (date(2026, 1, 5), date(2026, 1, 6), 10),
        (date(2026, 1, 6), date(2026, 1, 7), 5),
        (date(2026, 1, 9), date(2026, 1, 10), 7),
    ]
    assert _day_chunks(days, 2) == [(date(2026, 1, 5), date(2026, 1, 7), 15), (date(2026, 1, 9), date(2026, 1, 11), 7)]


def test_httpfs_is_loaded_from_the_wheel_matching_duckdb() -> None:
    path = httpfs_extension_path()
    assert path.exists() and f"v{duckdb.__version__}" in str(path)
    con = connect(None, SortKnobs(memory_limit="64MB", threads=1))
    loaded = con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
    con.close()
    assert loaded == [(True,)]


def test_registry_sort_keys_map_tie_breakers_to_duckdb_virtual_columns() -> None:
    catalog = OutputCatalog(load_registry("local_parity"))
    assert order_by(catalog.spec("s3_event_stream_with_fraud_6B").sort_keys) == '"ts_utc", file_index, file_row_number'
    labels = catalog.spec("s4_event_labels_6B")
    assert labels.data_keys == ("flow_id", "event_seq") and labels.time_key is None
    assert catalog.spec("s1_session_index_6B").time_key == "session_start_utc"


def test_memory_sizes_parse_like_duckdb_and_garbage_is_refused() -> None:
    import pytest

    from runtime.errors import PlatformError
    from runtime.oracle.streamsort import memory_bytes

    assert memory_bytes("100MB") == 100_000_000
    assert memory_bytes("2GiB") == 2 * 1024**3
    assert memory_bytes("1.5GB") == 1_500_000_000
    with pytest.raises(PlatformError) as e:
        memory_bytes("lots")
    assert e.value.code == "SORT_KNOB_INVALID"


def test_long_queries_report_duckdb_progress(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from runtime.oracle import duck

    monkeypatch.setattr(duck, "PROGRESS_POLL_SECONDS", 0.02)
    seen: list[float] = []
    con = connect(None, SortKnobs(memory_limit="256MB", threads=1))
    try:
        [(total,)] = duck.fetch(con, "SELECT sum(hash(range)) FROM range(400000000)", "progress probe", on_progress=seen.append)
    finally:
        con.close()
    assert total is not None
    assert seen and all(0 <= p <= 100 for p in seen)
