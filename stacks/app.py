"""One cdktn App holding the requested stacks; imported only after configuration validated."""

from __future__ import annotations

from pathlib import Path

from cdktn import App

from stacks.config import CoreConfig, DemoConfig, LocalParityConfig
from stacks.core import CoreStack
from stacks.demo import DemoStack
from stacks.local_parity import LocalParityStack


def build_app(out_dir: Path, configs: dict[str, object]) -> App:
    """An App with one stack per entry of `configs` (stack name -> its typed config)."""
    app = App(outdir=str(out_dir), skip_validation=False)
    for name, config in configs.items():
        if isinstance(config, CoreConfig):
            CoreStack(app, name, config=config)
        elif isinstance(config, DemoConfig):
            DemoStack(app, name, config=config)
        elif isinstance(config, LocalParityConfig):
            LocalParityStack(app, name, config=config)
        else:
            raise TypeError(f"no stack for config {type(config).__name__}")
    return app
