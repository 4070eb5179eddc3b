"""`python -m runtime decision ...`: the decision lane's P9 job and its operator commands.

- `committed`: P9's job, run where the database lives (an ECS task in dev_min): waits until the
  lane committed the run's chain, then writes the three P9 summaries (runtime/decision/committed.py);
- `show`: one decision's whole chain by decision id or admitted event id (runtime/decision/show.py);
- `verify`: checks the run's stored audit chain against its index (an edited, removed or reordered batch).

Thin: settings, the database and the evidence bucket, then the stores' reads. Errors leave as one
operator line (code, message, next step) and exit 1; `verify` exits 1 when the chain does not verify.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from runtime.cli_errors import operator_errors
from runtime.errors import PlatformError

app = typer.Typer(help="Decision lane: the P9 committed check, one decision's chain, the audit verification.",
                  no_args_is_help=True)

RunOpt = Annotated[str, typer.Option("--platform-run-id", envvar="REQUIRED_PLATFORM_RUN_ID", help="the pinned run")]


class DecisionUnknown(PlatformError):
    """No decision of the run has that decision id or admitted event id (in DLA's audit index)."""

    code = "DECISION_UNKNOWN"
    next_step = ("check the id and the run (`fp status` shows the active run); a decision DLA has not "
                 "logged yet is not shown: rerun once P9 passed")


@app.callback()
def main() -> None:
    """Decision lane commands."""


def _settings_for(platform_run_id: str) -> Any:
    """Settings for a pinned run with a database (RUN_UNKNOWN / DB_DSN_MISSING otherwise)."""
    from runtime.settings import load_settings
    from runtime.worker.run import require_run

    settings = load_settings()
    require_run(settings, platform_run_id)
    if not settings.db_dsn:
        raise PlatformError("no database DSN is set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN (SSM_DB_DSN_PATH)")
    return settings


@app.command("committed")
def committed(
    platform_run_id: RunOpt,
    wait: Annotated[float, typer.Option(min=0, max=3600, help="seconds without progress before it fails")] = 600.0,
) -> None:
    """P9: wait until every admitted traffic event is decided, acted on and logged
    (GREEN, no dead letter, lineage resolved), verify the audit chain, write the
    evidence. Nothing is written otherwise (DECISION_CHAIN_NOT_COMMITTED,
    AUDIT_CHAIN_BROKEN, POLICY_DRIFT)."""
    from runtime.decision.committed import write_committed

    with operator_errors():
        settings = _settings_for(platform_run_id)
        written = write_committed(settings, platform_run_id, wait_s=wait, progress=lambda line: typer.echo(line, err=True))
    typer.echo(f"P9 committed for {platform_run_id}: {', '.join(w.relative_path for w in written)}")


@app.command("show")
def show(
    platform_run_id: RunOpt,
    decision_id: Annotated[str | None, typer.Option("--decision-id", help="the decision's id (32 hex)")] = None,
    event_id: Annotated[str | None, typer.Option("--event-id", help="the admitted traffic event's id")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole chain as JSON")] = False,
) -> None:
    """One decision's chain: the admitted event (eb_ref, receipt), the reasons
    that fired with the feature values behind them, intents, outcomes, and each
    record's audit batch and object."""
    from runtime.db.postgres import connect
    from runtime.decision.dla.store import decision_chain
    from runtime.decision.show import render_chain

    with operator_errors():
        if (decision_id is None) == (event_id is None):
            raise PlatformError("give exactly one of --decision-id and --event-id", code="DECISION_ID_MISSING",
                                next_step="pass --decision-id <id> or --event-id <admitted event id>")
        settings = _settings_for(platform_run_id)
        with connect(settings.db_dsn) as conn:
            chain = decision_chain(conn, platform_run_id, decision_id=decision_id, event_id=event_id)
            receipt = None
            if chain is not None and chain["admitted_event"].get("receipt_id"):
                row = conn.execute("SELECT outcome, batch_key, batch_index FROM ig_receipts WHERE receipt_id = %s",
                                   (chain["admitted_event"]["receipt_id"],)).fetchone()
                receipt = {"outcome": row[0], "batch_key": row[1], "batch_index": row[2]} if row else None
        if chain is None:
            which = f"decision id {decision_id}" if decision_id else f"event id {event_id}"
            raise DecisionUnknown(f"run {platform_run_id} has no logged decision with {which}")
        chain["receipt"] = receipt
    typer.echo(json.dumps(chain, indent=2, sort_keys=True, default=str) if as_json else render_chain(chain, receipt))


@app.command("verify")
def verify(
    platform_run_id: RunOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """Check the run's audit batch objects against the index: finds an edited,
    removed or reordered batch (exit 1 when the chain does not verify)."""
    from runtime.db.postgres import connect
    from runtime.decision.dla.store import verify_stored_chain
    from runtime.decision.show import render_verdict

    with operator_errors():
        settings = _settings_for(platform_run_id)
        with connect(settings.db_dsn) as conn:
            verdict = verify_stored_chain(conn, settings.bucket("S3_EVIDENCE_BUCKET"), platform_run_id)
        if verdict.batches == 0:
            raise PlatformError(f"run {platform_run_id} has no audit batch", code="AUDIT_CHAIN_EMPTY",
                                next_step="the decision lane has logged nothing for this run: run P9 first")
    problems = [dict(p) for p in verdict.problems]
    typer.echo(json.dumps({"platform_run_id": platform_run_id, "verified": verdict.ok, "batches": verdict.batches,
                           "problems": problems}, indent=2, sort_keys=True) if as_json
               else render_verdict(platform_run_id, verdict.ok, verdict.batches, problems))
    if not verdict.ok:
        raise typer.Exit(1)
