"""Topic/stream administration for bootstrap and gates, on whichever bus the settings name.

Kafka topics are created with their partitions and retention; Kinesis streams with their shard
count (waited to ACTIVE). Both report the partition/shard count they find.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runtime.bus.port import BusAdmin, PartitionRange
from runtime.errors import BusUnavailable
from runtime.settings import Settings


class KafkaTopicAdmin(BusAdmin):
    """Admin on a Kafka-compatible broker (Tansu locally, Confluent Cloud in dev_min)."""

    def __init__(self, bootstrap: str, extra: dict[str, str] | None = None):
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self.client = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, **(extra or {})})

    def _metadata(self) -> Any:
        from confluent_kafka import KafkaException

        try:
            return self.client.list_topics(timeout=10)
        except KafkaException as e:
            raise BusUnavailable(f"Kafka at {self.bootstrap} did not answer: {e}") from e

    def partitions(self, name: str) -> int | None:
        topic = self._metadata().topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import NewTopic

        if self.partitions(name) is not None:
            return False
        config = {"retention.ms": str(retention_hours * 3_600_000)}
        futures = self.client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)])
        try:
            futures[name].result(timeout=30)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" in str(e):
                return False
            raise BusUnavailable(f"cannot create topic {name}: {e}") from e
        return True

    def ranges(self, name: str) -> list[PartitionRange]:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        count = self.partitions(name)
        if count is None:
            return []
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fp-admin-watermarks", "enable.auto.commit": False})
        try:
            out = []
            for p in range(count):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                out.append(PartitionRange(name, p, low if high > low else None, high - 1 if high > low else None))
            return out
        except KafkaException as e:
            raise BusUnavailable(f"cannot read watermarks of {name}: {e}") from e
        finally:
            consumer.close()


class KinesisStreamAdmin(BusAdmin):
    """Admin on Kinesis (the moto server locally)."""

    def __init__(self, client: Any):
        self.client = client

    def partitions(self, name: str) -> int | None:
        try:
            summary = self.client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise BusUnavailable(f"Kinesis describe {name} failed: {e}") from e
        except BotoCoreError as e:
            raise BusUnavailable(f"Kinesis endpoint unreachable: {e}") from e
        return int(summary["OpenShardCount"])

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        if self.partitions(name) is not None:
            return False
        try:
            self.client.create_stream(StreamName=name, ShardCount=partitions)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = self.client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
                if status == "ACTIVE":
                    break
                time.sleep(0.2)
            if retention_hours > 24:
                self.client.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=retention_hours)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceInUseException":
                return False
            raise BusUnavailable(f"cannot create stream {name}: {e}") from e
        except BotoCoreError as e:
            raise BusUnavailable(f"Kinesis endpoint unreachable: {e}") from e
        return True

    def ranges(self, name: str) -> list[PartitionRange]:
        try:
            shards = self.client.list_shards(StreamName=name)["Shards"]
        except (ClientError, BotoCoreError) as e:
            raise BusUnavailable(f"cannot list shards of {name}: {e}") from e
        return [
            PartitionRange(name, s["ShardId"], s["SequenceNumberRange"].get("StartingSequenceNumber"),
                           s["SequenceNumberRange"].get("EndingSequenceNumber"))
            for s in shards
        ]


def bus_admin(settings: Settings) -> BusAdmin:
    """The admin of the bus the settings select."""
    if settings.bus == "kafka":
        if not settings.kafka_bootstrap:
            raise BusUnavailable("the bus is kafka but no bootstrap is configured (FP_KAFKA_BOOTSTRAP)")
        return KafkaTopicAdmin(settings.kafka_bootstrap)
    return KinesisStreamAdmin(settings.aws_client("kinesis"))
