"""The evidence writer: validate, then write to every target of the run's bundle.

A document that breaks its schema, or names another run, is refused before anything is written.
Base truth is written once (conditional put); writing the same content again is a no-op, other
content is an EvidenceConflict. Derived summaries are rewritten by their owner. In local_parity
the bundle has a second target, the run folder, so it outlives the embedded substrate.

Every target is attempted even when one is unreachable: a lost object store must not stop the run
folder's copy (the operator's `fp status` reads it). A document that landed in some targets only
raises EvidenceNotMirrored, which names where it is and where it is not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.contracts.canonical import sha256_hex
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.contracts.schemas import compiled_validator
from runtime.errors import EvidenceConflict, EvidenceInvalid, ObjectStoreUnavailable, WriteConflict
from runtime.evidence import catalog
from runtime.store.port import ObjectStore

if TYPE_CHECKING:
    from runtime.settings import Settings

#: Fields that may differ between two writes of the same base-truth content.
_VOLATILE_FIELDS = ("written_at_utc",)


@dataclass(frozen=True)
class BundleTarget:
    """A store and the key prefix of this run's bundle in it."""

    store: ObjectStore
    prefix: str

    def key(self, relative: str) -> str:
        """The full key of a bundle-relative path."""
        return f"{self.prefix}{relative}"


@dataclass(frozen=True)
class WrittenEvidence:
    """What was written: bundle-relative path, sha256 of the bytes, and where."""

    relative_path: str
    sha256: str
    uris: tuple[str, ...]


class EvidenceNotMirrored(ObjectStoreUnavailable):
    """A document landed in some targets of the bundle (the run folder) but not in every one."""

    next_step = ("the run folder holds the record; bring the object store back (`fp substrate status`), "
                 "then resume the run (or start a new one with `fp dev-min-up` if its state was lost)")

    def __init__(self, message: str, *, landed: Sequence[BundleTarget]):
        super().__init__(message)
        self.landed = tuple(landed)


def encode(document: dict[str, Any]) -> bytes:
    """The stored form of an evidence document: pretty, key-sorted UTF-8 JSON."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def schema_violations(schema_file: str, document: Any) -> list[str]:
    """Every schema violation of `document`, as `path: message` lines."""
    validator = compiled_validator(schema_file)
    out = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"{where}: {error.message}")
    return out


def run_bundle(settings: Settings, platform_run_id: str) -> BundleTarget:
    """The run's bundle in the evidence bucket: where every runtime job writes its evidence, so the
    controller (on the laptop or anywhere else) reads it back from one place."""
    prefix = settings.registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    return BundleTarget(settings.bucket("S3_EVIDENCE_BUCKET"), prefix)


class EvidenceWriter:
    """Writes the evidence files of one platform run."""

    def __init__(self, registry: Registry, platform_run_id: str, targets: list[BundleTarget]):
        if not targets:
            raise ValueError("an evidence writer needs at least one target")
        self.registry = registry
        self.platform_run_id = platform_run_id
        self.targets = targets

    def relative_path(self, path_key: str, **params: str) -> str:
        """The bundle-relative path of an evidence file (phase records take `phase_id`)."""
        return self.registry.render(path_key, **params)

    def base_fields(self, phase_id: str, source_handles: list[str]) -> dict[str, Any]:
        """The common fields every evidence document starts with."""
        return {
            "platform_run_id": self.platform_run_id,
            "written_at_utc": utc_iso(),
            "phase_id": phase_id,
            "source_handles": sorted(set(source_handles)),
        }

    def write(self, path_key: str, document: dict[str, Any], *, only: Sequence[BundleTarget] | None = None,
              **params: str) -> WrittenEvidence:
        """Validate `document` against its schema and write it to every target (or to `only` those).

        An unreachable target does not stop the others; when some landed and some did not,
        EvidenceNotMirrored says which (all failed: the first target's ObjectStoreUnavailable)."""
        spec = catalog.entry(path_key)
        relative = self.relative_path(path_key, **params)
        problems = schema_violations(spec.schema_file, document)
        if problems:
            raise EvidenceInvalid(f"{relative} refused: " + "; ".join(problems[:5]))
        if document.get("platform_run_id") != self.platform_run_id:
            raise EvidenceInvalid(
                f"{relative} refused: platform_run_id {document.get('platform_run_id')!r} "
                f"is not this run ({self.platform_run_id})"
            )
        data = encode(document)
        uris: list[str] = []
        landed: list[BundleTarget] = []
        failed: list[tuple[BundleTarget, ObjectStoreUnavailable]] = []
        for target in (self.targets if only is None else only):
            key = target.key(relative)
            try:
                if spec.truth == "base":
                    self._write_once(target.store, key, data, document)
                else:
                    target.store.put(key, data)
            except ObjectStoreUnavailable as e:
                failed.append((target, e))
                continue
            landed.append(target)
            uris.append(target.store.uri(key))
        if failed and not landed:
            raise failed[0][1]
        if failed:
            missing = "; ".join(f"{t.store.uri(t.key(relative))} ({e.message})" for t, e in failed)
            raise EvidenceNotMirrored(f"{relative} written to {', '.join(uris)} but not mirrored to {missing}", landed=landed)
        return WrittenEvidence(relative, sha256_hex(data), tuple(uris))

    def _write_once(self, store: ObjectStore, key: str, data: bytes, document: dict[str, Any]) -> None:
        try:
            store.put(key, data, create_only=True)
        except WriteConflict:
            existing = json.loads(store.get(key))
            if _stable(existing) != _stable(document):
                raise EvidenceConflict(f"{store.uri(key)} is base truth and exists with different content") from None

    def read(self, path_key: str, **params: str) -> dict[str, Any] | None:
        """The stored document of an evidence file from the first target that has it."""
        relative = self.relative_path(path_key, **params)
        for target in self.targets:
            key = target.key(relative)
            if target.store.exists(key):
                return dict(json.loads(target.store.get(key)))
        return None


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in _VOLATILE_FIELDS}
