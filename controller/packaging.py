"""P(-1) PACKAGING_READY: name the one platform image after its commit and prove it starts.

dev_min runs only what is in the image, so the image is tagged with the commit it was built from
(`IMAGE_TAG_GIT_SHA_PATTERN`), built from a clean tree, smoke-tested (`--help`, no secrets, no
network) and pushed to ECR; the digest ECR reports for the tag is what the run pins. A tag that is
already in ECR names the same commit, so it is reused (pulled, digest-checked, smoke-tested), never
rebuilt: ECR tags are immutable and a rebuild would not be byte-identical. Without a Docker engine
none of this can happen and dev_min fails closed (DOCKER_ENGINE_UNAVAILABLE). local_parity runs
the installed package directly, so it records a package digest instead (the pinned dependency set
+ the project's source tree) and smoke-tests the same entrypoint in a subprocess.

The docker CLI is reached through one seam (`CommandRunner`) and ECR through `ImageRegistry`
(boto3 in controller.ecr), so the decisions here are plain code over plain answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controller.ecr import RegistryLogin, Repository, ecr_images
from runtime.contracts.canonical import canonical_digest
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT

#: What goes into the image and into the source digest (see Dockerfile / .dockerignore).
SOURCE_ROOTS: tuple[str, ...] = ("runtime", "controller", "stacks", "schemas", "handles.registry.yaml", "pyproject.toml")
_SKIP_PARTS = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
SMOKE_ARGV: tuple[str, ...] = ("-m", "runtime", "--help")
#: Paths `docker build` copies (the .dockerignore allow-list plus the build files themselves).
BUILD_CONTEXT: tuple[str, ...] = (*SOURCE_ROOTS, "README.md", "Dockerfile", ".dockerignore")

#: Timeouts (seconds) of the docker steps: a cold build installs every dependency.
BUILD_TIMEOUT_S = 1800.0
PUSH_TIMEOUT_S = 1800.0
SMOKE_TIMEOUT_S = 300.0
LOGIN_TIMEOUT_S = 60.0
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")

#: Progress lines for the operator (the CLI shows them in its status line).
Progress = Callable[[str], None]


class CommandRunner(Protocol):
    """Runs a command and returns (exit code, stdout+stderr); `stdin` is fed to the process, never put on argv."""

    def __call__(self, argv: Sequence[str], cwd: Path | None, timeout_s: float, stdin: str | None = None, /) -> tuple[int, str]:
        """Run `argv` in `cwd` with a timeout."""
        ...


class ImageRegistry(Protocol):
    """What P(-1) asks the image registry (ECR in dev_min; see controller.ecr)."""

    def repository(self, name: str) -> Repository:
        """The repository, or ECR_REPOSITORY_MISSING."""
        ...

    def tag_digest(self, name: str, tag: str) -> str | None:
        """The digest a tag points at, None when absent."""
        ...

    def login(self) -> RegistryLogin:
        """Credentials for `docker login`."""
        ...


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
    image_uri: str | None = None
    image_reused: bool = False

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


def run_command(argv: Sequence[str], cwd: Path | None = None, timeout_s: float = 120.0, stdin: str | None = None, /) -> tuple[int, str]:
    """Run a command; (exit code, stdout+stderr). A missing program is exit 127. Without `stdin` the
    process reads /dev/null, so nothing can ever wait on the operator's terminal."""
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False, **feed)
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


def untracked_build_files(repo_root: Path = REPO_ROOT, run: CommandRunner = run_command) -> list[str]:
    """Files not ignored by git, not committed, and inside the build context: they would enter the image
    without being part of the commit its tag names."""
    code, out = run(["git", "status", "--porcelain", "--untracked-files=all", "--", *BUILD_CONTEXT], repo_root, 30.0)
    if code != 0:
        raise PackagingError(f"git status failed in {repo_root}: {out.strip()[:200]}", code="GIT_SHA_UNAVAILABLE",
                             next_step="package from a git checkout")
    return sorted(line[3:] for line in out.splitlines() if line.startswith("??"))


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


