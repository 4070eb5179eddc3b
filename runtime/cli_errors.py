"""The CLI boundary every command shares (`fp` and `python -m runtime ...`): a PlatformError
becomes one operator line on stderr (code, message, next step) and exit code 1; and `--help`
lists a flag (`--help`, `--restream`, `--evidence/--no-evidence`) without a `<bool>` value it
does not take."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
import typer.core
from rich.console import Console

from runtime.errors import PlatformError

err_console = Console(stderr=True)

_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_display_type(self: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    """A flag takes no value: no type in the help (typer shows `<bool>` for every flag)."""
    return None if self.is_flag and self.metavar is None else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_display_type  # type: ignore[method-assign,assignment]


@contextmanager
def operator_errors() -> Iterator[None]:
    """Print a PlatformError as one line on stderr and exit 1; let everything else raise."""
    try:
        yield
    except PlatformError as e:
        err_console.print(f"[bold red]error[/] {e.operator_line()}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
