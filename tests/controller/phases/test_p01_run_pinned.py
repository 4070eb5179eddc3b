"""P1 pins the decision policy bundle: its id, version and digest go into run.json's config; a
tampered bundle is refused before anything is pinned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.phases.base import RunContext
from controller.phases.p01_run_pinned import RunPinned, pinned_policy, run_config
from controller.runs import RunFolders
from runtime.contracts.canonical import canonical_digest
from runtime.contracts.ids import new_platform_run_id
from runtime.contracts.registry import load_registry
from runtime.decision.bundle import DEFAULT_POLICY, load_policy, pin_path
from runtime.errors import PermanentError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore


def _tampered_copy(tmp_path: Path) -> Path:
    path = tmp_path / DEFAULT_POLICY.name
    shutil.copy(DEFAULT_POLICY, path)
    shutil.copy(pin_path(DEFAULT_POLICY), pin_path(path))
    path.write_text(path.read_text().replace("version: 1", "version: 2", 1))
    return path


def test_the_run_config_pins_the_shipped_bundle_and_a_changed_bundle_changes_the_config_digest() -> None:
    registry = load_registry("local_parity")
    shipped = load_policy()
    config = run_config(registry, {"bus": "kinesis"}, {"git_sha": "abc1234"})
    assert config["policy"] == {"policy_id": shipped.policy_id, "version": shipped.version, "digest": shipped.digest}
    other = run_config(registry, {"bus": "kinesis"}, {"git_sha": "abc1234"}, {**config["policy"], "digest": "0" * 64})
    assert canonical_digest(other) != canonical_digest(config)


def test_a_tampered_bundle_is_refused_at_p1_and_nothing_is_pinned(tmp_path: Path) -> None:
    tampered = _tampered_copy(tmp_path)
    with pytest.raises(PermanentError) as info:
        pinned_policy(tampered)
    assert info.value.code == "POLICY_TAMPERED"
    registry = load_registry("local_parity")
    run_id = new_platform_run_id()
    writer = EvidenceWriter(registry, run_id, [BundleTarget(FolderStore(tmp_path / "bundle"), "")])
    folders = RunFolders.from_registry(registry, tmp_path)
    ctx = RunContext(registry=registry, platform_run_id=run_id, folders=folders, writer=writer, settings=None, options={})
    with pytest.raises(PermanentError) as info:
        RunPinned(policy_path=tampered).run(ctx)
    assert info.value.code == "POLICY_TAMPERED"
    assert writer.read("EVIDENCE_RUN_JSON_KEY") is None


def test_the_run_config_pins_the_registry_files_sha256_and_another_registry_file_changes_the_config_digest(
        tmp_path: Path) -> None:
    import hashlib

    registry = load_registry("local_parity")
    config = run_config(registry, {"bus": "kinesis"}, {"git_sha": "abc1234"})
    assert config["registry_sha256"] == hashlib.sha256(registry.source.read_bytes()).hexdigest()
    edited = tmp_path / "handles.registry.yaml"
    edited.write_text(registry.source.read_text() + "# an edit after P1\n")
    other = run_config(load_registry("local_parity", edited), {"bus": "kinesis"}, {"git_sha": "abc1234"})
    assert other["registry_sha256"] != config["registry_sha256"]
    assert canonical_digest(other) != canonical_digest(config)
