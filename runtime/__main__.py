"""`python -m runtime <component> ...`: the single image's entrypoint dispatcher.

The CLI words and their typer apps come from the component map (runtime/components.py);
importing is lazy so one component's dependencies never slow another's start.
"""

from __future__ import annotations

import importlib
import sys

from runtime.components import cli_apps
from runtime.garbage import bulk_thresholds

#: CLI word -> "module:attribute" of its typer app, from the component map.
COMPONENTS: dict[str, str] = cli_apps()


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the component named by the first argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m runtime <component> [args...]\n\ncomponents:")
        for name in sorted(COMPONENTS):
            print(f"  {name}")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMPONENTS:
        print(f"error UNKNOWN_COMPONENT: {name!r}; known: {', '.join(sorted(COMPONENTS)) or '(none)'}", file=sys.stderr)
        return 2
    importlib.import_module("runtime.cli_errors")  # the shared CLI boundary (error lines, flags in --help)
    module_name, attribute = COMPONENTS[name].split(":")
    target = getattr(importlib.import_module(module_name), attribute)
    bulk_thresholds()  # after the component's imports: they are frozen, never traversed again
    result = target(rest, prog_name=f"runtime {name}", standalone_mode=True) if hasattr(target, "registered_commands") else target(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