def _tail(output: str, limit: int = 400) -> str:
    return " ".join(output.strip().split())[-limit:]


def _repo_digest(run: CommandRunner, ref: str, repo_uri: str) -> str | None:
    """The digest docker knows for `ref` in repository `repo_uri` (from `.RepoDigests`), if any."""
    code, out = run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref], None, 60.0)
    if code != 0:
        return None
    try:
        digests = json.loads(out.strip() or "[]")
    except json.JSONDecodeError:
        return None
    for entry in digests if isinstance(digests, list) else []:
        name, _, digest = str(entry).partition("@")
        if name == repo_uri and _DIGEST_RE.fullmatch(digest):
            return digest
    return None


def smoke_test_image(run: CommandRunner, ref: str) -> tuple[bool, str]:
    """`docker run --rm --network none <ref> --help`: no env, no secrets, no network; output must say usage."""
    code, out = run(["docker", "run", "--rm", "--network", "none", ref, "--help"], None, SMOKE_TIMEOUT_S)
    return code == 0 and "usage" in out.lower(), out


def _docker_login(run: CommandRunner, images: ImageRegistry) -> None:
    login = images.login()
    code, out = run(["docker", "login", "--username", login.username, "--password-stdin", login.endpoint], None,
                    LOGIN_TIMEOUT_S, login.password)
    if code != 0:
        raise PackagingError(f"`docker login {login.endpoint}` failed: {_tail(out.replace(login.password, '***'))}",
                             code="ECR_LOGIN_FAILED", next_step="check the Docker engine's network and AWS credentials, then rerun P(-1)")


def _smoke_or_raise(run: CommandRunner, ref: str) -> str:
    ok, out = smoke_test_image(run, ref)
    if not ok:
        raise PackagingError(f"image smoke test `docker run --rm {ref} --help` failed: {_tail(out)}", code="SMOKE_TEST_FAILED",
                             next_step="fix the image so `python -m runtime --help` runs without secrets (see Dockerfile), "
                                       "commit, rerun P(-1)")
    return out


def package_image(registry: Registry, sha: str, *, repo_root: Path, run: CommandRunner, images: ImageRegistry,
                  progress: Progress | None = None) -> tuple[str, str, bool, str]:
    """Build (or reuse), smoke-test and push the image of commit `sha`; (image ref, ECR digest, reused, smoke output).

    A tag already in ECR is reused: pulled, its digest checked against ECR's, smoke-tested. Otherwise:
    build, smoke test, login (password on stdin), push, and ECR must report the digest the push did."""
    note = progress or (lambda _line: None)
    tag = image_tag(registry, sha)
    repo_name = registry.text("ECR_REPO_NAME")
    repo = images.repository(repo_name)
    uri = registry.render("ECR_REPO_URI", aws_account_id=repo.account_id)
    if uri != repo.uri:
        raise PackagingError(f"ECR reports repository URI {repo.uri}, the registry's ECR_REPO_URI gives {uri}",
                             code="ECR_REPO_URI_MISMATCH",
                             next_step="use the registry's region (FP_AWS_REGION) and account, or fix ECR_REPO_URI")
    ref = f"{uri}:{tag}"
    existing = images.tag_digest(repo_name, tag)
    if existing is not None:
        note(f"{tag} is already in ECR ({existing}); pulling it instead of rebuilding")
        _docker_login(run, images)
        code, out = run(["docker", "pull", ref], None, PUSH_TIMEOUT_S)
        if code != 0:
            raise PackagingError(f"`docker pull {ref}` failed: {_tail(out)}", code="IMAGE_PULL_FAILED",
                                 next_step="check the Docker engine's network and ECR permissions, then rerun P(-1)")
        pulled = _repo_digest(run, ref, uri)
        if pulled != existing:
            raise PackagingError(f"tag {tag} is in ECR as {existing} but pulls as {pulled}", code="IMAGE_DIGEST_MISMATCH",
                                 next_step=f"an immutable tag must name one image: inspect {repo_name} in ECR; rebuild under a new commit")
        note(f"smoke test {ref}")
        return ref, existing, True, _smoke_or_raise(run, ref)
    note(f"docker build {ref}")
    code, out = run(["docker", "build", "--pull", "-t", ref, str(repo_root)], repo_root, BUILD_TIMEOUT_S)
    if code != 0:
        raise PackagingError(f"`docker build -t {ref}` failed: {_tail(out)}", code="IMAGE_BUILD_FAILED",
                             next_step="fix the build error above (Dockerfile, pyproject.toml), commit, rerun P(-1)")
    note(f"smoke test {ref}")
    smoke_output = _smoke_or_raise(run, ref)
    note("docker login (ECR)")
    _docker_login(run, images)
    note(f"docker push {ref}")
    code, out = run(["docker", "push", ref], None, PUSH_TIMEOUT_S)
    if code != 0:
        raise PackagingError(f"`docker push {ref}` failed: {_tail(out)}", code="IMAGE_PUSH_FAILED",
                             next_step="check ECR permissions and the network, then rerun P(-1) (a tag that did land is reused)")
    match = _PUSH_DIGEST_RE.search(out)
    pushed = match.group(1) if match else _repo_digest(run, ref, uri)
    registered = images.tag_digest(repo_name, tag)
    if pushed is None or registered is None or pushed != registered:
        raise PackagingError(f"pushed {ref} as {pushed}, but ECR has tag {tag} as {registered}", code="IMAGE_DIGEST_MISMATCH",
                             next_step=f"inspect {repo_name} in ECR (`aws ecr describe-images`); rerun P(-1) once the tag names one image")
    return ref, registered, False, smoke_output


