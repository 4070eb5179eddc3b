"""`fp substrate up|status|down`: real servers on free ports, idempotent up, down by pid."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate import local
from controller.substrate.processes import free_port, is_running
from controller.substrate.servers import durable_settings
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry
from runtime.paths import REPO_ROOT

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in a scratch folder and make sure whatever the test started is stopped."""
    monkeypatch.chdir(tmp_path)
    for name in ("FP_OBJECT_STORE_ENDPOINT", "FP_DB_DSN", "FP_KAFKA_BOOTSTRAP", "FP_BUS"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    local.down(load_registry("local_parity", REPO_ROOT / "handles.registry.yaml"), tmp_path)


def _ports() -> list[str]:
    return ["--moto-port", str(free_port()), "--pg-port", str(free_port()), "--kafka-port", str(free_port())]


def test_up_twice_is_harmless_and_down_leaves_no_process(workdir: Path) -> None:
    ports = _ports()
    first = runner.invoke(app, ["substrate", "up", *ports])
    assert first.exit_code == 0, first.output
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    pids = {p.name: p.pid for p in state.processes}
    second = runner.invoke(app, ["substrate", "up", *ports])
    assert second.exit_code == 0, second.output
    assert "already running" in second.output
    assert "0 bucket(s), 0 topic(s), 0 secret(s), 0 migration(s)" in second.output
    again = read_state(state_dir(registry))
    assert again is not None and {p.name: p.pid for p in again.processes} == pids
    assert runner.invoke(app, ["substrate", "status"]).exit_code == 0
    down = runner.invoke(app, ["substrate", "down"])
    assert down.exit_code == 0, down.output
    assert all(not is_running(p.pid, p.argv) for p in state.processes)
    assert runner.invoke(app, ["substrate", "status"]).exit_code == 1


def test_kafka_bus_starts_the_broker_and_creates_topics_with_partitions(workdir: Path) -> None:
    result = runner.invoke(app, ["substrate", "up", "--bus", "kafka", *_ports()])
    assert result.exit_code == 0, result.output
    from confluent_kafka.admin import AdminClient

    state = read_state(state_dir(load_registry("local_parity")))
    assert state is not None and state.kafka_bootstrap
    topics = AdminClient({"bootstrap.servers": state.kafka_bootstrap}).list_topics(timeout=10).topics
    for topic in load_registry("local_parity").topics():
        assert len(topics[topic.name].partitions) == topic.partitions


def test_port_already_taken_is_one_clear_error(workdir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        result = runner.invoke(app, ["substrate", "up", "--moto-port", str(taken), "--pg-port", str(free_port())])
    assert result.exit_code == 1
    assert f"PORT_TAKEN: moto: port 127.0.0.1:{taken} is already taken" in result.output
    assert read_state(state_dir(load_registry("local_parity"))) is None


def test_dsn_that_refuses_is_one_clear_error_and_starts_nothing_lasting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_DB_DSN", f"postgresql://postgres@127.0.0.1:{free_port()}/nope")
    result = runner.invoke(app, ["substrate", "up", *_ports()])
    assert result.exit_code == 1
    assert "DB_UNAVAILABLE: the DSN refuses connections" in result.output
    assert read_state(state_dir(load_registry("local_parity"))) is None


def test_s3_endpoint_that_is_down_is_one_clear_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_OBJECT_STORE_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["substrate", "up", *_ports()])
    assert result.exit_code == 1
    assert "OBJECT_STORE_UNAVAILABLE: the S3 endpoint" in result.output and "is down" in result.output


def test_external_endpoints_replace_the_embedded_servers(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        moto_endpoint: str, postgres_dsn: str,
                                                        runtime_role: tuple[str, str]) -> None:
    from runtime.db.postgres import connect
    from runtime.db.roles import ensure_runtime_role

    monkeypatch.setenv("FP_OBJECT_STORE_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("FP_DB_DSN", postgres_dsn)
    try:
        result = runner.invoke(app, ["substrate", "up", *_ports()])
        assert result.exit_code == 0, result.output
        assert "started: nothing" in result.output
        state = read_state(state_dir(load_registry("local_parity")))
        assert state is not None and state.processes == []
    finally:  # `up` gave the cluster-wide runtime role a new password: the session's tests need theirs
        with connect(postgres_dsn, autocommit=True) as conn:
            ensure_runtime_role(conn, *runtime_role)


def test_unknown_environment_and_bus_are_refused(workdir: Path) -> None:
    bad_env = runner.invoke(app, ["substrate", "up", "--env", "prod"])
    assert bad_env.exit_code == 1 and "UNKNOWN_ENV" in bad_env.output
    bad_bus = runner.invoke(app, ["substrate", "up", "--bus", "carrier-pigeon"])
    assert bad_bus.exit_code == 1 and "UNKNOWN_BUS" in bad_bus.output
    wrong = runner.invoke(app, ["substrate", "up", "--env", "dev_min"])
    assert wrong.exit_code == 1 and "WRONG_ENV" in wrong.output


def test_registry_with_unknown_key_stops_up_with_one_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.paths import registry_path

    bad = workdir / "bad.registry.yaml"
    bad.write_text(registry_path().read_text().replace("    IG_PORT: 8081\n", "    IG_PORT: 8081\n    IG_PORTX: 1\n"))
    monkeypatch.setenv("FP_HANDLES_REGISTRY", str(bad))
    result = runner.invoke(app, ["substrate", "up", *_ports()])
    assert result.exit_code == 1
    assert "HANDLES_REGISTRY_INVALID" in result.output and "unknown handle key IG_PORTX" in result.output


def test_up_gives_the_runtime_its_own_role_with_the_ssm_password_and_it_cannot_wipe_receipts(workdir: Path) -> None:
    import stat

    from psycopg.conninfo import conninfo_to_dict

    from controller.substrate.bootstrap import read_secret
    from runtime.db.postgres import Database
    from runtime.errors import AppendOnlyViolation, DatabasePermissionDenied, DatabaseUnavailable

    result = runner.invoke(app, ["substrate", "up", *_ports()])
    assert result.exit_code == 0, result.output
    registry = load_registry("local_parity")
    directory = state_dir(registry)
    state = read_state(directory)
    assert state is not None and state.db_dsn and state.db_owner_dsn
    assert stat.S_IMODE((directory / "state.json").stat().st_mode) == 0o600
    settings = local.settings_for(state, registry)
    password = read_secret(settings, "SSM_DB_RUNTIME_PASSWORD_PATH")
    runtime = conninfo_to_dict(state.db_dsn)
    assert runtime["user"] == registry.text("DB_RUNTIME_ROLE") and runtime["password"] == password
    assert read_secret(settings, "SSM_DB_DSN_PATH") == state.db_dsn and settings.db_dsn == state.db_dsn
    status = runner.invoke(app, ["substrate", "status"])
    assert password and password not in status.output and "password=***" in status.output
    with Database(state.db_dsn, name="runtime", max_size=1) as db:
        with db.transaction() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (registry.text("DB_RUNTIME_ROLE"),)
        with pytest.raises(DatabasePermissionDenied), db.connection() as conn:
            conn.execute("TRUNCATE ig_receipts")
    with Database(state.db_owner_dsn, name="owner", max_size=1) as db, pytest.raises(AppendOnlyViolation), \
            db.connection() as conn:
        conn.execute("TRUNCATE ig_receipts")
    no_password = state.db_dsn.replace(f"password={password}", "password=wrong")
    with Database(no_password, name="runtime", max_size=1, acquire_timeout_s=1) as db, \
            pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        db.ping()


def test_the_embedded_cluster_flushes_every_commit_checkpoints_rarely_and_collates_bytewise(workdir: Path) -> None:
    from runtime.db.postgres import Database

    result = runner.invoke(app, ["substrate", "up", *_ports()])
    assert result.exit_code == 0, result.output
    state = read_state(state_dir(load_registry("local_parity")))
    assert state is not None and state.db_owner_dsn
    with Database(state.db_owner_dsn, name="owner", max_size=1) as db, db.connection() as conn:
        shown = {name: str(row[0]) for name in ("fsync", "synchronous_commit", "full_page_writes", *durable_settings())
                 for row in conn.execute(f"SHOW {name}").fetchall()}
        collation = conn.execute("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()").fetchone()
        ordered = [r[0] for r in conn.execute("SELECT x FROM unnest(ARRAY['b', 'a_c', 'ab', 'B', 'é']) AS x ORDER BY x").fetchall()]
    assert shown == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", **durable_settings()}
    assert collation == ("C", "C")
    assert ordered == sorted(["b", "a_c", "ab", "B", "é"])  # as Python orders str: by code point
