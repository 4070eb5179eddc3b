"""`python -m runtime ls run|ingest-bank-view|as-of`: the label store's daemon, its bank view intake job, a query.

Only wiring: settings from the environment, the database (FP_DB_DSN) and the oracle bucket, then
runtime/case/ls/{handler,intake,store}.py. Errors leave as one operator line with a code and the
next step, exit 1. The bank view intake prints its report as one JSON document.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from runtime.case.cli_support import open_database, require_run
from runtime.cli_errors import operator_errors
from runtime.worker.cli import RunIdOpt, worker_app

app = worker_app("ls", "Label store: append-only label assertions (the label topic's daemon, the bank view intake, "
                       "label_as_of queries).")


@app.command("ingest-bank-view")
def ingest_bank_view(platform_run_id: RunIdOpt) -> None:
    """Append the run's bank view (confirmed fraud after its reporting delay, customer disputes) as label
    assertions on the admitted events of each flow; idempotent, safe to rerun after a crash."""
    from runtime.case.ls.intake import ingest_bank_view as ingest
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        settings = load_settings()
        with open_database(settings, "ls bank view intake") as db:
            report = ingest(db, settings.bucket("S3_ORACLE_BUCKET"), settings.registry, platform_run_id)
        typer.echo(json.dumps(report.as_dict(), sort_keys=True, indent=2))


@app.command("as-of")
def as_of(
    platform_run_id: RunIdOpt,
    event_id: Annotated[str, typer.Option(help="the labelled event (32 hex)")],
    at: Annotated[str, typer.Option(help="RFC 3339 time: what was known then (later learning never leaks in)")],
    label_type: Annotated[str, typer.Option(help="label type")] = "fraud",
) -> None:
    """Print label_as_of(subject, t): the value known at `--at` and the assertion it rests on (JSON)."""
    from runtime.case.keys import LabelSubjectKey
    from runtime.case.ls.store import label_as_of_stored
    from runtime.settings import load_settings

    with operator_errors():
        require_run(platform_run_id)
        subject = LabelSubjectKey(platform_run_id, event_id, label_type)
        with open_database(load_settings(), "ls as-of") as db, db.transaction() as conn:
            answer = label_as_of_stored(conn, subject, at)
        typer.echo(json.dumps({"subject": subject.as_dict(), "at": at, **answer.__dict__}, sort_keys=True))
