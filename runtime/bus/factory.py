"""Picks the bus adapter from `settings.bus` (kafka | kinesis); callers only see the port.

Endpoints come from settings: the Kafka bootstrap, or the S3-API endpoint that also serves Kinesis
locally (moto) and is unset against real AWS. No code path depends on the environment's name.
"""

from __future__ import annotations

from runtime.bus.port import BusAdmin, Publisher, RunScopedConsumer
from runtime.errors import PlatformError
from runtime.settings import Settings


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise PlatformError(
            "the Kafka bus is selected but no bootstrap address is set",
            code="BUS_CONFIG_MISSING",
            next_step="set FP_KAFKA_BOOTSTRAP (host:port) or choose FP_BUS=kinesis",
        )
    return settings.kafka_bootstrap


def _kinesis_client(settings: Settings) -> object:
    from runtime.bus.kinesis import kinesis_client

    return kinesis_client(settings.object_store_endpoint, settings.aws_region)


def publisher(settings: Settings) -> Publisher:
    """The publisher of the configured bus."""
    if settings.bus == "kafka":
        from runtime.bus.kafka import KafkaPublisher

        return KafkaPublisher(_bootstrap(settings))
    from runtime.bus.kinesis import KinesisPublisher

    return KinesisPublisher(_kinesis_client(settings))


def consumer(
    settings: Settings,
    topic_names: list[str],
    group: str,
    required_platform_run_id: str | None = None,
    *,
    dsn: str | None = None,
    prompt: bool = True,
) -> RunScopedConsumer:
    """A run-scoped consumer of `topic_names` for consumer group `group`.

    `prompt=False` is for a consumer nothing waits on (it may see a record a fraction of a second
    later): on Kafka the broker then holds its idle fetches longer, which costs the broker far less
    (runtime/bus/kafka.py RELAXED_FETCH_WAIT_MS); Kinesis reads every shard at its fixed interval.
    On Kinesis the group is the checkpoint owner in PostgreSQL (`dsn`, default settings.db_dsn).
    `required_platform_run_id=None` reads every run: the caller then filters by run itself (and
    commits what it skips), as inspection tools do; pin the run whenever one is known.
    """
    if settings.bus == "kafka":
        from runtime.bus.kafka import KafkaBusConsumer

        return KafkaBusConsumer(_bootstrap(settings), topic_names, group, required_platform_run_id, prompt=prompt)
    from runtime.bus.kinesis import KinesisBusConsumer

    checkpoint_dsn = dsn or settings.db_dsn
    if not checkpoint_dsn:
        raise PlatformError(
            "the Kinesis consumer keeps its checkpoints in PostgreSQL but no DSN is set",
            code="DB_DSN_MISSING",
            next_step="set FP_DB_DSN",
        )
    return KinesisBusConsumer(_kinesis_client(settings), checkpoint_dsn, topic_names, group, required_platform_run_id)


def admin(settings: Settings) -> BusAdmin:
    """The topic/stream admin of the configured bus."""
    if settings.bus == "kafka":
        from runtime.bus.kafka import KafkaAdmin

        return KafkaAdmin(_bootstrap(settings))
    from runtime.bus.kinesis import KinesisAdmin

    return KinesisAdmin(_kinesis_client(settings))
