"""Pack + seal: the manifest of every synced object (size, sha256) and a write-once `_SEALED.json`.

The seal is the oracle's boundary: everything downstream (stream-sort, SR gates) reads the
sealed manifest, not a listing. Re-packing identical content is a no-op; other content under a
sealed pack root is MANIFEST_MISMATCH. check-strict re-hashes every sealed object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.contracts.canonical import canonical_digest, canonical_json
from runtime.contracts.ids import utc_iso
from runtime.errors import WriteConflict
from runtime.oracle.engine.run import MARKER
from runtime.oracle.errors import EngineRunMissing, ManifestMismatch, NotSealed, SealVerifyFailed
from runtime.oracle.layout import OracleLayout
from runtime.oracle.objects import object_sha256
from runtime.store.port import ObjectStore

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class PackResult:
    """The sealed pack: manifest digest, counts, and whether this call sealed it."""

    manifest_sha256: str
    objects: int
    bytes: int
    newly_sealed: bool


def build_manifest(store: ObjectStore, layout: OracleLayout, *, progress: Progress | None = None) -> dict[str, Any]:
    """Hash every object under the engine prefix into a manifest grouped by output id."""
    objects = list(store.list(layout.engine_prefix))
    if not objects:
        raise EngineRunMissing(f"nothing under {store.uri(layout.engine_prefix)}; run `oracle sync` first")
    outputs: dict[str, list[dict[str, Any]]] = {}
    marker: dict[str, Any] | None = None
    for info in objects:
        relative = info.key[len(layout.engine_prefix) :]
        entry = {"key": info.key, "size": info.size, "sha256": object_sha256(store, info.key)}
        if relative == MARKER:
            marker = entry
        elif "/" in relative:
            outputs.setdefault(relative.split("/", 1)[0], []).append(entry)
        if progress is not None:
            progress(info.size, relative)
    if marker is None:
        raise EngineRunMissing(f"{store.uri(layout.engine_prefix + MARKER)} is missing: the sync did not finish; run `oracle sync` again")
    return {
        "platform_run_id": layout.platform_run_id,
        "engine_run_prefix": layout.engine_prefix,
        "engine_marker": marker,
        "outputs": {k: sorted(v, key=lambda e: e["key"]) for k, v in sorted(outputs.items())},
    }


def read_sealed_manifest(store: ObjectStore, layout: OracleLayout) -> tuple[dict[str, Any], dict[str, Any]]:
    """(seal, manifest) of the run; NotSealed when either is absent, ManifestMismatch if they disagree."""
    if not store.exists(layout.seal_key):
        raise NotSealed(f"{store.uri(layout.seal_key)} does not exist")
    seal = json.loads(store.get(layout.seal_key))
    if not store.exists(layout.manifest_key):
        raise NotSealed(f"{store.uri(layout.manifest_key)} does not exist although the seal does")
    manifest = json.loads(store.get(layout.manifest_key))
    if canonical_digest(manifest) != seal.get("manifest_sha256"):
        raise ManifestMismatch(f"{store.uri(layout.manifest_key)} does not match the digest in {store.uri(layout.seal_key)}")
    return seal, manifest


def pack(store: ObjectStore, layout: OracleLayout, *, progress: Progress | None = None) -> PackResult:
    """Write manifest + seal once; identical re-pack is a no-op, different content MANIFEST_MISMATCH."""
    manifest = build_manifest(store, layout, progress=progress)
    digest = canonical_digest(manifest)
    entries = [e for v in manifest["outputs"].values() for e in v] + [manifest["engine_marker"]]
    total = sum(int(e["size"]) for e in entries)
    if store.exists(layout.seal_key):
        seal = json.loads(store.get(layout.seal_key))
        if seal.get("manifest_sha256") != digest:
            raise ManifestMismatch(
                f"{store.uri(layout.seal_key)} seals manifest {seal.get('manifest_sha256')}, but the engine objects now hash to {digest}"
            )
        return PackResult(digest, len(entries), total, newly_sealed=False)
    _put_once(store, layout.manifest_key, canonical_json(manifest), digest)
    seal_doc = {
        "platform_run_id": layout.platform_run_id,
        "manifest_key": layout.manifest_key,
        "manifest_sha256": digest,
        "engine_run_prefix": layout.engine_prefix,
        "objects": len(entries),
        "bytes": total,
        "output_ids": sorted(manifest["outputs"]),
        "sealed_at_utc": utc_iso(),
    }
    try:
        store.put(layout.seal_key, canonical_json(seal_doc), create_only=True)
    except WriteConflict:
        existing = json.loads(store.get(layout.seal_key))
        if existing.get("manifest_sha256") != digest:
            raise ManifestMismatch(f"{store.uri(layout.seal_key)} was sealed concurrently with another manifest") from None
        return PackResult(digest, len(entries), total, newly_sealed=False)
    return PackResult(digest, len(entries), total, newly_sealed=True)


def _put_once(store: ObjectStore, key: str, data: bytes, digest: str) -> None:
    try:
        store.put(key, data, create_only=True)
    except WriteConflict:
        if canonical_digest(json.loads(store.get(key))) != digest:
            raise ManifestMismatch(f"{store.uri(key)} exists with another manifest (an earlier pack did not finish sealing)") from None


def check_strict(store: ObjectStore, layout: OracleLayout, *, progress: Progress | None = None) -> dict[str, Any]:
    """Re-hash every sealed object; SealVerifyFailed lists what changed, appeared or vanished."""
    seal, manifest = read_sealed_manifest(store, layout)
    problems: list[str] = []
    expected = {e["key"]: e for v in manifest["outputs"].values() for e in v}
    expected[manifest["engine_marker"]["key"]] = manifest["engine_marker"]
    present = {o.key: o.size for o in store.list(layout.engine_prefix)}
    for key, entry in sorted(expected.items()):
        if key not in present:
            problems.append(f"missing {key}")
            continue
        if present[key] != entry["size"]:
            problems.append(f"size of {key} is {present[key]}, sealed {entry['size']}")
        elif object_sha256(store, key) != entry["sha256"]:
            problems.append(f"sha256 of {key} differs from the seal")
        if progress is not None:
            progress(int(entry["size"]), key)
    problems.extend(f"unsealed object {key}" for key in sorted(set(present) - set(expected)))
    if problems:
        raise SealVerifyFailed(f"{len(problems)} problem(s) under {store.uri(layout.engine_prefix)}: " + "; ".join(problems[:10]))
    return {"manifest_sha256": seal["manifest_sha256"], "objects": len(expected), "status": "OK"}
