"""Where the oracle lane's objects live in the oracle bucket, from the registry's patterns.

One place renders every key so sync, pack, sort and check can never disagree on a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.contracts.registry import Registry

PARTS_PREFIX = "part-"
MANIFEST_NAME = "manifest.json"
SEAL_NAME = "_SEALED.json"


@dataclass(frozen=True)
class OracleLayout:
    """The keys of one platform run's oracle lane."""

    registry: Registry
    platform_run_id: str

    def _render(self, key: str, **params: str) -> str:
        return self.registry.render(key, platform_run_id=self.platform_run_id, **params)

    @property
    def bucket_key(self) -> str:
        """The handle of the oracle bucket."""
        return "S3_ORACLE_BUCKET"

    @property
    def oracle_prefix(self) -> str:
        """Root of everything the lane writes for this run."""
        return self._render("S3_ORACLE_PREFIX_PATTERN")

    @property
    def engine_prefix(self) -> str:
        """Where sync puts the engine run (one folder per output id)."""
        return self._render("ORACLE_ENGINE_RUN_PREFIX_PATTERN")

    def engine_output_prefix(self, output_id: str) -> str:
        """The engine files of one output."""
        return f"{self.engine_prefix}{output_id}/"

    @property
    def pack_prefix(self) -> str:
        """The pack root: manifest + seal."""
        return self._render("ORACLE_PACK_PREFIX_PATTERN")

    @property
    def manifest_key(self) -> str:
        """The pack manifest (every sealed object with size and sha256)."""
        return f"{self.pack_prefix}{MANIFEST_NAME}"

    @property
    def seal_key(self) -> str:
        """The write-once seal."""
        return f"{self.pack_prefix}{SEAL_NAME}"

    @property
    def stream_view_root(self) -> str:
        """Base of every output's stream view."""
        return self._render("ORACLE_STREAM_VIEW_ROOT_PATTERN")

    def view_prefix(self, output_id: str) -> str:
        """One output's stream view folder."""
        return self._render("S3_STREAM_VIEW_PREFIX_PATTERN", output_id=output_id)

    def part_key(self, output_id: str, index: int) -> str:
        """The key of stream view part `index` of an output."""
        return f"{self.view_prefix(output_id)}{PARTS_PREFIX}{index:06d}.parquet"

    def view_manifest_key(self, output_id: str) -> str:
        """The stream view manifest of an output."""
        return self._render("S3_STREAM_VIEW_MANIFEST_PATTERN", output_id=output_id)

    def receipt_key(self, output_id: str) -> str:
        """The stream sort receipt ("done" marker) of an output."""
        return self._render("S3_STREAM_SORT_RECEIPT_PATTERN", output_id=output_id)

    @property
    def checker_report_key(self) -> str:
        """Where a failing checker leaves its report (PASS goes to the evidence bundle)."""
        return f"{self.oracle_prefix}checker/failure_report.json"
