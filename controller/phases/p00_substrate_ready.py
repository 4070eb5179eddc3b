"""P0 SUBSTRATE_READY (local_parity): the substrate checked live, and its snapshot as evidence.

Gate: every registry bucket exists and takes a write (probe object), every topic/stream exists
with its registry partition count, PostgreSQL answers with every migration applied, and the
secrets are at their SSM paths, and every store holds the substrate epoch (recorded in the
snapshot: every later phase of the run checks it, `substrate_intact`).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.phases.base import Check, Phase, PhaseOutcome, RunContext, substrate_settings
from controller.substrate.bootstrap import BUCKET_KEYS, read_secret
from controller.substrate.epoch import read_marks, require_epoch
from controller.substrate.state import read_state, state_dir
from runtime.bus.factory import admin as bus_admin
from runtime.contracts.ids import utc_iso
from runtime.db.migrate import applied_migrations, migration_files
from runtime.db.postgres import connect, redact
from runtime.errors import PlatformError
from runtime.settings import Settings


def _bucket_rows(settings: Settings) -> list[dict[str, Any]]:
    client = settings.s3()
    probe_key = settings.registry.text("S3_BUCKET_WRITE_PROBE_KEY")
    rows = []
    for key in BUCKET_KEYS:
        name = settings.registry.text(key)
        exists = writable = False
        try:
            client.head_bucket(Bucket=name)
            exists = True
            client.put_object(Bucket=name, Key=probe_key, Body=json.dumps({"written_at_utc": utc_iso()}).encode())
            writable = True
        except (ClientError, BotoCoreError):
            pass
        rows.append({"handle": key, "name": name, "exists": exists, "writable": writable})
    return rows


def _topic_rows(settings: Settings) -> list[dict[str, Any]]:
    admin = bus_admin(settings)
    rows = []
    for topic in settings.registry.topics():
        try:
            found = admin.partitions(topic.name)
        except PlatformError:
            found = None
        rows.append({"handle": topic.key, "name": topic.name, "partitions_expected": topic.partitions, "partitions_found": found})
    return rows


def _database(settings: Settings) -> dict[str, Any]:
    if not settings.db_dsn:
        return {"reachable": False, "server_version": None, "migrations_applied": []}
    try:
        with connect(settings.db_dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return {"reachable": True, "server_version": str(row[0]) if row else None,
                "migrations_applied": applied_migrations(settings.db_dsn)}
    except PlatformError:
        return {"reachable": False, "server_version": None, "migrations_applied": []}


def secret_keys(settings: Settings) -> list[str]:
    """The SSM handles this environment and bus must have."""
    keys = ["SSM_IG_API_KEY_PATH", "SSM_DB_DSN_PATH", "SSM_DB_RUNTIME_PASSWORD_PATH"]
    if settings.bus == "kafka":
        keys.append("SSM_CONFLUENT_BOOTSTRAP_PATH")
    return keys


def substrate_snapshot(settings: Settings) -> tuple[dict[str, Any], list[Check]]:
    """Inspect the live substrate; return the snapshot fields and the gate checks."""
    buckets = _bucket_rows(settings)
    topics = _topic_rows(settings)
    database = _database(settings)
    secrets = []
    for key in secret_keys(settings):
        try:
            present = read_secret(settings, key) is not None
        except PlatformError:
            present = False
        secrets.append({"handle": key, "path": settings.registry.text(key), "present": present})
    expected_migrations = [p.name for p in migration_files()]
    checks = [
        Check("buckets_writable", all(b["writable"] for b in buckets),
              ", ".join(f"{b['name']} not writable" for b in buckets if not b["writable"]) or None),
        Check("topics_present", all(t["partitions_found"] == t["partitions_expected"] for t in topics),
              ", ".join(f"{t['name']}: expected {t['partitions_expected']} partitions, found {t['partitions_found']}"
                        for t in topics if t["partitions_found"] != t["partitions_expected"]) or None),
        Check("database_reachable", bool(database["reachable"]), None if database["reachable"] else "PostgreSQL does not answer"),
        Check("migrations_applied", database["migrations_applied"] == expected_migrations,
              None if database["migrations_applied"] == expected_migrations
              else f"applied {len(database['migrations_applied'])} of {len(expected_migrations)}"),
        Check("secrets_present", all(s["present"] for s in secrets),
              ", ".join(str(s["path"]) for s in secrets if not s["present"]) or None),
    ]
    fields = {
        "environment": settings.environment,
        "bus": settings.bus,
        "endpoints": {"object_store": settings.object_store_endpoint, "kafka_bootstrap": settings.kafka_bootstrap,
                      "db": redact(settings.db_dsn)},
        "buckets": buckets,
        "topics": topics,
        "database": database,
        "secrets": secrets,
        "checks": [c.to_dict() for c in checks],
        "all_ok": all(c.ok for c in checks),
    }
    return fields, checks


class SubstrateReady(Phase):
    """P0 for local_parity."""

    phase_id = "P0"
    name = "SUBSTRATE_READY"

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Check the live substrate and write its snapshot."""
        settings = substrate_settings(ctx)
        fields, checks = substrate_snapshot(settings)
        processes = ctx.options.get("processes", [])
        document = {**ctx.writer.base_fields("P0", ["S3_BUCKET_WRITE_PROBE_KEY", *BUCKET_KEYS,
                                                    *[t.key for t in ctx.registry.topics()], *secret_keys(settings)]),
                    **fields, "processes": processes}
        state = read_state(state_dir(ctx.registry, ctx.options.get("base")))
        epoch = state.epoch if state is not None and state.epoch else None
        lost = read_marks(settings).lost(epoch) if epoch else ["the substrate state (no epoch: run `fp substrate up`)"]
        document["substrate_epoch"] = epoch
        written = ctx.writer.write("SUBSTRATE_SNAPSHOT_PATH_PATTERN", document)
        return PhaseOutcome([written], [*checks, Check("substrate_epoch_intact", not lost,
                                                      f"epoch {epoch} missing from: {', '.join(lost)}" if lost else epoch)])


def substrate_intact(ctx: RunContext) -> None:
    """The precondition of every local phase after P0: the stores still hold the epoch P0 recorded
    for this run (a restarted in-memory server lost the run's data: SUBSTRATE_STATE_LOST)."""
    path = ctx.folders.evidence_dir(ctx.platform_run_id) / ctx.writer.relative_path("SUBSTRATE_SNAPSHOT_PATH_PATTERN")
    try:
        epoch = json.loads(path.read_text(encoding="utf-8")).get("substrate_epoch")
    except (OSError, ValueError):
        return  # no P0 snapshot: the phase machine refuses the run with its own code
    if epoch:  # a store that does not answer at all fails with its own code (OBJECT_STORE_UNAVAILABLE, ...)
        require_epoch(substrate_settings(ctx), epoch, whose=f"run {ctx.platform_run_id}")
