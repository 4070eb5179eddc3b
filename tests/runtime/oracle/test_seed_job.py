"""`oracle seed`: P3.A as one job (generate or reuse, sync, seal), with the engine run's location
chosen the way a job needs it: --root, the engine cache the environment names, or scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.contracts.registry import load_registry
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import read_marker
from runtime.oracle.lane import engine_cache_root
from runtime.oracle.layout import OracleLayout
from tests.runtime.oracle.helpers import invoke, read_json, snapshot

REG = load_registry("local_parity")
SMALL_ARGS = ("--seed", "3", "--scale", "300")


def _snapshot_key(run_id: str) -> str:
    return REG.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=run_id) + REG.text("SEED_SNAPSHOT_PATH_PATTERN")


def test_seed_generates_into_the_engine_cache_syncs_and_seals(oracle_settings, run_id: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REG.text("ENVVAR_ORACLE_ENGINE_CACHE"), str(tmp_path / "cache"))
    r = invoke("seed", "--platform-run-id", run_id, *SMALL_ARGS)
    assert r.exit_code == 0, r.output
    cached = engine_cache_root(tmp_path / "cache", EngineConfig(seed=3, scale=300))
    assert read_marker(cached) is not None and "generated" in r.output and "sealed" in r.output
    layout = OracleLayout(REG, run_id)
    assert read_json(oracle_settings, layout.seal_key)["manifest_sha256"]
    snap = read_json(oracle_settings, _snapshot_key(run_id), bucket=REG.text("S3_EVIDENCE_BUCKET"))
    assert snap["platform_run_id"] == run_id and snap["objects"] > 0
    again = invoke("seed", "--platform-run-id", run_id, *SMALL_ARGS)
    assert again.exit_code == 0 and "reused" in again.output and "already sealed" in again.output


def test_seed_without_a_cache_uses_a_scratch_folder_and_leaves_nothing_behind(oracle_settings, run_id: str,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REG.text("ENVVAR_ORACLE_ENGINE_CACHE"), raising=False)
    r = invoke("seed", "--platform-run-id", run_id, *SMALL_ARGS, "--no-evidence")
    assert r.exit_code == 0, r.output
    scratch = next(part for part in r.output.split("(")[1:] if "fp-engine-" in part).split(")")[0]
    assert not Path(scratch).exists()
    assert snapshot(oracle_settings, OracleLayout(REG, run_id).seal_key)


def test_seed_against_a_pack_sealed_from_another_engine_run_is_manifest_mismatch(oracle_settings, run_id: str,
                                                                                 tmp_path: Path) -> None:
    assert invoke("seed", "--platform-run-id", run_id, *SMALL_ARGS, "--root", str(tmp_path / "a")).exit_code == 0
    before = snapshot(oracle_settings, OracleLayout(REG, run_id).engine_prefix)
    r = invoke("seed", "--platform-run-id", run_id, "--seed", "4", "--scale", "300", "--root", str(tmp_path / "b"))
    assert r.exit_code == 1 and "MANIFEST_MISMATCH" in r.output and "nothing was uploaded" in r.output
    assert snapshot(oracle_settings, OracleLayout(REG, run_id).engine_prefix) == before  # no engine object replaced


@pytest.mark.parametrize("args,code", [
    (("--platform-run-id", "run-1", *SMALL_ARGS), "PLATFORM_RUN_ID_INVALID"),
    (("--platform-run-id", "platform_20261123T120000Z", "--seed", "-1", "--scale", "300"), "ENGINE_CONFIG_INVALID"),
    (("--platform-run-id", "platform_20261123T120000Z", "--seed", "1", "--scale", "0"), "ENGINE_CONFIG_INVALID"),
])
def test_seed_refuses_bad_input_before_writing_anything(oracle_settings, args: tuple[str, ...], code: str) -> None:
    r = invoke("seed", *args)
    assert r.exit_code == 1 and code in r.output
    assert not snapshot(oracle_settings, OracleLayout(REG, "platform_20261123T120000Z").engine_prefix)


def test_seed_explains_itself() -> None:
    from typer.testing import CliRunner

    from runtime.oracle.cli import app

    r = CliRunner().invoke(app, ["seed", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "--platform-run-id" in r.output and "engine cache" in r.output
