"""Obs/Gov error codes, each with the operator's way out.

The seed codes keep their names (REPORTER_LOCK_HELD, S3_APPEND_CONFLICT).
"""

from __future__ import annotations

from runtime.errors import PermanentError, TransientError


class ReporterLockHeld(PermanentError):
    """Another reporter holds the run's single-writer lock: this one must not write closure files."""

    code = "REPORTER_LOCK_HELD"
    next_step = ("another reporter is closing this run: wait for it to finish (`fp report`), or stop the obs_gov "
                 "reporter daemon before `--phase P11`; a holder that died releases the lock with its session")


class ReporterLockLost(PermanentError):
    """The lock's session ended under a running reporter (database restart, network loss)."""

    code = "REPORTER_LOCK_LOST"
    next_step = ("another reporter may hold the run now: stop this one without writing, check `fp report`, "
                 "then re-run the reporter once")


class ReporterLockBackendUnsupported(PermanentError):
    """The registry names a lock backend this code does not implement."""

    code = "REPORTER_LOCK_BACKEND_UNSUPPORTED"
    next_step = "set REPORTER_LOCK_BACKEND to postgres_table in handles.registry.yaml"


class AppendConflict(TransientError):
    """A concurrent writer appended to the governance log between our read and our conditional write."""

    code = "S3_APPEND_CONFLICT"
    next_step = ("two writers append to the governance log at once: stop the reporter daemon, then re-run the "
                 "reporter once (appends retry by themselves up to a bound)")


class RunReportMissing(PermanentError):
    """The run has no run report yet (P11 has not closed it)."""

    code = "RUN_REPORT_MISSING"
    next_step = "close the run first (P11, the reporter); `fp status` shows which phase it reached"


class RunNotClosable(PermanentError):
    """The run cannot be closed: it stopped before P10, or its bundle lacks a file a closure needs."""

    code = "REPORTER_RUN_NOT_CLOSABLE"
    next_step = "finish the run first (`fp status` shows where it stopped; resume with `fp dev-min-run --from <phase>`)"


class EvidenceMissing(PermanentError):
    """A file the phases before P11 must have written is not in the bundle."""

    code = "REPORTER_EVIDENCE_MISSING"
    next_step = ("the bundle is incomplete: rerun the phase that writes it (`fp dev-min-run --from <phase>`), "
                 "then `reporter close` again; never recreate an evidence file by hand")


class TruthUnavailable(PermanentError):
    """The oracle's truth or the run's traffic could not be read for decision quality."""

    code = "REPORTER_TRUTH_UNAVAILABLE"
    next_step = "check the oracle store (P3's pack) and the archive bucket are reachable, then `reporter close` again"
