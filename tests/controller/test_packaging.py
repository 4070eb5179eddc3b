"""P(-1) packaging: tag from the commit, stable package digest, entrypoint smoke test, dev_min fails closed."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from controller.packaging import (
    PackagingError,
    docker_available,
    git_sha,
    image_tag,
    package,
    package_digest,
    smoke_test_installed,
    source_tree_digest,
)
from runtime.contracts.registry import load_registry
from runtime.paths import REPO_ROOT


def _git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for name in ("runtime", "controller", "stacks", "schemas"):
        (repo / name).mkdir(parents=True)
        (repo / name / "a.py").write_text(f"# {name}\n")
    (repo / "handles.registry.yaml").write_text("version: 1\n")
    (repo / "pyproject.toml").write_text("[project]\nname='x'\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(argv, cwd=repo, check=True, env={**env, "PATH": "/usr/bin:/bin:/usr/local/bin"})
    return repo


def test_image_tag_is_git_dash_full_sha_of_head(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    sha, dirty = git_sha(repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    assert sha == head and dirty is False
    tag = image_tag(load_registry("local_parity"), sha)
    assert re.fullmatch(r"git-[0-9a-f]{40}", tag) and tag == f"git-{head}"


def test_uncommitted_change_marks_the_tree_dirty(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    (repo / "runtime" / "a.py").write_text("# changed\n")
    assert git_sha(repo)[1] is True


def test_not_a_git_checkout_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(PackagingError) as caught:
        git_sha(tmp_path)
    assert caught.value.code == "GIT_SHA_UNAVAILABLE"


def test_source_digest_is_stable_and_changes_with_content(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
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
    def no_docker(argv: Sequence[str], cwd: Path | None, timeout: float) -> tuple[int, str]:
        return 127, f"{argv[0]}: not found"

    assert docker_available(no_docker) is False


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
