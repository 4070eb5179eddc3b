"""The run options reach the jobs as pinned: the oracle's seed, scale and mode (P3), WSP's gate and mode (P6)."""

from __future__ import annotations

import pytest

from controller.phases.p03_oracle_ready import oracle_jobs
from controller.phases.p06_streaming_active import wsp_argv
from controller.phases.run_options import apply_pinned, with_defaults
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.wsp.envelope import OutputPlan

RUN = "platform_20261123T120000Z"


def test_the_oracle_jobs_get_the_pinned_seed_scale_and_the_outputs_of_the_mode() -> None:
    registry = load_registry("local_parity")
    jobs = dict(oracle_jobs(registry, RUN, {"seed": 7, "scale": 5000, "mode": "baseline", "gate": 20}))
    seed = jobs["oracle_seed"]
    assert seed[seed.index("--seed") + 1] == "7" and seed[seed.index("--scale") + 1] == "5000"
    for component in ("oracle_stream_sort", "oracle_checker"):
        argv = jobs[component]
        selected = {argv[i + 1] for i, a in enumerate(argv) if a == "--output-id"}
        assert set(OutputPlan(registry, "baseline").outputs) <= selected  # what WSP will stream
        assert set(registry.names("ORACLE_REQUIRED_OUTPUT_IDS")) <= selected  # what SR's READY needs
    fraud = dict(oracle_jobs(registry, RUN, {"gate": 20}))
    assert "--output-id" not in fraud["oracle_stream_sort"]  # the default set is the required set
    assert fraud["oracle_seed"][fraud["oracle_seed"].index("--scale") + 1] == "2000"


def test_wsp_streams_the_pinned_gate_in_the_pinned_mode() -> None:
    argv = wsp_argv(RUN, apply_pinned({"gate": None, "mode": None}, {"gate_events_per_output": 20000, "traffic_mode": "baseline"}))
    assert argv[argv.index("--max-events-per-output") + 1] == "20000" and argv[argv.index("--mode") + 1] == "baseline"


def test_a_given_option_that_differs_from_the_pinned_one_names_both() -> None:
    with pytest.raises(PlatformError) as info:
        apply_pinned({"gate": 20, "seed": 42}, {"gate_events_per_output": 20000, "engine_seed": 42})
    assert info.value.code == "CONFIG_DRIFT" and "--gate: pinned 20000, given 20" in info.value.message
    assert "--seed" not in info.value.message and info.value.next_step


def test_defaults_follow_the_gate() -> None:
    assert with_defaults({"gate": 20})["scale"] == 2000 and with_defaults({})["scale"] == 20000
    assert with_defaults({})["seed"] == 42 and with_defaults({"seed": 0})["seed"] == 0 and with_defaults({})["mode"] == "fraud"