def package(registry: Registry, *, repo_root: Path = REPO_ROOT, run: CommandRunner = run_command,
            smoke: Callable[[], tuple[bool, str]] = smoke_test_installed, images: ImageRegistry | None = None,
            progress: Progress | None = None) -> PackagingResult:
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
        untracked = untracked_build_files(repo_root, run)
        if dirty or untracked:
            what = f"untracked files in the build context ({', '.join(untracked[:5])})" if untracked else "uncommitted changes"
            raise PackagingError(f"the working tree of {repo_root} has {what}; image {tag} must contain exactly commit {sha}",
                                 code="GIT_TREE_DIRTY", next_step="commit or stash the changes (`git status`), then rerun P(-1)")
        digest = package_digest(repo_root, run)
        ref, image_digest, reused, output = package_image(registry, sha, repo_root=repo_root, run=run,
                                                          images=images if images is not None else ecr_images(registry),
                                                          progress=progress)
        return PackagingResult(environment=registry.environment, git_sha=sha, git_dirty=False, image_tag=tag,
                               image_digest=image_digest, package_digest=digest, smoke_ok=True, smoke_output=output.strip()[:2000],
                               image_uri=ref, image_reused=reused)
    digest = package_digest(repo_root, run)
    ok, output = smoke()
    if not ok:
        raise PackagingError(f"entrypoint smoke test `python -m runtime --help` failed: {output.strip()[-300:]}",
                             code="SMOKE_TEST_FAILED", next_step="fix the runtime entrypoint so `python -m runtime --help` exits 0")
    return PackagingResult(environment=registry.environment, git_sha=sha, git_dirty=dirty, image_tag=tag, image_digest=None,
                           package_digest=digest, smoke_ok=True, smoke_output=output.strip()[:2000])


def pinned_image(packaging: dict[str, Any] | None) -> str | None:
    """`<repository>@sha256:<digest>` from P(-1)'s evidence: the exact image a dev_min run's tasks
    must run (a tag can be re-pointed, a digest cannot). None when P(-1) pinned no image (local)."""
    if not packaging or not packaging.get("image_uri") or not packaging.get("image_digest"):
        return None
    repository = str(packaging["image_uri"]).split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    return f"{repository}@{packaging['image_digest']}"
