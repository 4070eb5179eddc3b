"""What every command shares: the console, and turning a PlatformError into exit code 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from runtime.cli_errors import err_console, operator_errors

console = Console()
T = TypeVar("T")
__all__ = ["ENV_HELP", "console", "err_console", "operator_errors", "run_operator"]

ENV_HELP = "environment of the handles registry: local_parity or dev_min (default: $FP_ENV, else local_parity)"


def run_operator(fn: Callable[[], T]) -> T:
    """Call `fn` under `operator_errors`."""
    with operator_errors():
        return fn()
