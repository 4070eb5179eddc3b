"""The `fp` application: one sub-app per command group, joined here."""

from __future__ import annotations

import typer

from controller.cli import devmin, evidence, handles, lifecycle, report, stacks, substrate

app = typer.Typer(
    help="Operate the fraud-platform spine: bring the substrate up, run the phases, tear down with proof.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("dev-min-up")(lifecycle.dev_min_up)
app.command("dev-min-run")(lifecycle.dev_min_run)
app.command("dev-min-down")(lifecycle.dev_min_down)
app.command("status")(lifecycle.status)
app.command("report")(report.report_command)
app.add_typer(handles.app, name="handles")
app.add_typer(evidence.app, name="evidence")
app.add_typer(substrate.app, name="substrate")
app.add_typer(devmin.app, name="devmin")
app.add_typer(stacks.app, name="stacks")


def main() -> None:
    """Console-script entry point."""
    app()
