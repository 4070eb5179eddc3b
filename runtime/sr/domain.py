"""Scenario Runner domain: inputs, gates and the READY message, over plain data only.

SR is the readiness authority (P5): no READY unless the oracle pack is sealed and every required
output has a stream view whose receipt and manifest agree and whose parts exist. Reading the
oracle files is tolerant: only generic fields are used (`output_id`, the listed parts, optional
sizes and the optional manifest digest in the receipt), so extra fields never break the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import sha256_hex
from runtime.contracts.ids import is_platform_run_id, scenario_run_id
from runtime.errors import PlatformError

MAX_EQUIVALENCE_KEY_CHARS = 256
SEAL_NAME = "_SEALED.json"
RECEIPT_NAME = "_stream_sort_receipt.json"
VIEW_MANIFEST_NAME = "_stream_view_manifest.json"
#: Manifest fields that may hold the part list, in the order they are tried.
_PART_LIST_FIELDS = ("parts", "files", "part_files", "objects")
_PART_NAME_FIELDS = ("name", "key", "path", "file")


class SrInputInvalid(PlatformError):
    """The SR invocation's inputs are malformed; nothing was read or written."""

    code = "SR_INPUT_INVALID"
    next_step = "pass --platform-run-id platform_<yyyymmddTHHMMSSZ> and a non-empty --equivalence-key"


class GateFailed(PlatformError):
    """At least one SR gate failed; READY was not published."""

    code = "SR_GATE_FAILED"
    next_step = "fix the oracle pack / stream views (P3) named above, then rerun SR"


@dataclass(frozen=True)
class GateResult:
    """One gate: its name, whether it passed, and why not."""

    name: str
    ok: bool
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The evidence form (common `check` shape)."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class OutputView:
    """What the store holds for one output's stream view: the two JSON files and the object sizes."""

    output_id: str
    prefix: str
    receipt: bytes | None
    manifest: bytes | None
    objects: dict[str, int] = field(default_factory=dict)  # name relative to prefix -> size


@dataclass(frozen=True)
class OracleView:
    """What SR saw of one run's oracle: the seal and every required output's stream view."""

    platform_run_id: str
    pack_prefix: str
    seal: bytes | None
    outputs: tuple[OutputView, ...]


def validate_inputs(platform_run_id: str, equivalence_key: str) -> str:
    """Check the inputs and return the deterministic scenario_run_id of the key."""
    if not isinstance(platform_run_id, str) or not is_platform_run_id(platform_run_id):
        raise SrInputInvalid(f"platform_run_id {platform_run_id!r} is malformed (expected platform_<yyyymmddTHHMMSSZ>)")
    return validate_key(equivalence_key)


def validate_key(equivalence_key: str) -> str:
    """Check an equivalence key and return its scenario_run_id."""
    if not isinstance(equivalence_key, str) or not equivalence_key.strip():
        raise SrInputInvalid("the equivalence key is empty")
    if len(equivalence_key) > MAX_EQUIVALENCE_KEY_CHARS:
        raise SrInputInvalid(f"the equivalence key has {len(equivalence_key)} characters; at most {MAX_EQUIVALENCE_KEY_CHARS}")
    if equivalence_key != equivalence_key.strip() or not equivalence_key.isprintable():
        raise SrInputInvalid("the equivalence key has surrounding whitespace or control characters")
    return scenario_run_id(equivalence_key)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def listed_parts(manifest: dict[str, Any]) -> list[tuple[str, int | None]] | None:
    """(name, size or None) of each part a manifest lists; None when it has no part list."""
    for list_field in _PART_LIST_FIELDS:
        entries = manifest.get(list_field)
        if isinstance(entries, list):
            parts: list[tuple[str, int | None]] = []
            for entry in entries:
                if isinstance(entry, str):
                    parts.append((entry, None))
                elif isinstance(entry, dict):
                    name = next((entry[f] for f in _PART_NAME_FIELDS if isinstance(entry.get(f), str)), None)
                    if name is None:
                        return None
                    size = entry.get("size")
                    parts.append((name, size if isinstance(size, int) else None))
                else:
                    return None
            return parts
    return None


def _relative(name: str, prefix: str) -> str:
    """A part name relative to the output prefix (accepts relative names, keys and s3:// URIs)."""
    if name.startswith("s3://"):
        name = name.split("/", 3)[3] if name.count("/") >= 3 else name
    return name[len(prefix):] if name.startswith(prefix) else name


