"""`python -m runtime wsp run`: stream the pinned run's stream views to IG once READY is found.

Thin: read the WSP settings (runtime.wsp.settings) and knobs, build the control-topic consumer (runtime.bus.factory) and the
checkpoint, call `run_wsp`, print progress lines; a PlatformError is one line and exit 1.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from runtime.errors import PlatformError

app = typer.Typer(help="World Streamer Producer: READY -> stream views -> IG.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """World Streamer Producer commands."""


@app.command("run")
def run(
    platform_run_id: Annotated[str | None, typer.Option(help="the pinned run (default: $REQUIRED_PLATFORM_RUN_ID)")] = None,
    mode: Annotated[str, typer.Option(help="fraud (default), baseline or dual")] = "fraud",
    max_events_per_output: Annotated[int | None, typer.Option(
        help="cap per output (default: $WSP_MAX_EVENTS_PER_OUTPUT, else the whole view)", min=1)] = None,
    speedup: Annotated[float | None, typer.Option(help="event-time speedup factor; omit for as fast as possible", min=0.001)] = None,
    ready_timeout: Annotated[float, typer.Option(help="seconds to wait for READY")] = 120.0,
    restream: Annotated[bool, typer.Option(help="stream again a READY already completed (IG dedupe absorbs it)")] = False,
) -> None:
    """Find READY for the run and stream traffic + context outputs to IG."""
    from rich.console import Console

    from runtime.components import consumer_group_id
    from runtime.db.migrate import require_migrations
    from runtime.db.postgres import Database
    from runtime.settings import load_settings
    from runtime.wsp.checkpoint import WspCheckpoint
    from runtime.wsp.envelope import OutputPlan
    from runtime.wsp.flow import flow_gate
    from runtime.wsp.run import WspOptions, run_wsp
    from runtime.wsp.settings import load_wsp_settings

    console = Console(stderr=True)
    try:
        base = load_settings()
        reg = base.registry
        OutputPlan(reg, mode)  # WSP_MODE_UNKNOWN before anything connects
        wsp = load_wsp_settings(base=base, platform_run_id=platform_run_id)
        settings, run_id = wsp.base, wsp.platform_run_id
        cap = max_events_per_output or wsp.max_events_per_output
        require_migrations(wsp.db_dsn)
        try:
            factory = importlib.import_module("runtime.bus.factory")
        except ImportError as e:
            raise PlatformError("no bus adapter factory (runtime.bus.factory) is installed", code="BUS_ADAPTER_MISSING",
                                next_step="install the bus adapters") from e
        consumer = factory.consumer(settings, [reg.topic("FP_BUS_CONTROL_V1").name],
                                    group=consumer_group_id(reg, "wsp", run_id), required_platform_run_id=run_id)
        lags = Database(wsp.db_dsn, name="WSP flow control", max_size=1)
        try:
            def say(line: str) -> None:
                console.print(line, highlight=False)
            result = run_wsp(settings, run_id, consumer, ig_base_url=wsp.ig_base_url, api_key=wsp.api_key,
                             checkpoint=WspCheckpoint(wsp.db_dsn),
                             options=WspOptions(mode=mode, max_events_per_output=cap, speedup=speedup,
                                                ready_timeout_s=ready_timeout, restream=restream),
                             progress=say, flow=flow_gate(settings, run_id, lags, say))
        finally:
            consumer.close()
            lags.close()
    except PlatformError as e:
        console.print(f"[bold red]error[/] {e.operator_line()}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"WSP {result.status} " + " ".join(f"{s.output_id}={s.emitted}" for s in result.per_output), highlight=False)
