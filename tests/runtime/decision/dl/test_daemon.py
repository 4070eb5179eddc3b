"""DL as a periodic daemon: health measured from durable state and the workers' health files, posture
changes appended (and continued after a restart), a stopped OFP degrades the posture and its return
restores it one level at a time, a failed tick writes RED health and records nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from runtime.contracts.ids import utc_iso, utc_now
from runtime.db.postgres import Database
from runtime.decision.df.store import Upstream, current_posture
from runtime.decision.dl.daemon import DegradeDaemon, HealthSources
from runtime.decision.dl.domain import Limits
from runtime.decision.dl.store import posture_history
from runtime.errors import BusUnavailable, DatabaseUnavailable
from tests.runtime.decision.support import assert_truth_tables_refuse_change
from tests.runtime.worker.contract import MemoryHealth
from tests.support.events import random_run_id

TOPIC = "fp.bus.traffic.fraud.v1"
T0 = 1_767_571_200_000_000
SECOND = 1_000_000


class Lane:
    """One run's staged health: IG's admissions, the RTDL groups' positions and watermarks, health files."""

    def __init__(self, db: Database):
        self.db = db
        self.run = random_run_id()
        self.upstreams = [Upstream(c, f"fp-{c}-{self.run}", (TOPIC,)) for c in ("ofp", "ieg", "csfb")]
        self.health: dict[str, dict[str, Any]] = {}
        self.bus_up = True
        self.admitted = 0

    def admit(self, offset: int, *, ago_s: float = 0.0) -> None:
        """IG admitted the record at `offset` of the traffic partition `ago_s` seconds ago."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref,"
                         " claimed_at) VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s, now() - make_interval(secs => %s))",
                         (self.run, f"{offset:032x}", json.dumps({"topic": TOPIC, "partition": 0, "offset": offset}), ago_s))

    def read(self, component: str, offset: int, seconds: float, *, written_ago_s: float = 0.0) -> None:
        """`component` made durable up to `offset`, its watermark at T0 + seconds, health written that long ago."""
        group = f"fp-{component}-{self.run}"
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES (%s, %s, '0', %s)"
                         " ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET position = excluded.position",
                         (group, TOPIC, offset))
            conn.execute("INSERT INTO rtdl_watermarks (platform_run_id, component, topic, partition, max_event_ts_micros,"
                         " late_events) VALUES (%s, %s, %s, '0', %s, 0) ON CONFLICT (platform_run_id, component, topic, partition)"
                         " DO UPDATE SET max_event_ts_micros = excluded.max_event_ts_micros",
                         (self.run, component, TOPIC, T0 + int(seconds * SECOND)))
            if component == "csfb":
                conn.execute("INSERT INTO rtdl_counters (platform_run_id, component, topic, partition, counter, value)"
                             " VALUES (%s, 'csfb', %s, '0', 'join_hits', 10) ON CONFLICT DO NOTHING", (self.run, TOPIC))
        self.health[component] = {"written_at_utc": utc_iso(utc_now() - timedelta(seconds=written_ago_s)), "lag_total": 0}

    def bus_probe(self) -> None:
        if not self.bus_up:
            raise BusUnavailable("the test took the bus away")

    def sources(self) -> HealthSources:
        return HealthSources(self.upstreams, self.health.get, self.bus_probe)

    def daemon(self, health: MemoryHealth | None = None, transaction: Any = None) -> DegradeDaemon:
        base = {"platform_run_id": self.run, "written_at_utc": "2026-01-01T00:00:00Z", "phase_id": "P9",
                "source_handles": ["COMPONENT_HEALTH_PATH_PATTERN"]}
        return DegradeDaemon(self.run, transaction or self.db.transaction, self.sources(), limits=Limits(recover_after=2),
                             health=health, health_base=lambda: dict(base))

    def postures(self) -> list[str]:
        with self.db.transaction() as conn:
            return [e.posture for e in posture_history(conn, self.run)]


@pytest.fixture
def lane(db: Database) -> Lane:
    staged = Lane(db)
    staged.admit(9)
    for component in ("ofp", "ieg", "csfb"):
        staged.read(component, 9, 100)
    return staged


def test_healthy_inputs_record_green_and_df_reads_it(lane: Lane) -> None:
    health = MemoryHealth()
    entry = lane.daemon(health).tick()
    assert entry is not None and (entry.seq, entry.posture, entry.reasons) == (0, "GREEN", ("FIRST_OBSERVATION",))
    with lane.db.transaction() as conn:
        assert current_posture(conn, lane.run) == "GREEN"
    doc = health.documents[-1]
    assert (doc["component"], doc["health_state"], doc["posture"]) == ("dl", "GREEN", "GREEN")
    assert doc["health_inputs"]["ofp_lag_seconds"] == 0.0 and doc["health_inputs"]["join_miss_ratio"] == 0.0


def test_a_stopped_ofp_turns_the_posture_red_at_once_and_its_return_restores_it_one_level_at_a_time(lane: Lane) -> None:
    daemon = lane.daemon()
    daemon.tick()
    # OFP stops at offset 9; IG admitted offset 10 a minute and a half ago and goes on; OFP's health file goes stale
    lane.admit(10, ago_s=90)
    lane.admit(30)
    lane.read("ofp", 9, 100, written_ago_s=60)
    lane.read("ieg", 30, 500)
    lane.read("csfb", 30, 500)
    red = daemon.tick()
    assert red is not None and red.posture == "RED"
    assert {"OFP_LAG_RED", "CONSUMER_LAG_UNKNOWN"} <= set(red.reasons)
    lane.read("ofp", 30, 500)  # OFP is back and caught up
    assert daemon.tick() is None  # one better observation is not enough (recover_after=2)
    amber = daemon.tick()
    assert amber is not None and (amber.posture, amber.previous) == ("AMBER", "RED")
    daemon.tick()
    green = daemon.tick()
    assert green is not None and green.posture == "GREEN"
    assert lane.postures() == ["GREEN", "RED", "AMBER", "GREEN"]


def test_a_streaming_run_whose_stores_trail_the_newest_admissions_by_moments_stays_green(lane: Lane) -> None:
    # a replayed stream runs event time ~1000x faster than the wall clock: OFP 2 s of event time
    # behind the front is milliseconds behind IG; what counts is how long ago IG admitted what it has not applied
    daemon = lane.daemon()
    daemon.tick()
    lane.admit(10, ago_s=0.5)
    lane.admit(11)
    lane.read("ieg", 11, 100_000)
    lane.read("csfb", 11, 100_000)
    assert daemon.tick() is None and lane.postures() == ["GREEN"]
    health = daemon.last_health
    assert health is not None and 0.4 <= (health.ofp_lag_seconds or 0) < 5 and health.ieg_lag_seconds == 0.0


def test_before_the_first_traffic_event_nothing_was_missed_and_the_first_posture_is_green(db: Database) -> None:
    staged = Lane(db)
    for component in ("ofp", "ieg"):
        staged.read(component, -1, 0)
    staged.health["csfb"] = {"written_at_utc": utc_iso(), "lag_total": 0}
    entry = staged.daemon().tick()
    assert entry is not None and (entry.posture, entry.reasons) == ("GREEN", ("FIRST_OBSERVATION",))


def test_a_restarted_dl_continues_the_stored_history(lane: Lane) -> None:
    lane.daemon().tick()
    restarted = lane.daemon()
    assert restarted.tick() is None  # same posture: nothing new
    lane.bus_up = False
    entry = restarted.tick()
    assert entry is not None and (entry.seq, entry.posture, entry.reasons) == (1, "RED", ("BUS_UNAVAILABLE",))
    assert lane.postures() == ["GREEN", "RED"]


def test_a_tick_without_the_database_writes_red_health_and_records_nothing(lane: Lane) -> None:
    @contextmanager
    def down() -> Iterator[Any]:
        raise DatabaseUnavailable("the test took the database away")
        yield

    health = MemoryHealth()
    daemon = lane.daemon(health, transaction=down)
    assert daemon.tick() is None
    assert health.documents[-1]["health_state"] == "RED" and health.documents[-1]["posture"] is None
    assert daemon.counters["dl_failed_ticks"] == 1 and lane.postures() == []


def test_the_posture_history_refuses_change_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("dl_posture_history",))


def test_the_cli_refuses_a_malformed_run_id_naming_it() -> None:
    from typer.testing import CliRunner

    from runtime.decision.dl.cli import app

    result = CliRunner().invoke(app, ["run", "--platform-run-id", "not-a-run"])
    assert result.exit_code == 1 and "RUN_UNKNOWN" in result.output


def test_join_misses_that_joined_late_do_not_count_against_the_posture(lane: Lane) -> None:
    from runtime.decision.dl.store import join_miss_ratio

    with lane.db.transaction() as conn:
        for counter, value in (("join_misses", 10), ("late_joins", 8)):
            conn.execute("INSERT INTO rtdl_counters (platform_run_id, component, topic, partition, counter, value)"
                         " VALUES (%s, 'csfb', %s, '0', %s, %s)", (lane.run, TOPIC, counter, value))
        assert join_miss_ratio(conn, lane.run) == 2 / 20  # 10 hits staged by the fixture, 10 misses, 8 resolved
    entry = lane.daemon().tick()
    assert entry is not None and entry.posture == "AMBER" and entry.reasons == ("JOIN_MISS_AMBER",)
