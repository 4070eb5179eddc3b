"""P(-1) PACKAGING_READY: name the one platform image after its commit and prove it starts.

dev_min runs only what is in the image, so the image is tagged with the commit it was built from
(`IMAGE_TAG_GIT_SHA_PATTERN`), built, smoke-tested (`--help`, no secrets) and pushed to ECR; its
digest is what the run pins. Without a Docker engine that cannot happen and dev_min fails closed
(DOCKER_ENGINE_UNAVAILABLE). local_parity runs the installed package directly, so it records a
package digest instead (the pinned dependency set + the project's source tree) and smoke-tests
the same entrypoint in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.contracts.canonical import canonical_digest
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT

#: What goes into the image and into the source digest (see Dockerfile / .dockerignore).
SOURCE_ROOTS: tuple[str, ...] = ("runtime", "controller", "stacks", "schemas", "handles.registry.yaml", "pyproject.toml")
_SKIP_PARTS = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
SMOKE_ARGV: tuple[str, ...] = ("-m", "runtime", "--help")

#: Runs a command and returns (exit code, combined output); injectable for the Docker path.
CommandRunner = Callable[[Sequence[str], Path | None, float], tuple[int, str]]


class PackagingError(PlatformError):
    """P(-1) could not produce a verified, identified package."""

    code = "PACKAGING_FAILED"


@dataclass(frozen=True)
class PackagingResult:
    """The identity of what the run will execute."""

    environment: str
    git_sha: str
    git_dirty: bool
    image_tag: str
    image_digest: str | None
    package_digest: str
    smoke_ok: bool
    smoke_output: str

    def evidence_fields(self, registry: Registry) -> dict[str, Any]:
        """The fields run evidence records, under the registry's field names."""
        return {
            registry.text("IMAGE_TAG_EVIDENCE_FIELD"): self.image_tag,
            registry.text("IMAGE_DIGEST_EVIDENCE_FIELD"): self.image_digest,
            registry.text("IMAGE_GIT_SHA_EVIDENCE_FIELD"): self.git_sha,
            "package_digest": self.package_digest,
            "git_dirty": self.git_dirty,
            "smoke_ok": self.smoke_ok,
        }


def run_command(argv: Sequence[str], cwd: Path | None = None, timeout_s: float = 120.0) -> tuple[int, str]:
    """Run a command; (exit code, stdout+stderr). A missing program is exit 127."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as e:
        return 127, str(e)
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} timed out after {timeout_s:.0f}s"
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def git_sha(repo_root: Path = REPO_ROOT, run: CommandRunner = run_command) -> tuple[str, bool]:
    """The commit the working tree is at, and whether the tree has uncommitted changes."""
    code, out = run(["git", "rev-parse", "HEAD"], repo_root, 30.0)
    sha = out.strip()
    if code != 0 or len(sha) != 40 or any(ch not in "0123456789abcdef" for ch in sha):
        raise PackagingError(f"cannot read the commit of {repo_root}: {out.strip()[:200]}", code="GIT_SHA_UNAVAILABLE",
                             next_step="package from a git checkout with at least one commit")
    code, status = run(["git", "status", "--porcelain", "--untracked-files=no"], repo_root, 30.0)
    return sha, code != 0 or bool(status.strip())


def image_tag(registry: Registry, sha: str) -> str:
    """The immutable image tag of a commit (`IMAGE_TAG_GIT_SHA_PATTERN`)."""
    return registry.render("IMAGE_TAG_GIT_SHA_PATTERN", git_sha=sha)


def docker_available(run: CommandRunner = run_command) -> bool:
    """True when a Docker engine answers `docker info`."""
    code, _ = run(["docker", "info"], None, 30.0)
    return code == 0


def source_tree_digest(repo_root: Path = REPO_ROOT) -> str:
    """sha256 over (relative path, content sha256) of every packaged source file, sorted."""
    entries: dict[str, str] = {}
    for root in SOURCE_ROOTS:
        base = repo_root / root
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(repo_root).as_posix()
            if any(part in _SKIP_PARTS for part in path.parts) or path.suffix in (".pyc", ".pyo"):
                continue
            entries[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    if not entries:
        raise PackagingError(f"no source files under {repo_root}", code="SOURCE_TREE_MISSING")
    return canonical_digest(entries)


def installed_requirements_digest(run: CommandRunner = run_command) -> tuple[str, int]:
    """sha256 over the sorted `pip freeze` of this interpreter (the project itself excluded), and its size."""
    code, out = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--all"], None, 120.0)
    if code != 0:
        raise PackagingError(f"pip freeze failed: {out.strip()[:200]}", code="PACKAGE_DIGEST_UNAVAILABLE",
                             next_step="run from the project's virtualenv (make setup)")
    lines = sorted({line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")})
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(), len(lines)


def package_digest(repo_root: Path = REPO_ROOT, run: CommandRunner = run_command) -> str:
    """The identity of the installed package: its dependency set and its source tree together."""
    requirements, _count = installed_requirements_digest(run)
    return canonical_digest({"requirements_sha256": requirements, "source_tree_sha256": source_tree_digest(repo_root)})


def smoke_test_installed(run: CommandRunner = run_command) -> tuple[bool, str]:
    """`python -m runtime --help` in a clean subprocess: no secrets, no project env, outside the repo."""
    with tempfile.TemporaryDirectory(prefix="fp-smoke-") as scratch:
        env_keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV")}
        try:
            done = subprocess.run([sys.executable, *SMOKE_ARGV], cwd=scratch, env=env_keep, capture_output=True,
                                  text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return False, "python -m runtime --help timed out"
    output = (done.stdout or "") + (done.stderr or "")
    return done.returncode == 0 and "usage" in output, output


def package(registry: Registry, *, repo_root: Path = REPO_ROOT, run: CommandRunner = run_command,
            smoke: Callable[[], tuple[bool, str]] = smoke_test_installed) -> PackagingResult:
    """Run P(-1) for the registry's environment; raises unless the package is identified and starts."""
    sha, dirty = git_sha(repo_root, run)
    tag = image_tag(registry, sha)
    if registry.environment != "local_parity":
        if not docker_available(run):
            raise PackagingError(
                f"P(-1) for {registry.environment} must build, smoke-test and push image {tag}, but no Docker engine answers `docker info`",
                code="DOCKER_ENGINE_UNAVAILABLE",
                next_step="start a Docker engine (or build and push from CI), then rerun `fp devmin package --env dev_min`",
            )
        raise PackagingError(
            f"image build/push for {registry.environment} is not implemented in this controller yet (tag {tag})",
            code="IMAGE_BUILD_NOT_IMPLEMENTED",
            next_step="build with `docker build -t <ECR_REPO_URI>:<tag> .`, push, and record the digest; see docs/dev_min.md",
        )
    digest = package_digest(repo_root, run)
    ok, output = smoke()
    if not ok:
        raise PackagingError(f"entrypoint smoke test `python -m runtime --help` failed: {output.strip()[-300:]}",
                             code="SMOKE_TEST_FAILED", next_step="fix the runtime entrypoint so `python -m runtime --help` exits 0")
    return PackagingResult(environment=registry.environment, git_sha=sha, git_dirty=dirty, image_tag=tag, image_digest=None,
                           package_digest=digest, smoke_ok=True, smoke_output=output.strip()[:2000])
