"""`python -m runtime df run|backtest`: the DF worker, and a backtest of a run with a candidate bundle.

`run` is the stream worker every lane component shares (runtime/worker/cli.py, with
`--replay-group`). `backtest` replays the run's RTDL archive through the same DF code
(runtime/decision/backtest.py) with a candidate bundle and prints and writes the comparison; it
takes no action and writes nothing to the lane's tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from runtime.worker.cli import RunIdOpt, worker_app

app = worker_app("df", "Decision fabric: admitted traffic -> one decision per event with point-in-time inputs.")


@app.command("backtest")
def backtest_command(
    platform_run_id: RunIdOpt,
    policy: Annotated[Path, typer.Option(help="the candidate bundle (YAML); loaded without its pin")],
    out: Annotated[Path | None, typer.Option(help="where to write the comparison JSON (default: the run folder's "
                                                  "decision_lane/backtest/<candidate digest[:12]>.json)")] = None,
    truth: Annotated[bool, typer.Option(help="score live and candidate against the oracle's truth")] = True,
) -> None:
    """Decide the run's archived traffic again with a candidate bundle; compare with the live decisions."""
    from runtime.cli_errors import operator_errors
    from runtime.db.postgres import connect
    from runtime.decision.backtest import run_backtest, summary_lines, write_report
    from runtime.decision.bundle import load_policy
    from runtime.ig.summaries import event_topics
    from runtime.oracle.layout import OracleLayout
    from runtime.settings import load_settings
    from runtime.worker.run import require_run

    with operator_errors():
        settings = load_settings()
        require_run(settings, platform_run_id)
        registry = settings.registry
        candidate = load_policy(policy, check_pin=False)
        topics = event_topics(registry)
        layout = OracleLayout(registry, platform_run_id)
        with connect(str(settings.db_dsn)) as conn:
            doc = run_backtest(conn, settings.bucket("S3_ARCHIVE_BUCKET"),
                               settings.bucket(layout.bucket_key) if truth else None, layout, platform_run_id, topics,
                               candidate)
        for line in summary_lines(doc):
            typer.echo(line)
        runs_root = Path(os.environ.get(registry.group("runtime_env")["ENVVAR_RUNS_ROOT"]) or registry.text("LOCAL_RUNS_ROOT"))
        target = out or runs_root / platform_run_id / "decision_lane" / "backtest" / f"{candidate.digest[:12]}.json"
        typer.echo(f"comparison written to {write_report(doc, target)}")
