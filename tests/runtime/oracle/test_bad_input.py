"""Bad input: each a named error, a non-zero exit, and nothing half-written (no parts, no receipt)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runtime.contracts.registry import load_registry
from tests.runtime.oracle.helpers import invoke, snapshot

REG = load_registry("local_parity")


def _seal(run_id: str, root: Path) -> None:
    for args in (["sync", "--root", str(root)], ["pack"]):
        r = invoke(*args, "--platform-run-id", run_id)
        assert r.exit_code == 0, r.output


def _assert_refused(settings, run_id: str, output_id: str, code: str) -> None:  # type: ignore[no-untyped-def]
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", output_id)
    assert r.exit_code == 1, r.output
    assert code in r.output
    prefix = REG.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id=output_id)
    assert snapshot(settings, prefix) == {}


def _rewrite(root: Path, output_id: str, fn) -> None:  # type: ignore[no-untyped-def]
    for path in sorted((root / output_id).glob("part-*.parquet")):
        pq.write_table(fn(pq.read_table(path)), path)


def test_corrupt_parquet_is_input_corrupt(oracle_settings, run_id: str, engine_root: Path) -> None:
    last = sorted((engine_root / "arrival_events_5B").glob("part-*.parquet"))[-1]
    last.write_bytes(b"PAR1 this is not parquet at all" * 10)
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, "arrival_events_5B", "ORACLE_INPUT_CORRUPT")


@pytest.mark.parametrize(
    ("output_id", "column"),
    [("s1_session_index_6B", "session_start_utc"), ("s3_event_stream_with_fraud_6B", "ts_utc"), ("s4_event_labels_6B", "event_seq")],
)
def test_missing_sort_column_is_refused(oracle_settings, run_id: str, engine_root: Path, output_id: str, column: str) -> None:
    _rewrite(engine_root, output_id, lambda t: t.drop_columns([column]))
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, output_id, "SORT_COLUMN_MISSING")


def test_missing_payload_column_is_schema_invalid(oracle_settings, run_id: str, engine_root: Path) -> None:
    _rewrite(engine_root, "s3_event_stream_with_fraud_6B", lambda t: t.drop_columns(["merchant_country"]))
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, "s3_event_stream_with_fraud_6B", "ORACLE_SCHEMA_INVALID")


def test_empty_output_is_refused(oracle_settings, run_id: str, engine_root: Path) -> None:
    _rewrite(engine_root, "s4_flow_bank_view_6B", lambda t: t.slice(0, 0))
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, "s4_flow_bank_view_6B", "ORACLE_OUTPUT_EMPTY")


def test_unknown_and_duplicated_output_ids_are_refused(oracle_settings, run_id: str, engine_root: Path) -> None:
    _seal(run_id, engine_root)
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", "no_such_output_6B")
    assert r.exit_code == 1 and "UNKNOWN_OUTPUT_ID" in r.output
    r = invoke("stream-sort", "--platform-run-id", run_id, "--output-id", "arrival_events_5B", "--output-id", "arrival_events_5B")
    assert r.exit_code == 1 and "DUPLICATE_OUTPUT_ID" in r.output
    assert snapshot(oracle_settings, REG.render("ORACLE_STREAM_VIEW_ROOT_PATTERN", platform_run_id=run_id)) == {}


def test_output_absent_from_the_seal_is_input_missing(oracle_settings, run_id: str, engine_root: Path) -> None:
    for path in (engine_root / "s1_arrival_entities_6B").glob("*"):
        path.unlink()
    (engine_root / "s1_arrival_entities_6B").rmdir()
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, "s1_arrival_entities_6B", "ORACLE_INPUT_MISSING")
    r = invoke("check", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "ORACLE_CHECKER_FAILED" in r.output


def test_steps_out_of_order_and_malformed_options(oracle_settings, run_id: str, tmp_path: Path) -> None:
    r = invoke("stream-sort", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "ORACLE_NOT_SEALED" in r.output
    r = invoke("pack", "--platform-run-id", run_id)
    assert r.exit_code == 1 and "ENGINE_RUN_MISSING" in r.output
    r = invoke("sync", "--root", str(tmp_path / "nothing"), "--platform-run-id", run_id)
    assert r.exit_code == 1 and "ENGINE_RUN_MISSING" in r.output
    r = invoke("pack", "--platform-run-id", "run-1")
    assert r.exit_code == 1 and "PLATFORM_RUN_ID_INVALID" in r.output
    r = invoke("generate", "--root", str(tmp_path / "big"), "--scale", "999999999999")
    assert r.exit_code == 1 and "ENGINE_CONFIG_INVALID" in r.output
    r = invoke("generate", "--root", str(tmp_path / "bad"), "--fraud-rate", "0.9")
    assert r.exit_code == 1 and "ENGINE_CONFIG_INVALID" in r.output
    assert not (tmp_path / "big").exists() and not (tmp_path / "bad").exists()
    r = invoke("stream-sort", "--platform-run-id", run_id, "--threads", "0")
    assert r.exit_code == 2  # typer rejects the option itself


def test_null_sort_keys_are_refused(oracle_settings, run_id: str, engine_root: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    def null_first(t):  # type: ignore[no-untyped-def]
        mask = pa.array([i == 0 for i in range(t.num_rows)])
        column = pc.if_else(mask, pa.scalar(None, type=t.schema.field("flow_id").type), t.column("flow_id"))
        return t.set_column(t.schema.get_field_index("flow_id"), "flow_id", column)

    _rewrite(engine_root, "s4_flow_truth_labels_6B", null_first)
    _seal(run_id, engine_root)
    _assert_refused(oracle_settings, run_id, "s4_flow_truth_labels_6B", "SORT_KEY_NULL")
