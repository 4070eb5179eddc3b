"""The oracle checker: fail-closed proof that every required stream view is ready for WSP.

Per required output: sealed input present, parts + manifest + receipt present and consistent
with each other and with the seal, and the rows really in order (checked on the parts, in part
order, with DuckDB). PASS only when every output passes; otherwise a failure report is left in
the oracle bucket and nothing claims PASS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_json, sha256_hex
from runtime.contracts.ids import utc_iso
from runtime.errors import PlatformError
from runtime.oracle import duck
from runtime.oracle.duck import S3Access, SortKnobs
from runtime.oracle.layout import OracleLayout
from runtime.oracle.outputs import OutputSpec
from runtime.oracle.pack import read_sealed_manifest
from runtime.oracle.streamsort import input_fingerprint, read_json
from runtime.store.port import ObjectStore


@dataclass
class OutputCheck:
    """The checker's verdict on one output."""

    output_id: str
    problems: list[str] = field(default_factory=list)
    rows: int | None = None
    receipt_key: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_output(
    spec: OutputSpec, store: ObjectStore, layout: OracleLayout, manifest: dict[str, Any], access: S3Access | None, knobs: SortKnobs
) -> OutputCheck:
    """Every check for one output; problems are collected, not raised."""
    result = OutputCheck(spec.output_id)
    files = manifest.get("outputs", {}).get(spec.output_id, [])
    if not files:
        result.problems.append("no sealed input files")
        return result
    for f in files:
        head = store.head(f["key"])
        if head is None or head.size != f["size"]:
            result.problems.append(f"input {f['key']} missing or resized since the seal")
    prefix = layout.view_prefix(spec.output_id)
    present = {o.key[len(prefix) :]: o.size for o in store.list(prefix)}
    parts = sorted(n for n in present if n.startswith("part-"))
    if not parts:
        result.problems.append("no stream view parts")
    view_manifest_key = layout.view_manifest_key(spec.output_id)
    if not store.exists(view_manifest_key):
        result.problems.append("stream view manifest missing")
    receipt_key = layout.receipt_key(spec.output_id)
    try:
        receipt = read_json(store, receipt_key)
    except PlatformError as e:
        result.problems.append(e.message)
        receipt = None
    if receipt is None:
        result.problems.append("stream sort receipt missing")
        return result
    result.receipt_key = receipt_key
    result.rows = int(receipt.get("output", {}).get("rows", 0))
    if receipt.get("input", {}).get("fingerprint") != input_fingerprint(manifest, spec):
        result.problems.append("receipt input fingerprint is not the sealed input's")
    if list(receipt.get("sort_keys", [])) != list(spec.sort_keys):
        result.problems.append(f"receipt sort keys {receipt.get('sort_keys')} are not the registry's {list(spec.sort_keys)}")
    receipt_parts = {p["name"]: p["size"] for p in receipt.get("output", {}).get("parts", [])}
    if receipt_parts != {n: present[n] for n in parts}:
        result.problems.append("parts present differ from the receipt")
    if store.exists(view_manifest_key) and sha256_hex(store.get(view_manifest_key)) != receipt.get("view_manifest_sha256"):
        result.problems.append("stream view manifest differs from the receipt")
    if result.problems or not parts:
        return result
    part_uris = [store.uri(prefix + n) for n in parts]
    keys = ", ".join(duck.ident(k) for k in spec.data_keys)
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE prev > cur) FROM ("
        f"SELECT row({keys}) AS cur, lag(row({keys})) OVER (ORDER BY file_index, file_row_number) AS prev "
        f"FROM {duck.source_sql(part_uris)})"
    )
    try:
        with duck.session(access, knobs) as con:
            [(rows, violations)] = duck.fetch(con, sql, f"ordering check of {spec.output_id}")
    except PlatformError as e:
        result.problems.append(f"{e.code}: {e.message}")
        return result
    if int(rows) != result.rows:
        result.problems.append(f"parts hold {rows} rows, receipt says {result.rows}")
    if int(violations):
        result.problems.append(f"{violations} row(s) out of order by {list(spec.data_keys)}")
    return result


def run_checker(
    specs: list[OutputSpec], store: ObjectStore, layout: OracleLayout, access: S3Access | None, knobs: SortKnobs
) -> list[OutputCheck]:
    """Check every output; a missing seal fails every output rather than raising."""
    try:
        _, manifest = read_sealed_manifest(store, layout)
    except PlatformError as e:
        return [OutputCheck(s.output_id, [f"{e.code}: {e.message}"]) for s in specs]
    return [check_output(s, store, layout, manifest, access, knobs) for s in specs]


def failure_report(layout: OracleLayout, results: list[OutputCheck]) -> dict[str, Any]:
    """The document left in the oracle bucket when the checker fails."""
    return {
        "platform_run_id": layout.platform_run_id,
        "written_at_utc": utc_iso(),
        "status": "FAIL",
        "outputs": [{"output_id": r.output_id, "status": "PASS" if r.ok else "FAIL", "problems": r.problems} for r in results],
    }


def write_failure_report(store: ObjectStore, layout: OracleLayout, results: list[OutputCheck]) -> str:
    """Store the failure report (derived, overwritten by each failing check); returns its URI."""
    store.put(layout.checker_report_key, canonical_json(failure_report(layout, results)))
    return store.uri(layout.checker_report_key)
