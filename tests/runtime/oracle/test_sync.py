"""Sync is incremental and resumable: unchanged objects are skipped, missing or altered ones re-sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.contracts.registry import load_registry
from tests.runtime.oracle.helpers import client, invoke, oracle_bucket, snapshot

REG = load_registry("local_parity")


def test_resumed_sync_uploads_only_what_is_missing_or_different(oracle_settings, run_id: str, engine_root: Path) -> None:
    r = invoke("sync", "--root", str(engine_root), "--platform-run-id", run_id, "--no-evidence")
    assert r.exit_code == 0, r.output
    prefix = REG.render("ORACLE_ENGINE_RUN_PREFIX_PATTERN", platform_run_id=run_id)
    keys = sorted(snapshot(oracle_settings, prefix))
    files = sorted(p for p in engine_root.rglob("*") if p.is_file())
    assert len(keys) == len(files)
    s3, bucket = client(oracle_settings), oracle_bucket(oracle_settings)
    s3.delete_object(Bucket=bucket, Key=keys[0])  # as if interrupted before this object
    same_size = s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read()
    s3.put_object(Bucket=bucket, Key=keys[1], Body=bytes(len(same_size)))  # same size, other bytes, no recorded sha256
    r = invoke("sync", "--root", str(engine_root), "--platform-run-id", run_id, "--no-evidence")
    assert r.exit_code == 0 and f"2 uploaded, {len(files) - 2} unchanged" in r.output
    assert s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read() == same_size
    r = invoke("sync", "--root", str(engine_root), "--platform-run-id", run_id, "--no-evidence")
    assert f"0 uploaded, {len(files)} unchanged" in r.output


def test_cli_generate_is_deterministic_and_registered_as_a_runtime_component(tmp_path: Path) -> None:
    args = ["--scale", "200", "--seed", "3", "--files-per-output", "2", "--days", "1"]
    assert invoke("generate", "--root", str(tmp_path / "a"), *args).exit_code == 0
    assert invoke("generate", "--root", str(tmp_path / "b"), *args).exit_code == 0
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert a == b and len(a) == 21
    r = invoke("generate", "--root", str(tmp_path / "a"), *args)
    assert "already present" in r.output
    proc = subprocess.run([sys.executable, "-m", "runtime", "oracle", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    for command in ("generate", "sync", "pack", "check-strict", "stream-sort", "check"):
        assert command in proc.stdout
