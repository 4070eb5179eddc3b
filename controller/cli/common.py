"""What every command shares: the console, and turning a PlatformError into exit code 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console

from runtime.errors import PlatformError

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

ENV_HELP = "environment of the handles registry: local_parity or dev_min (default: $FP_ENV, else local_parity)"


@contextmanager
def operator_errors() -> Iterator[None]:
    """Print a PlatformError as one line on stderr and exit 1; let everything else raise."""
    try:
        yield
    except PlatformError as e:
        err_console.print(f"[bold red]error[/] {e.operator_line()}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def run_operator(fn: Callable[[], T]) -> T:
    """Call `fn` under `operator_errors`."""
    with operator_errors():
        return fn()
