"""SR gates over plain data: what passes, what fails, and that unknown fields are tolerated."""

from __future__ import annotations

import hashlib
import json

import pytest

from runtime.sr.domain import (
    GateFailed,
    OracleView,
    OutputView,
    evaluate_gates,
    listed_parts,
    require_all_passed,
    validate_inputs,
)

RUN = "platform_20260102T030405Z"
PREFIX = "oracle/x/stream_view/ts_utc/output_id=out_a/"


def _output(receipt: dict | None = None, manifest: dict | None = None, objects: dict | None = None) -> OutputView:
    default_manifest = {"output_id": "out_a", "parts": [{"name": "part-000000.parquet", "size": 4}]}
    manifest_bytes = json.dumps(manifest if manifest is not None else default_manifest).encode()
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    receipt_doc = receipt if receipt is not None else {"output_id": "out_a", "view_manifest_sha256": digest}
    return OutputView("out_a", PREFIX, json.dumps(receipt_doc).encode(), manifest_bytes,
                      objects if objects is not None else {"part-000000.parquet": 4})


def _view(*outputs: OutputView, seal: bytes | None = b"{}") -> OracleView:
    return OracleView(RUN, "oracle/x/pack/", seal, outputs)


def test_complete_view_passes_every_gate() -> None:
    gates = evaluate_gates(_view(_output()))
    assert [(g.name, g.ok) for g in gates] == [("oracle_seal", True), ("stream_view:out_a", True)]
    require_all_passed(gates)


@pytest.mark.parametrize(
    ("output", "seal", "fragment"),
    [
        (_output(), None, "_SEALED.json does not exist"),
        (_output(), b"not json", "not a JSON object"),
        (_output(receipt={"output_id": "out_b"}), b"{}", "receipt names output_id 'out_b'"),
        (_output(receipt={"output_id": "out_a", "platform_run_id": "platform_20990101T000000Z"}), b"{}", "belongs to run"),
        (_output(receipt={"output_id": "out_a", "view_manifest_sha256": "0" * 64}), b"{}", "differs from the digest"),
        (_output(manifest={"output_id": "out_a", "parts": []}), b"{}", "lists no parts"),
        (_output(manifest={"output_id": "out_a"}), b"{}", "lists no parts"),
        (_output(manifest={"output_id": "out_b", "parts": ["part-000000.parquet"]}), b"{}", "manifest names output_id"),
        (_output(objects={}), b"{}", "does not exist"),
        (_output(objects={"part-000000.parquet": 5}), b"{}", "has 5 bytes"),
    ],
)
def test_broken_views_fail_closed_with_the_reason(output: OutputView, seal: bytes | None, fragment: str) -> None:
    gates = evaluate_gates(_view(output, seal=seal))
    assert not all(g.ok for g in gates)
    with pytest.raises(GateFailed, match="gate\\(s\\) failed") as caught:
        require_all_passed(gates)
    assert fragment in caught.value.message


def test_missing_receipt_and_manifest_are_named() -> None:
    view = OutputView("out_a", PREFIX, None, None, {})
    [_, gate] = evaluate_gates(_view(view))
    assert not gate.ok and "_stream_sort_receipt.json does not exist" in (gate.detail or "")
    receipt_only = OutputView("out_a", PREFIX, b'{"output_id": "out_a"}', None, {})
    [_, gate] = evaluate_gates(_view(receipt_only))
    assert "_stream_view_manifest.json does not exist" in (gate.detail or "")


def test_part_lists_are_read_tolerantly() -> None:
    assert listed_parts({"parts": ["a.parquet", "b.parquet"]}) == [("a.parquet", None), ("b.parquet", None)]
    assert listed_parts({"files": [{"key": "k/a.parquet", "size": 3, "x": 1}]}) == [("k/a.parquet", 3)]
    assert listed_parts({"parts": [{"size": 3}]}) is None
    assert listed_parts({"other": 1}) is None


def test_part_names_may_be_full_keys_or_uris() -> None:
    manifest = {"parts": [PREFIX + "part-000000.parquet", f"s3://bucket/{PREFIX}part-000000.parquet"]}
    [_, gate] = evaluate_gates(_view(_output(receipt={"output_id": "out_a"}, manifest=manifest)))
    assert gate.ok, gate.detail


def test_scenario_run_id_is_deterministic_per_key() -> None:
    assert validate_inputs(RUN, "key-1") == validate_inputs(RUN, "key-1")
    assert validate_inputs(RUN, "key-1") != validate_inputs(RUN, "key-2")
    assert len(validate_inputs(RUN, "key-1")) == 32
