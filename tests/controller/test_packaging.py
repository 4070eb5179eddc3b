"""P(-1) packaging: tag from the commit, stable package digest, entrypoint smoke test; dev_min builds,
smoke-tests, logs in and pushes through the docker CLI seam and checks the digest ECR (moto server) holds."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.ecr import EcrError, EcrImages, RegistryLogin
from controller.packaging import (
    PackagingError,
    PackagingResult,
    docker_available,
    git_sha,
    image_tag,
    package,
    package_digest,
    pinned_image,
    run_command,
    smoke_test_installed,
    source_tree_digest,
)
from runtime.contracts.registry import load_registry
from runtime.contracts.schemas import compiled_validator
from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT
from tests.controller.conftest import MANIFEST_MEDIA_TYPE, DevMinEcr, ScriptedDocker, clean_repo, git_repo, manifest


def test_image_tag_is_git_dash_full_sha_of_head(tmp_path: Path) -> None:
    repo = git_repo(tmp_path)
    sha, dirty = git_sha(repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    assert sha == head and dirty is False
    tag = image_tag(load_registry("local_parity"), sha)
    assert re.fullmatch(r"git-[0-9a-f]{40}", tag) and tag == f"git-{head}"


def test_uncommitted_change_marks_the_tree_dirty(tmp_path: Path) -> None:
    repo = git_repo(tmp_path)
    (repo / "runtime" / "a.py").write_text("# changed\n")
    assert git_sha(repo)[1] is True


def test_not_a_git_checkout_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(PackagingError) as caught:
        git_sha(tmp_path)
    assert caught.value.code == "GIT_SHA_UNAVAILABLE"


def test_source_digest_is_stable_and_changes_with_content(tmp_path: Path) -> None:
    repo = git_repo(tmp_path)
    first = source_tree_digest(repo)
    (repo / "runtime" / "__pycache__").mkdir()
    (repo / "runtime" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00junk")
    assert source_tree_digest(repo) == first  # caches do not count
    (repo / "schemas" / "a.py").write_text("# other\n")
    assert source_tree_digest(repo) != first


def test_package_digest_is_stable_across_calls() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", package_digest())
    assert package_digest() == package_digest()


def test_entrypoint_smoke_test_runs_the_real_module() -> None:
    ok, output = smoke_test_installed()
    assert ok, output
    assert "usage: python -m runtime" in output


def test_local_parity_package_records_package_digest_not_image_digest() -> None:
    registry = load_registry("local_parity")
    result = package(registry)
    assert result.image_digest is None and result.smoke_ok
    assert result.image_tag == f"git-{result.git_sha}"
    fields = result.evidence_fields(registry)
    assert fields[registry.text("IMAGE_DIGEST_EVIDENCE_FIELD")] is None
    assert fields["package_digest"] == result.package_digest == package_digest()


def test_failing_smoke_test_fails_packaging() -> None:
    with pytest.raises(PackagingError) as caught:
        package(load_registry("local_parity"), smoke=lambda: (False, "Traceback: boom"))
    assert caught.value.code == "SMOKE_TEST_FAILED" and "boom" in caught.value.message


@pytest.mark.skipif(shutil.which("docker") is not None and docker_available(), reason="a Docker engine is running here")
def test_dev_min_without_docker_engine_fails_closed_with_next_step() -> None:
    with pytest.raises(PackagingError) as caught:
        package(load_registry("dev_min"))
    assert caught.value.code == "DOCKER_ENGINE_UNAVAILABLE"
    assert "docker info" in caught.value.message and caught.value.next_step


def test_docker_probe_treats_a_missing_cli_as_no_engine() -> None:
    def no_docker(argv: Sequence[str], cwd: Path | None, timeout: float, stdin: str | None = None, /) -> tuple[int, str]:
        return 127, f"{argv[0]}: not found"

    assert docker_available(no_docker) is False


def test_command_runner_feeds_stdin_and_otherwise_gives_dev_null() -> None:
    assert run_command(["cat"], None, 30.0, "token-on-stdin") == (0, "token-on-stdin")
    assert run_command(["cat"], None, 30.0) == (0, "")  # no stdin: EOF at once, never the terminal
    assert run_command(["no-such-program-fp"], None, 30.0)[0] == 127


def test_dockerfile_runs_the_runtime_entrypoint_as_non_root_without_secrets() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert 'ENTRYPOINT ["python", "-m", "runtime"]' in text
    assert re.search(r"^USER fp$", text, re.M)
    assert not re.search(r"(?i)(secret|password|api_key)\s*=", text)
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!runtime/" in ignore  # an allow-list
    assert "**/.env" in ignore


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None or not docker_available(), reason="no Docker engine on this machine")
def test_image_builds_and_its_entrypoint_help_runs_as_non_root() -> None:
    tag = "fp-platform-smoke:test"
    build = subprocess.run(["docker", "build", "-q", "-t", tag, str(REPO_ROOT)], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr[-2000:]
    help_run = subprocess.run(["docker", "run", "--rm", tag, "--help"], capture_output=True, text=True, timeout=300)
    assert help_run.returncode == 0 and "usage: python -m runtime" in help_run.stdout
    uid = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=300)
    assert uid.stdout.strip() == "10001"


# ---- dev_min: build, smoke, login, push, verify (docker CLI scripted, ECR on the moto server) --------------

def _package(world: DevMinEcr, repo: Path, docker: ScriptedDocker) -> PackagingResult:
    return package(world.registry, repo_root=repo, run=docker, images=world.images)


def test_dev_min_builds_smokes_logs_in_pushes_and_records_the_ecr_digest(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    repo = clean_repo(tmp_path)
    docker = ScriptedDocker(w.ecr, w.repo_name)
    lines: list[str] = []
    result = package(w.registry, repo_root=repo, run=docker, images=w.images, progress=lines.append)
    assert docker.verbs() == ["info", "build", "run", "login", "push"]
    uri = w.ecr.describe_repositories(repositoryNames=[w.repo_name])["repositories"][0]["repositoryUri"]
    ref = f"{uri}:git-{result.git_sha}"
    build, smoke, login, push = (argv for argv, _ in docker.calls[1:])
    assert build[-1] == str(repo) and build[build.index("-t") + 1] == ref
    assert smoke == ["docker", "run", "--rm", "--network", "none", ref, "--help"]  # no -e / --env-file: no secrets
    token = w.ecr.get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)[1]
    assert login == ["docker", "login", "--username", "AWS", "--password-stdin", token["proxyEndpoint"]]
    assert docker.calls[3][1] == password and all(password not in " ".join(argv) for argv, _ in docker.calls)
    assert push == ["docker", "push", ref]
    described = w.ecr.describe_images(repositoryName=w.repo_name, imageIds=[{"imageTag": result.image_tag}])["imageDetails"]
    assert result.image_digest == described[0]["imageDigest"] and re.fullmatch(r"sha256:[0-9a-f]{64}", result.image_digest)
    assert result.image_uri == ref and result.image_reused is False and result.git_dirty is False
    assert result.evidence_fields(w.registry)[w.registry.text("IMAGE_DIGEST_EVIDENCE_FIELD")] == result.image_digest
    assert any("docker push" in line for line in lines)


def test_push_digest_read_from_docker_inspect_when_push_prints_none(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    docker = ScriptedDocker(w.ecr, w.repo_name)
    original = docker.__call__

    def quiet_push(argv: Sequence[str], cwd: Path | None, timeout_s: float, stdin: str | None = None, /) -> tuple[int, str]:
        code, out = original(argv, cwd, timeout_s, stdin)
        return (code, "pushed\n") if list(argv[:2]) == ["docker", "push"] else (code, out)

    result = package(w.registry, repo_root=clean_repo(tmp_path), run=quiet_push, images=w.images)
    assert docker.verbs()[-1] == "image" and result.image_digest == docker.local[result.image_uri or ""]


@pytest.mark.parametrize(("step", "code"), [("build", "IMAGE_BUILD_FAILED"), ("run", "SMOKE_TEST_FAILED"),
                                            ("login", "ECR_LOGIN_FAILED"), ("push", "IMAGE_PUSH_FAILED"),
                                            ("info", "DOCKER_ENGINE_UNAVAILABLE")])
def test_each_failing_docker_step_stops_packaging_with_its_code(dev_min_ecr: DevMinEcr, tmp_path: Path, step: str, code: str) -> None:
    w = dev_min_ecr
    docker = ScriptedDocker(w.ecr, w.repo_name, fail=step)
    with pytest.raises(PlatformError) as caught:
        _package(w, clean_repo(tmp_path), docker)
    assert caught.value.code == code and caught.value.next_step
    assert all(stdin is None or stdin not in caught.value.message for _, stdin in docker.calls)  # the token is masked
    verbs = docker.verbs()
    assert verbs[-1] == step and "push" not in verbs[:-1]  # nothing after the failed step
    if step != "push":
        assert w.ecr.describe_images(repositoryName=w.repo_name)["imageDetails"] == []  # nothing pushed


def test_smoke_output_without_usage_fails_even_with_exit_zero(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    docker = ScriptedDocker(w.ecr, w.repo_name)
    original = docker.__call__

    def silent_run(argv: Sequence[str], cwd: Path | None, timeout_s: float, stdin: str | None = None, /) -> tuple[int, str]:
        code, out = original(argv, cwd, timeout_s, stdin)
        return (0, "") if list(argv[:2]) == ["docker", "run"] else (code, out)

    with pytest.raises(PlatformError) as caught:
        package(w.registry, repo_root=clean_repo(tmp_path), run=silent_run, images=w.images)
    assert caught.value.code == "SMOKE_TEST_FAILED" and "login" not in docker.verbs()


def test_push_digest_differing_from_ecr_is_refused(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    docker = ScriptedDocker(w.ecr, w.repo_name, push_prints="sha256:" + "0" * 64)
    with pytest.raises(PlatformError) as caught:
        _package(w, clean_repo(tmp_path), docker)
    assert caught.value.code == "IMAGE_DIGEST_MISMATCH" and "sha256:" + "0" * 64 in caught.value.message


def test_login_token_failure_is_ecr_login_failed(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr

    class NoToken(EcrImages):
        def login(self) -> RegistryLogin:
            raise EcrError("ecr:GetAuthorizationToken failed: AccessDenied", code="ECR_LOGIN_FAILED", next_step="fix the role")

    docker = ScriptedDocker(w.ecr, w.repo_name)
    with pytest.raises(PlatformError) as caught:
        package(w.registry, repo_root=clean_repo(tmp_path), run=docker, images=NoToken(w.ecr))
    assert caught.value.code == "ECR_LOGIN_FAILED" and docker.verbs() == ["info", "build", "run"]


def test_dirty_tree_is_refused_before_any_build(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    repo = clean_repo(tmp_path)
    (repo / "runtime" / "a.py").write_text("# uncommitted\n")
    docker = ScriptedDocker(w.ecr, w.repo_name)
    with pytest.raises(PlatformError) as caught:
        _package(w, repo, docker)
    assert caught.value.code == "GIT_TREE_DIRTY" and docker.verbs() == ["info"]


def test_untracked_file_in_the_build_context_is_refused(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    repo = clean_repo(tmp_path)
    (repo / "controller" / "new_module.py").write_text("# never committed\n")
    (repo / "notes.txt").write_text("outside the build context: allowed\n")
    docker = ScriptedDocker(w.ecr, w.repo_name)
    with pytest.raises(PlatformError) as caught:
        _package(w, repo, docker)
    assert caught.value.code == "GIT_TREE_DIRTY" and "controller/new_module.py" in caught.value.message
    assert "notes.txt" not in caught.value.message


def _plant_tag(w: DevMinEcr, tag: str) -> str:
    image = w.ecr.put_image(repositoryName=w.repo_name, imageManifest=manifest(tag + "-earlier"), imageTag=tag,
                            imageManifestMediaType=MANIFEST_MEDIA_TYPE)["image"]
    return str(image["imageId"]["imageDigest"])


def test_tag_already_in_ecr_is_reused_without_building(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    repo = clean_repo(tmp_path)
    tag = image_tag(w.registry, git_sha(repo)[0])
    existing = _plant_tag(w, tag)
    docker = ScriptedDocker(w.ecr, w.repo_name, pulled_digest=existing)
    result = _package(w, repo, docker)
    assert docker.verbs() == ["info", "login", "pull", "image", "run"]  # no build, no push
    assert result.image_digest == existing and result.image_reused is True


def test_tag_in_ecr_that_pulls_as_another_digest_is_refused(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    repo = clean_repo(tmp_path)
    _plant_tag(w, image_tag(w.registry, git_sha(repo)[0]))
    docker = ScriptedDocker(w.ecr, w.repo_name, pulled_digest="sha256:" + "1" * 64)
    with pytest.raises(PlatformError) as caught:
        _package(w, repo, docker)
    assert caught.value.code == "IMAGE_DIGEST_MISMATCH"
    assert "build" not in docker.verbs() and "push" not in docker.verbs() and "run" not in docker.verbs()


def test_missing_ecr_repository_fails_closed_naming_the_core_stack(dev_min_ecr: DevMinEcr, tmp_path: Path) -> None:
    w = dev_min_ecr
    w.ecr.delete_repository(repositoryName=w.repo_name, force=True)
    docker = ScriptedDocker(w.ecr, w.repo_name)
    with pytest.raises(PlatformError) as caught:
        _package(w, clean_repo(tmp_path), docker)
    assert caught.value.code == "ECR_REPOSITORY_MISSING" and "core stack" in (caught.value.next_step or "")
    assert docker.verbs() == ["info"]


def test_repository_in_another_region_than_the_registry_pins_is_refused(dev_min_ecr: DevMinEcr, tmp_path: Path,
                                                                       moto_endpoint: str) -> None:
    w = dev_min_ecr
    elsewhere = boto3.client("ecr", endpoint_url=moto_endpoint, region_name="us-west-2")
    elsewhere.create_repository(repositoryName=w.repo_name)
    with pytest.raises(PlatformError) as caught:
        package(w.registry, repo_root=clean_repo(tmp_path), run=ScriptedDocker(elsewhere, w.repo_name), images=EcrImages(elsewhere))
    assert caught.value.code == "ECR_REPO_URI_MISMATCH"


def test_dev_min_evidence_requires_a_sha256_digest_and_a_clean_tree() -> None:
    validator = compiled_validator("evidence/packaging_ready.schema.json")
    registry = load_registry("dev_min")
    base = {"platform_run_id": "platform_20261123T120000Z", "phase_id": "P(-1)", "written_at_utc": "2026-11-23T12:00:00Z",
            "source_handles": ["IMAGE_TAG_GIT_SHA_PATTERN"]}
    sha = "a" * 40
    good = {**base, "environment": "dev_min", "image_tag": f"git-{sha}", "image_digest": "sha256:" + "b" * 64, "git_sha": sha,
            "git_dirty": False, "package_digest": "c" * 64, "smoke_ok": True,
            "image_uri": f"123456789012.dkr.ecr.eu-west-2.amazonaws.com/{registry.text('ECR_REPO_NAME')}:git-{sha}",
            "image_reused": False}
    assert not list(validator.iter_errors(good)), list(validator.iter_errors(good))
    for bad in ({**good, "image_digest": None}, {**good, "image_digest": "latest"}, {**good, "git_dirty": True},
                {k: v for k, v in good.items() if k != "image_uri"}):
        assert list(validator.iter_errors(bad))
    local = {**good, "environment": "local_parity", "image_digest": None}
    assert not list(validator.iter_errors(local))
    assert list(validator.iter_errors({**local, "image_digest": "sha256:" + "b" * 64}))



@pytest.mark.parametrize("packaging,expected", [
    ({"image_uri": "1.dkr.ecr.eu-west-2.amazonaws.com/fp:git-" + "a" * 40, "image_digest": "sha256:" + "b" * 64},
     "1.dkr.ecr.eu-west-2.amazonaws.com/fp@sha256:" + "b" * 64),
    ({"image_uri": "registry:5000/team/fp:git-1", "image_digest": "sha256:" + "c" * 64}, "registry:5000/team/fp@sha256:" + "c" * 64),
    ({"image_uri": None, "image_digest": None}, None),
    ({"image_uri": "fp:git-1", "image_digest": None}, None),
    (None, None),
])
def test_pinned_image_is_the_repository_at_the_digest_p_minus_1_recorded(packaging: dict[str, Any] | None,
                                                                         expected: str | None) -> None:
    assert pinned_image(packaging) == expected
