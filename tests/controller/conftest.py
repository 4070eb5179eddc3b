"""Controller fixtures: a dev_min ECR repository on the moto server and a scripted docker CLI.

There is no Docker engine on the test machines, so the docker CLI is P(-1)'s one seam:
`ScriptedDocker` answers like docker would and, on `push`, lands the image in ECR with `put_image`
so the digest ECR reports is real (moto computes it from the manifest).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.ecr import EcrImages, ecr_images
from controller.packaging import run_command
from runtime.contracts.registry import Registry, load_registry
from runtime.paths import registry_path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin:/usr/local/bin"}


def git_repo(tmp_path: Path) -> Path:
    """A one-commit checkout holding a file in every packaged source root."""
    repo = tmp_path / "repo"
    for name in ("runtime", "controller", "stacks", "schemas"):
        (repo / name).mkdir(parents=True)
        (repo / name / "a.py").write_text(f"# {name}\n")
    (repo / "handles.registry.yaml").write_text("version: 1\n")
    (repo / "pyproject.toml").write_text("[project]\nname='x'\n")
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(argv, cwd=repo, check=True, env=GIT_ENV)
    return repo


MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def manifest(seed: str) -> str:
    """A docker v2 manifest; moto derives the image digest from its bytes."""
    layer = hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                                  "digest": f"sha256:{hashlib.sha256(('cfg' + seed).encode()).hexdigest()}"},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                                   "digest": f"sha256:{layer}"}]})


def clean_repo(tmp_path: Path) -> Path:
    """A committed checkout with a unique commit (so each test's tag is new in the shared moto server)."""
    repo = git_repo(tmp_path)
    (repo / "runtime" / "unique.py").write_text(f"# {uuid.uuid4().hex}\n")
    for argv in (["git", "add", "-A"], ["git", "commit", "-qm", "unique"]):
        subprocess.run(argv, cwd=repo, check=True, env=GIT_ENV)
    return repo


@dataclass
class ScriptedDocker:
    """Answers like the docker CLI would (the one seam: no engine here); git and pip run for real.

    `push` lands the image in ECR with `put_image`, and prints the digest ECR computed, as docker does."""

    ecr: Any
    repo_name: str
    fail: str | None = None
    push_prints: str | None = None
    pulled_digest: str | None = None
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)
    local: dict[str, str] = field(default_factory=dict)

    def __call__(self, argv: Sequence[str], cwd: Path | None, timeout_s: float, stdin: str | None = None, /) -> tuple[int, str]:
        if argv[0] != "docker":
            return run_command(argv, cwd, timeout_s, stdin)
        argv = list(argv)
        self.calls.append((argv, stdin))
        verb = argv[1]
        if verb == self.fail:  # a login failure echoes what it got, to prove the caller masks it
            return 1, f"docker {verb}: scripted failure" + (f" for {stdin}" if stdin else "")
        if verb == "info":
            return 0, "Server Version: 27.3.1"
        if verb == "build":
            ref = argv[argv.index("-t") + 1]
            return 0, f"Successfully tagged {ref}"
        if verb == "run":
            return 0, "usage: python -m runtime [-h] {oracle,sr,wsp,ig} ..."
        if verb == "login":
            return 0, "Login Succeeded"
        if verb == "push":
            ref = argv[2]
            tag = ref.rsplit(":", 1)[1]
            image = self.ecr.put_image(repositoryName=self.repo_name, imageManifest=manifest(ref), imageTag=tag,
                                       imageManifestMediaType=MANIFEST_MEDIA_TYPE)["image"]
            digest = self.push_prints or image["imageId"]["imageDigest"]
            self.local[ref] = digest
            return 0, f"The push refers to repository [{ref.rsplit(':', 1)[0]}]\n{tag}: digest: {digest} size: 1573\n"
        if verb == "pull":
            ref = argv[2]
            if self.pulled_digest:
                self.local[ref] = self.pulled_digest
            return 0, f"Status: Downloaded newer image for {ref}"
        if verb == "image" and argv[2] == "inspect":
            ref = argv[-1]
            if ref not in self.local:
                return 1, f"Error: No such image: {ref}"
            return 0, json.dumps([f"{ref.rsplit(':', 1)[0]}@{self.local[ref]}"])
        return 2, f"unscripted docker call {argv}"

    def verbs(self) -> list[str]:
        return [argv[1] for argv, _ in self.calls]


@dataclass
class DevMinEcr:
    """A dev_min registry whose ECR repository has a random name, created on the moto server."""

    registry: Registry
    ecr: Any
    repo_name: str
    images: EcrImages


@pytest.fixture
def dev_min_ecr(tmp_path: Path, moto_endpoint: str, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> DevMinEcr:
    document = yaml.safe_load(registry_path().read_text())
    ecr_group = document["environments"]["dev_min"]["ecr"]
    ecr_group["ECR_REPO_NAME"] = unique_name
    ecr_group["ECR_REPO_URI"] = "{aws_account_id}.dkr.ecr.eu-west-2.amazonaws.com/" + unique_name
    path = tmp_path / "handles.registry.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    registry = load_registry("dev_min", path)
    # The production factory, pointed at the moto server through the runtime_env variables.
    monkeypatch.setenv(registry.text("ENVVAR_OBJECT_STORE_ENDPOINT"), moto_endpoint)
    monkeypatch.setenv(registry.text("ENVVAR_AWS_REGION"), registry.text("AWS_REGION"))
    images = ecr_images(registry)
    images.client.create_repository(repositoryName=unique_name, imageTagMutability="IMMUTABLE")
    return DevMinEcr(registry, images.client, unique_name, images)