def seal_gate(view: OracleView) -> GateResult:
    """The oracle pack is sealed: `_SEALED.json` exists under the pack prefix and is a JSON object."""
    name = "oracle_seal"
    if view.seal is None:
        return GateResult(name, False, f"{view.pack_prefix}{SEAL_NAME} does not exist")
    if _json_object(view.seal) is None:
        return GateResult(name, False, f"{view.pack_prefix}{SEAL_NAME} is not a JSON object")
    return GateResult(name, True)


def stream_view_gate(view: OutputView, platform_run_id: str) -> GateResult:
    """One output's stream view is complete: receipt + manifest agree and every listed part exists."""
    name = f"stream_view:{view.output_id}"
    receipt = _json_object(view.receipt)
    if receipt is None:
        missing = view.receipt is None
        return GateResult(name, False, f"{view.prefix}{RECEIPT_NAME} {'does not exist' if missing else 'is not a JSON object'}")
    if receipt.get("output_id") != view.output_id:
        return GateResult(name, False, f"receipt names output_id {receipt.get('output_id')!r}, expected {view.output_id!r}")
    receipt_run = receipt.get("platform_run_id")
    if receipt_run is not None and receipt_run != platform_run_id:
        return GateResult(name, False, f"receipt belongs to run {receipt_run!r}, not {platform_run_id}")
    manifest = _json_object(view.manifest)
    if manifest is None:
        missing = view.manifest is None
        return GateResult(name, False, f"{view.prefix}{VIEW_MANIFEST_NAME} {'does not exist' if missing else 'is not a JSON object'}")
    if manifest.get("output_id", view.output_id) != view.output_id:
        return GateResult(name, False, f"manifest names output_id {manifest.get('output_id')!r}, expected {view.output_id!r}")
    expected_digest = receipt.get("view_manifest_sha256")
    if isinstance(expected_digest, str) and view.manifest is not None and sha256_hex(view.manifest) != expected_digest:
        return GateResult(name, False, "the manifest differs from the digest recorded in the receipt")
    parts = listed_parts(manifest)
    if not parts:
        return GateResult(name, False, "the manifest lists no parts")
    for part_name, size in parts:
        relative = _relative(part_name, view.prefix)
        if relative not in view.objects:
            return GateResult(name, False, f"part {relative} listed in the manifest does not exist")
        if size is not None and view.objects[relative] != size:
            return GateResult(name, False, f"part {relative} has {view.objects[relative]} bytes, the manifest says {size}")
    return GateResult(name, True, f"{len(parts)} part(s)")


def evaluate_gates(view: OracleView) -> list[GateResult]:
    """Every gate, in order: the seal, then one per required output."""
    return [seal_gate(view), *(stream_view_gate(output, view.platform_run_id) for output in view.outputs)]


def require_all_passed(gates: list[GateResult]) -> None:
    """Raise GateFailed naming every failed gate (fail closed: no READY)."""
    failed = [g for g in gates if not g.ok]
    if failed:
        raise GateFailed("gate(s) failed: " + "; ".join(f"{g.name} ({g.detail})" for g in failed))


def facts_view(view: OracleView, scenario_run: str, equivalence_key: str, oracle_pack_ref: str,
               stream_view_refs: dict[str, str]) -> dict[str, Any]:
    """The run facts SR pins for downstream readers (deterministic: no timestamps)."""
    return {
        "platform_run_id": view.platform_run_id,
        "scenario_run_id": scenario_run,
        "equivalence_key": equivalence_key,
        "oracle_pack_ref": oracle_pack_ref,
        "output_ids": [o.output_id for o in view.outputs],
        "stream_view_prefixes": dict(stream_view_refs),
        "stream_view_parts": {o.output_id: len(listed_parts(_json_object(o.manifest) or {}) or []) for o in view.outputs},
        "receipt_sha256": {o.output_id: sha256_hex(o.receipt) for o in view.outputs if o.receipt is not None},
    }


def ready_message(platform_run_id: str, scenario_run: str, facts_view_ref: str, oracle_pack_ref: str,
                  equivalence_key: str, published_at_utc: str) -> dict[str, Any]:
    """The READY control message (schema events/control_ready.schema.json)."""
    return {
        "platform_run_id": platform_run_id,
        "scenario_run_id": scenario_run,
        "facts_view_ref": facts_view_ref,
        "oracle_pack_ref": oracle_pack_ref,
        "equivalence_key": equivalence_key,
        "published_at_utc": published_at_utc,
    }
