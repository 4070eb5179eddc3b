"""Oracle-lane error codes, each with the operator's way out.

The seed codes keep their names (MANIFEST_MISMATCH, STREAM_VIEW_PARTIAL_EXISTS); the others name
the failing thing so a one-shot job's exit line is enough to act on.
"""

from __future__ import annotations

from runtime.errors import PlatformError


class ManifestMismatch(PlatformError):
    """The pack root is sealed with a different manifest than the content now present."""

    code = "MANIFEST_MISMATCH"
    next_step = "use a fresh platform_run_id (fresh pack root) and re-run sync + pack"


class SealVerifyFailed(PlatformError):
    """check-strict found a sealed object whose size or sha256 no longer matches the manifest."""

    code = "SEAL_VERIFY_FAILED"
    next_step = "the oracle inputs changed after sealing: re-seed under a fresh platform_run_id"


class NotSealed(PlatformError):
    """A step that needs a sealed pack ran before `oracle pack`."""

    code = "ORACLE_NOT_SEALED"
    next_step = "run `python -m runtime oracle pack` first"


class EngineRunMissing(PlatformError):
    """The local engine run root is absent or holds no outputs."""

    code = "ENGINE_RUN_MISSING"
    next_step = "run `python -m runtime oracle generate --root <dir>` or point --root at an engine run"


class UnknownOutputId(PlatformError):
    """An output id that the registry does not list."""

    code = "UNKNOWN_OUTPUT_ID"
    next_step = "use one of the registry's ORACLE_*_OUTPUT_IDS"


class InputMissing(PlatformError):
    """A required output has no objects in the sealed pack."""

    code = "ORACLE_INPUT_MISSING"
    next_step = "re-run sync + pack with an engine run that holds this output"


class InputCorrupt(PlatformError):
    """An input object is not readable Parquet."""

    code = "ORACLE_INPUT_CORRUPT"
    next_step = "regenerate the engine run and re-seed under a fresh platform_run_id"


class SortColumnMissing(PlatformError):
    """An output lacks a column its registry sort key needs."""

    code = "SORT_COLUMN_MISSING"
    next_step = "fix the engine output schema or ORACLE_SORT_KEY_BY_OUTPUT_ID"


class OutputEmpty(PlatformError):
    """An output has files but zero rows: a stream view of nothing is refused."""

    code = "ORACLE_OUTPUT_EMPTY"
    next_step = "regenerate the engine run with a non-zero scale"


class StreamViewPartialExists(PlatformError):
    """Parts exist under an output's stream view prefix without a receipt."""

    code = "STREAM_VIEW_PARTIAL_EXISTS"
    next_step = "delete ONLY this output_id's stream_view prefix and re-run stream-sort for it"


class StreamViewConflict(PlatformError):
    """A receipt exists but does not describe the sealed input or the parts present."""

    code = "STREAM_VIEW_CONFLICT"
    next_step = "delete this output_id's stream_view prefix (parts, manifest, receipt) and re-run stream-sort"


class StreamViewInvalid(PlatformError):
    """The written stream view does not hold the same rows as the input (count or content hash)."""

    code = "STREAM_VIEW_INVALID"
    next_step = "delete this output_id's stream_view prefix and re-run stream-sort; report if it repeats"


class CheckerFailed(PlatformError):
    """At least one required output failed the oracle checker; no PASS was written."""

    code = "ORACLE_CHECKER_FAILED"
    next_step = "read the failure report, re-run only the failing outputs' stream-sort, then check again"


class SortEngineError(PlatformError):
    """DuckDB failed while sorting (out of memory, temp space, S3 access)."""

    code = "STREAM_SORT_FAILED"
    next_step = (
        "delete the partial view, then re-run with fewer --threads, a smaller --rows-per-part "
        "(or --chunk-days 1) or a larger --max-temp-size"
    )
