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
