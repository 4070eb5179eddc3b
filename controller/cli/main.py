"""The `fp` application: one sub-app per command group, joined here."""

from __future__ import annotations

import typer

from controller.cli import handles, stacks

app = typer.Typer(
    help="Operate the fraud-platform spine: bring the substrate up, run the phases, tear down with proof.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(handles.app, name="handles")
app.add_typer(stacks.app, name="stacks")


def main() -> None:
    """Console-script entry point."""
    app()
