"""`fp report [platform_run_id]`: the summary of a run's report and where its HTML report is.

Reads the local run folder's copy of the evidence bundle (the reporter of P11 writes
`run_report.json` there and in the object store). A run P11 has not closed yet has no report:
that is a RUN_REPORT_MISSING error naming the next step, never an empty summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from controller.cli.common import ENV_HELP, console, operator_errors
from controller.cli.options import registry_for
from controller.runs import RunFolders
from runtime.contracts.registry import Registry
from runtime.errors import EvidenceInvalid
from runtime.evidence.writer import schema_violations
from runtime.obs.errors import RunReportMissing
from runtime.obs.report_html import ratio


def report_paths(registry: Registry, evidence_dir: Path) -> tuple[Path, Path]:
    """(run_report.json, run_report.html) of a run's local bundle copy."""
    return (evidence_dir / registry.text("RUN_REPORT_PATH_PATTERN"),
            evidence_dir / registry.text("RUN_REPORT_HTML_PATH_PATTERN"))


def load_report(path: Path) -> dict[str, Any]:
    """The run report at `path`, schema-checked (RUN_REPORT_MISSING when absent)."""
    if not path.is_file():
        raise RunReportMissing(f"the run has no report yet: {path} does not exist")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvidenceInvalid(f"{path} is not valid JSON: {e.msg}", next_step="validate the bundle: `fp evidence validate`") from None
    problems = schema_violations("evidence/run_report.schema.json", document)
    if problems:
        raise EvidenceInvalid(f"{path} breaks its schema: {problems[0]}", next_step="validate the bundle: `fp evidence validate`")
    return dict(document)


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, value) lines of the summary, short enough for an 80-column terminal."""
    phases = report.get("phases") or []
    passed = sum(1 for p in phases if p.get("state") == "PASS")
    recon = report.get("reconciliation") or {}
    failed_hops = ", ".join(map(str, recon.get("failed_hops") or []))
    q = report.get("decision_quality") or {}
    flow = q.get("flow") or {}
    anomalies = report.get("anomalies") or {}
    total = anomalies.get("total", sum(v for v in anomalies.values() if isinstance(v, int)))
    rows = [("status", str(report.get("status"))),
            ("environment", f"{report.get('environment')} (bus {report.get('bus', 'n/a')})"),
            ("phases passed", f"{passed} of {len(phases)}"),
            ("reconciliation", str(recon.get("status")) + (f" (failed: {failed_hops})" if failed_hops else "")),
            ("flow precision", ratio(flow.get("precision"))),
            ("flow recall", ratio(flow.get("recall"))),
            ("flow alert rate", ratio(flow.get("alert_rate"))),
            ("anomalies", str(total))]
    for pattern, m in sorted((q.get("by_pattern") or {}).items()):
        rows.append((f"{pattern} recall", f"{ratio(m.get('recall'))} of {m.get('flows', '?')} flows"))
    cost = report.get("cost")
    if isinstance(cost, dict):
        total = cost.get("total")
        rows.append(("cost of the window", (f"{total:.2f} {cost.get('currency')}" if isinstance(total, int | float) else "not priced")
                     + f" ({cost.get('basis')})"))
    return rows


def report_command(
    run: Annotated[str | None, typer.Argument(help="platform_run_id (default: the active run)")] = None,
    env: Annotated[str | None, typer.Option("--env", help=ENV_HELP)] = None,
) -> None:
    """Print the summary of a run's report (P11) and the path of its HTML report."""
    with operator_errors():
        registry = registry_for(env)
        folders = RunFolders.from_registry(registry)
        run_id = folders.existing_run(run)
        json_path, html_path = report_paths(registry, folders.evidence_dir(run_id))
        report = load_report(json_path)
    console.print(f"run report {run_id}", highlight=False, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    for what, value in summary_rows(report):
        table.add_row(what, value)
    console.print(table)
    console.print(f"report: {json_path}", highlight=False, soft_wrap=True)
    if html_path.is_file():
        console.print(f"html: {html_path}", highlight=False, soft_wrap=True)
    else:
        console.print(f"html: not written yet ({html_path})", highlight=False, soft_wrap=True)
