"""P(-1) as a phase in dev_min: the evidence records tag, ECR digest and image, and P1 pins that digest."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from controller.packaging import package
from controller.phases.base import RunContext
from controller.phases.p01_run_pinned import RunPinned
from controller.phases.pm1_packaging_ready import PackagingReady
from controller.runs import RunFolders
from runtime.contracts.ids import new_platform_run_id
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore
from tests.controller.conftest import DevMinEcr, ScriptedDocker, clean_repo


def test_dev_min_packaging_evidence_carries_the_ecr_digest_and_p1_pins_it(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    run_id = new_platform_run_id()
    writer = EvidenceWriter(w.registry, run_id, [BundleTarget(FolderStore(tmp_path / "bundle"), "")])
    folders = RunFolders.from_registry(w.registry, tmp_path)
    folders.run_dir(run_id).mkdir(parents=True)
    ctx = RunContext(registry=w.registry, platform_run_id=run_id, folders=folders, writer=writer, settings=None,
                     options={"bus": "kafka", "gate": 20})
    docker = ScriptedDocker(w.ecr, w.repo_name)
    phase = PackagingReady(partial(package, repo_root=clean_repo(tmp_path), run=docker, images=w.images))
    outcome = phase.run(ctx)
    assert all(c.ok for c in outcome.checks) and {c.name for c in outcome.checks} == {"entrypoint_smoke_test", "image_tag_in_ecr"}
    evidence = writer.read("PACKAGING_READY_PATH_PATTERN")
    assert evidence is not None
    described = w.ecr.describe_images(repositoryName=w.repo_name, imageIds=[{"imageTag": evidence["image_tag"]}])["imageDetails"][0]
    assert evidence["image_digest"] == described["imageDigest"] and evidence["git_dirty"] is False
    assert evidence["image_uri"].endswith(f"/{w.repo_name}:{evidence['image_tag']}") and evidence["image_reused"] is False
    assert {"ECR_REPO_NAME", "ECR_REPO_URI"} <= set(evidence["source_handles"])

    RunPinned().run(ctx)
    run = writer.read("EVIDENCE_RUN_JSON_KEY")
    assert run is not None
    assert run[w.registry.text("IMAGE_DIGEST_EVIDENCE_FIELD")] == evidence["image_digest"]
    assert run["config"]["code"]["image_digest"] == evidence["image_digest"]
