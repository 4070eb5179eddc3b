"""The local run folder: `runs/fraud-platform/ACTIVE_RUN_ID` and one folder per platform run.

The folder outlives the embedded substrate: it holds the local copy of every run's evidence
bundle, the pack logs and the substrate state. It is git-ignored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from runtime.contracts.ids import is_platform_run_id, new_platform_run_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

ACTIVE_RUN_FILE = "ACTIVE_RUN_ID"


class RunFolderError(PlatformError):
    """The run folder or ACTIVE_RUN_ID is missing or inconsistent."""

    code = "RUN_FOLDER_INVALID"


@dataclass(frozen=True)
class RunFolders:
    """Paths of the local run folder tree, rooted at LOCAL_RUNS_ROOT (relative to the cwd)."""

    root: Path

    @classmethod
    def from_registry(cls, registry: Registry, base: Path | None = None) -> RunFolders:
        """The tree for this environment (local_parity uses LOCAL_RUNS_ROOT; dev_min the same layout)."""
        relative = registry.text("LOCAL_RUNS_ROOT") if "LOCAL_RUNS_ROOT" in registry else "runs/fraud-platform"  # LOCAL_RUNS_ROOT
        return cls((base or Path.cwd()) / relative)

    def run_dir(self, platform_run_id: str) -> Path:
        """The folder of one run."""
        return self.root / platform_run_id

    def evidence_dir(self, platform_run_id: str) -> Path:
        """The local copy of the run's evidence bundle."""
        return self.run_dir(platform_run_id) / "evidence"

    @property
    def active_file(self) -> Path:
        """The ACTIVE_RUN_ID file."""
        return self.root / ACTIVE_RUN_FILE

    def active_run_id(self) -> str:
        """The active run; a missing file or a missing run folder is a clear error."""
        if not self.active_file.is_file():
            raise RunFolderError(f"no active run: {self.active_file} does not exist",
                                 next_step="run `fp dev-min-up` to create a run")
        value = self.active_file.read_text(encoding="utf-8").strip()
        if not is_platform_run_id(value):
            raise RunFolderError(f"{self.active_file} holds {value!r}, not a platform_run_id",
                                 next_step="run `fp dev-min-up` to create a fresh run")
        if not self.run_dir(value).is_dir():
            raise RunFolderError(f"ACTIVE_RUN_ID points at {value} but {self.run_dir(value)} is missing",
                                 next_step="run `fp dev-min-up` to create a fresh run")
        return value

    def existing_run(self, platform_run_id: str | None) -> str:
        """`platform_run_id`, or the active run when None, after checking its folder exists."""
        run_id = platform_run_id or self.active_run_id()
        if not self.run_dir(run_id).is_dir():
            raise RunFolderError(f"no run folder for {run_id}", next_step=f"runs are listed in {self.root}")
        return run_id

    def new_run(self) -> str:
        """Create a fresh run folder and make it active; a colliding id is refused."""
        for attempt in range(2):
            run_id = new_platform_run_id()
            folder = self.run_dir(run_id)
            try:
                folder.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                if attempt == 0:  # ids are per UTC second: the next second gives a fresh one
                    time.sleep(1.05)
                    continue
                raise RunFolderError(f"run folder {folder} exists already (platform_run_id collision)",
                                     code="PLATFORM_RUN_ID_COLLISION", next_step="wait one second and retry") from None
            self.set_active(run_id)
            return run_id
        raise AssertionError("unreachable")

    def set_active(self, platform_run_id: str) -> None:
        """Point ACTIVE_RUN_ID at an existing run (atomic replace)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.active_file.with_suffix(".tmp")
        tmp.write_text(platform_run_id + "\n", encoding="utf-8")
        tmp.replace(self.active_file)

    def runs(self) -> list[str]:
        """Every run folder, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_platform_run_id(p.name))
