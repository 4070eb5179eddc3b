"""The CLI boundary every command shares (`fp` and `python -m runtime ...`): a PlatformError
becomes one operator line on stderr (code, message, next step) and exit code 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from runtime.errors import PlatformError

err_console = Console(stderr=True)


@contextmanager
def operator_errors() -> Iterator[None]:
    """Print a PlatformError as one line on stderr and exit 1; let everything else raise."""
    try:
        yield
    except PlatformError as e:
        err_console.print(f"[bold red]error[/] {e.operator_line()}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
