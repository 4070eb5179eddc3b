"""`df|al|dla run --replay-group <name>`: a second consumer group that re-reads the run's topics
into the same idempotent tables; its group id, its health folder, and its refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from runtime.components import consumer_group_id, replay_consumer_group_id
from runtime.contracts.registry import load_registry
from runtime.decision.df.cli import app as df_app
from runtime.errors import PlatformError
from runtime.settings import load_settings
from runtime.worker.cli import ofp_app
from runtime.worker.run import ReplayNotSupported, health_targets, worker_group
from tests.support.events import random_run_id

REG = load_registry("local_parity")
runner = CliRunner()


def test_a_replay_group_is_its_own_group_of_the_run_named_by_the_registry_pattern() -> None:
    run_id = random_run_id()
    live = consumer_group_id(REG, "df", run_id)
    replay = replay_consumer_group_id(REG, "df", run_id, "r1")
    assert replay == f"fp-df-{run_id}-replay-r1" and replay != live and replay.startswith(live)


@pytest.mark.parametrize("name", ["", "R1", "r-1", "x" * 33, "_r"])
def test_a_malformed_replay_group_name_is_refused(name: str) -> None:
    with pytest.raises(PlatformError) as e:
        replay_consumer_group_id(REG, "df", random_run_id(), name)
    assert e.value.code == "REPLAY_GROUP_INVALID"


def test_only_the_idempotent_lane_workers_may_replay(moto_endpoint: str) -> None:
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    run_id = random_run_id()
    assert [worker_group(settings, c, run_id, "r1").endswith("-replay-r1") for c in ("df", "al", "dla")] == [True] * 3
    with pytest.raises(ReplayNotSupported):
        worker_group(settings, "ofp", run_id, "r1")


def test_the_cli_refuses_a_replay_of_an_rtdl_store_before_any_connection() -> None:
    r = runner.invoke(ofp_app, ["run", "--platform-run-id", random_run_id(), "--replay-group", "r1"],
                      env={"FP_ENV": "local_parity"})
    assert r.exit_code == 1 and "REPLAY_NOT_SUPPORTED" in r.output
    r = runner.invoke(df_app, ["run", "--platform-run-id", random_run_id(), "--replay-group", "Bad-Name"],
                      env={"FP_ENV": "local_parity"})
    assert r.exit_code == 1 and "REPLAY_GROUP_INVALID" in r.output


def test_a_replay_writes_its_health_beside_the_live_workers_never_over_it(moto_endpoint: str) -> None:
    settings = load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint})
    run_id = random_run_id()
    [(_, live)] = health_targets(settings, "df", run_id, {})
    [(_, replay)] = health_targets(settings, "df", run_id, {}, replay_group="r1")
    assert live == f"evidence/runs/{run_id}/decision_fabric/health/last_health.json"
    assert replay == f"evidence/runs/{run_id}/decision_fabric/replay_r1/health/last_health.json"
