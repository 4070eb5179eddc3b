"""Kinesis adapter of the bus port (boto3): the local_parity bus on the moto server, seed parity.

A topic is a stream and a partition is a shard; EbRefs are `kinesis_sequence` refs. PutRecords is
batched within the service limits and per-record failures are retried a bounded number of times.
botocore's own retries are off for the data plane: a re-sent PutRecords call could write a batch
twice, so the adapter decides itself what is safe to retry. Consumers read with shard iterators
and keep their checkpoints in PostgreSQL (migration 0100), written on commit.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from runtime.bus.port import (
    MAX_RECORD_BYTES,
    BusAdmin,
    BusRecord,
    EbRef,
    OutboundRecord,
    PartitionRange,
    Publisher,
    RecordTooLarge,
    RunScopedConsumer,
)
from runtime.bus.scope import CommitTracker, RunScope, ScopeCounts
from runtime.db.postgres import Database
from runtime.errors import BusUnavailable, PlatformError, PublishAmbiguous, TopicMissing

# PutRecords service limits (AWS Kinesis Data Streams):
MAX_RECORDS_PER_CALL = 500  # at most 500 records per PutRecords call
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # at most 5 MiB per call, data + partition keys
MAX_BYTES_PER_RECORD = MAX_RECORD_BYTES  # at most 1 MiB per record, data + partition key
MAX_PARTITION_KEY_CHARS = 256  # partition key: 1 to 256 Unicode characters
# GetRecords service limits: at most 10,000 records per call, 5 calls per second per shard.
MAX_RECORDS_PER_GET = 10_000
SHARD_READ_INTERVAL_S = 0.2

DEFAULT_PUT_ATTEMPTS = 5
_THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}


def kinesis_client(endpoint: str | None, region: str, *, connect_timeout_s: float = 3.0, read_timeout_s: float = 15.0) -> Any:
    """A Kinesis client with short timeouts and botocore retries off (the adapter retries)."""
    import boto3

    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=region, config=config)


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _unreachable(stream: str, e: Exception) -> BusUnavailable:
    return BusUnavailable(f"Kinesis unreachable for stream {stream}: {e}")


def _require_stream(client: Any, stream: str) -> None:
    try:
        client.describe_stream_summary(StreamName=stream)
    except ClientError as e:
        if _error_code(e) == "ResourceNotFoundException":
            raise TopicMissing(f"Kinesis stream {stream} does not exist") from e
        raise BusUnavailable(f"describing Kinesis stream {stream} failed: {e}") from e
    except BotoCoreError as e:
        raise _unreachable(stream, e) from e


def list_shard_ids(client: Any, stream: str) -> list[str]:
    """Every shard id of `stream` (ListShards, paginated)."""
    shard_ids: list[str] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    try:
        while True:
            response = client.list_shards(**kwargs)
            shard_ids += [str(s["ShardId"]) for s in response.get("Shards", [])]
            token = response.get("NextToken")
            if not token:
                return shard_ids
            kwargs = {"NextToken": token}
    except ClientError as e:
        raise BusUnavailable(f"listing shards of {stream} failed: {e}") from e
    except BotoCoreError as e:
        raise _unreachable(stream, e) from e


def _record_size(record: OutboundRecord) -> int:
    return len(record.value) + len(record.key.encode("utf-8"))


def plan_batches(records: list[OutboundRecord]) -> list[list[int]]:
    """Indices of `records` (one stream) cut into PutRecords calls within the count and byte limits."""
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, record in enumerate(records):
        size = _record_size(record)
        if current and (len(current) >= MAX_RECORDS_PER_CALL or current_bytes + size > MAX_BYTES_PER_CALL):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


class KinesisPublisher(Publisher):
    """PutRecords in limit-respecting batches; EbRefs from the per-record results."""

    def __init__(self, client: Any, *, max_attempts: int = DEFAULT_PUT_ATTEMPTS, backoff_s: float = 0.1):
        self._client = client
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._known_streams: set[str] = set()

    def publish(self, records: list[OutboundRecord]) -> list[EbRef | Exception]:
        """Publish per stream in batches; per record its EbRef or its error."""
        results: list[EbRef | Exception | None] = [None] * len(records)
        by_stream: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            problem = _record_problem(record)
            if problem is not None:
                results[index] = problem
            else:
                by_stream.setdefault(record.topic, []).append(index)
        for stream, indices in by_stream.items():
            if stream not in self._known_streams:
                _require_stream(self._client, stream)
                self._known_streams.add(stream)
            subset = [records[i] for i in indices]
            for batch in plan_batches(subset):
                self._put_batch(stream, [indices[i] for i in batch], records, results)
        return [r if r is not None else PublishAmbiguous("no result recorded for a record") for r in results]

    def _put_batch(self, stream: str, indices: list[int], records: list[OutboundRecord], results: list[Any]) -> None:
        pending = list(indices)
        attempt = 0
        while pending:
            attempt += 1
            entries = [{"Data": records[i].value, "PartitionKey": records[i].key} for i in pending]
            try:
                response = self._client.put_records(StreamName=stream, Records=entries)
            except (EndpointConnectionError, ConnectTimeoutError) as e:
                _fill(results, pending, BusUnavailable, f"Kinesis unreachable for stream {stream}: {e}")  # nothing was sent
                return
            except (ReadTimeoutError, ConnectionClosedError) as e:
                _fill(results, pending, PublishAmbiguous, f"PutRecords to {stream} sent, no answer: {e}")
                return
            except ClientError as e:
                code = _error_code(e)
                if code == "ResourceNotFoundException":
                    _fill(results, pending, TopicMissing, f"Kinesis stream {stream} does not exist")
                    return
                if code in _THROTTLED and attempt < self.max_attempts:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if status >= 500:
                    _fill(results, pending, PublishAmbiguous, f"PutRecords to {stream} failed server-side ({code}): outcome unknown")
                else:
                    _fill(results, pending, BusUnavailable, f"PutRecords to {stream} refused ({code}): {e}")
                return
            except BotoCoreError as e:
                _fill(results, pending, PublishAmbiguous, f"PutRecords to {stream} failed in transport: {e}")
                return
            retry: list[int] = []
            last_codes: dict[int, str] = {}
            for index, entry in zip(pending, response.get("Records", []), strict=False):
                if "SequenceNumber" in entry and not entry.get("ErrorCode"):
                    results[index] = EbRef("kinesis_sequence", stream, str(entry["ShardId"]), str(entry["SequenceNumber"]))
                else:
                    retry.append(index)
                    last_codes[index] = str(entry.get("ErrorCode") or "missing result")
            if len(response.get("Records", [])) < len(pending):
                retry.extend(pending[len(response.get("Records", [])):])
            if retry and attempt >= self.max_attempts:
                for index in retry:
                    code = last_codes.get(index, "missing result")
                    if code in _THROTTLED:  # a throttled record was not written: safe to retry later
                        results[index] = BusUnavailable(f"record to {stream} still throttled after {attempt} attempts")
                    else:
                        results[index] = PublishAmbiguous(f"record to {stream} failed {attempt} times ({code})")
                return
            if retry:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            pending = retry

    def close(self) -> None:
        """Nothing is buffered between calls."""


def _record_problem(record: OutboundRecord) -> Exception | None:
    size = _record_size(record)
    if size > MAX_BYTES_PER_RECORD:
        return RecordTooLarge(f"record of {size} bytes for {record.topic} is over {MAX_BYTES_PER_RECORD} bytes")
    if not 1 <= len(record.key) <= MAX_PARTITION_KEY_CHARS:
        return PlatformError(
            f"partition key of {len(record.key)} characters for {record.topic}; Kinesis takes 1 to {MAX_PARTITION_KEY_CHARS}",
            code="RECORD_KEY_INVALID",
            next_step="use a non-empty partition key of at most 256 characters",
        )
    return None


def _fill(results: list[Any], indices: list[int], error: type[PlatformError], message: str) -> None:
    for index in indices:
        results[index] = error(message)


class KinesisCheckpoints:
    """The consumer's checkpoints in PostgreSQL (table bus_kinesis_checkpoints)."""

    def __init__(self, dsn: str, consumer_name: str):
        self.consumer_name = consumer_name
        self._db = Database(dsn, name="Kinesis checkpoint store", max_size=1)
        self._db.ping()  # an unreachable database fails the consumer at construction, as before

    def load(self, stream: str) -> dict[str, str]:
        """shard_id -> last checkpointed sequence number of `stream`."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT shard_id, sequence_number::text FROM bus_kinesis_checkpoints WHERE consumer_name = %s AND stream = %s",
                (self.consumer_name, stream),
            ).fetchall()
        return {str(shard): str(seq) for shard, seq in rows}

    def save(self, stream: str, shard_id: str, sequence_number: int) -> None:
        """Move the checkpoint forward (never back)."""
        with self._db.connection() as conn:
            conn.execute(
                "INSERT INTO bus_kinesis_checkpoints (consumer_name, stream, shard_id, sequence_number)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_name, stream, shard_id) DO UPDATE SET"
                " sequence_number = GREATEST(bus_kinesis_checkpoints.sequence_number, EXCLUDED.sequence_number),"
                " updated_at = now()",
                (self.consumer_name, stream, shard_id, sequence_number),
            )

    def close(self) -> None:
        """Release the connection."""
        self._db.close()


class KinesisBusConsumer(RunScopedConsumer):
    """Reads every shard of its streams; resumes after its Postgres checkpoints; run-scoped."""

    def __init__(self, client: Any, dsn: str, streams: list[str], consumer_name: str, required_platform_run_id: str | None):
        self._client = client
        self.streams = list(streams)
        self.scope = RunScope(required_platform_run_id)
        self._tracker = CommitTracker()
        for stream in self.streams:
            _require_stream(client, stream)
        self._checkpoints = KinesisCheckpoints(dsn, consumer_name)
        self._iterators: dict[tuple[str, str], str | None] = {}
        self._last_read: dict[tuple[str, str], str] = {}
        for stream in self.streams:
            saved = self._checkpoints.load(stream)
            for shard_id in list_shard_ids(client, stream):
                self._iterators[(stream, shard_id)] = None
                if shard_id in saved:
                    self._last_read[(stream, shard_id)] = saved[shard_id]

    @property
    def counts(self) -> ScopeCounts:
        """Delivered and skipped counts (skipped records are checkpointed, never re-read)."""
        return self.scope.counts

    def _iterator(self, key: tuple[str, str]) -> str | None:
        current = self._iterators.get(key)
        if current is not None:
            return current
        stream, shard_id = key
        kwargs: dict[str, Any] = {"StreamName": stream, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
        if key in self._last_read:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=self._last_read[key])
        try:
            iterator = self._client.get_shard_iterator(**kwargs)["ShardIterator"]
        except ClientError as e:
            if _error_code(e) == "ResourceNotFoundException":
                raise TopicMissing(f"Kinesis stream {stream} does not exist") from e
            raise BusUnavailable(f"shard iterator for {stream}/{shard_id} failed: {e}") from e
        except BotoCoreError as e:
            raise _unreachable(stream, e) from e
        self._iterators[key] = iterator
        return str(iterator)

    def poll(self, max_records: int, timeout_s: float) -> list[BusRecord]:
        """Up to `max_records` records of the pinned run, reading the shards in turn."""
        deadline = time.monotonic() + timeout_s
        out: list[BusRecord] = []
        while len(out) < max_records and time.monotonic() < deadline:
            read_any = False
            for key in list(self._iterators):
                if len(out) >= max_records:
                    break
                iterator = self._iterator(key)
                if iterator is None:
                    continue
                response = self._get_records(key, iterator, min(MAX_RECORDS_PER_GET, max_records - len(out)))
                if response is None:
                    continue
                self._iterators[key] = response.get("NextShardIterator")
                for entry in response.get("Records", []):
                    read_any = True
                    sequence = str(entry["SequenceNumber"])
                    self._last_read[key] = sequence
                    value = bytes(entry["Data"])
                    admitted, document = self.scope.admit(value)
                    if admitted:
                        self._tracker.handed_out(key, int(sequence))
                        out.append(BusRecord(EbRef("kinesis_sequence", key[0], key[1], sequence), entry.get("PartitionKey"), value,
                                             document))
                    else:
                        self._tracker.skipped(key, int(sequence))
            self._commit_due()
            if out and not read_any:
                break
            if not read_any:
                time.sleep(min(SHARD_READ_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        return out

    def _get_records(self, key: tuple[str, str], iterator: str, limit: int) -> dict[str, Any] | None:
        try:
            return dict(self._client.get_records(ShardIterator=iterator, Limit=limit))
        except ClientError as e:
            code = _error_code(e)
            if code == "ExpiredIteratorException":
                self._iterators[key] = None  # re-acquired from the last record read
                return None
            if code in _THROTTLED:
                time.sleep(SHARD_READ_INTERVAL_S)
                return None
            if code == "ResourceNotFoundException":
                raise TopicMissing(f"Kinesis stream {key[0]} does not exist") from e
            raise BusUnavailable(f"GetRecords on {key[0]}/{key[1]} failed: {e}") from e
        except BotoCoreError as e:
            raise _unreachable(key[0], e) from e

    def commit(self, records: list[BusRecord]) -> None:
        """Acknowledge `records` (after the caller's durable write) and checkpoint what is safe."""
        for record in records:
            ref = record.eb_ref
            self._tracker.acknowledged((ref.topic, str(ref.partition)), int(ref.offset))
        self._commit_due()

    def _commit_due(self) -> None:
        for (stream, shard_id), position in self._tracker.due().items():
            self._checkpoints.save(stream, shard_id, position)
            self._tracker.mark_committed((stream, shard_id), position)

    def close(self) -> None:
        """Release the checkpoint connection; the shard iterators simply expire."""
        self._checkpoints.close()


class KinesisAdmin(BusAdmin):
    """Stream creation and inspection."""

    def __init__(self, client: Any, *, active_timeout_s: float = 60.0):
        self._client = client
        self.active_timeout_s = active_timeout_s

    def ensure_topic(self, name: str, partitions: int, retention_hours: int) -> bool:
        """Create stream `name` with `partitions` shards and the retention; False when it existed."""
        try:
            self._client.create_stream(StreamName=name, ShardCount=partitions)
            created = True
        except ClientError as e:
            if _error_code(e) != "ResourceInUseException":
                raise BusUnavailable(f"creating Kinesis stream {name} failed: {e}") from e
            created = False
        except BotoCoreError as e:
            raise _unreachable(name, e) from e
        if created:
            self._wait_active(name)
            if retention_hours > 24:  # 24 h is the Kinesis default and minimum
                self._client.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=retention_hours)
        return created

    def _wait_active(self, name: str) -> None:
        deadline = time.monotonic() + self.active_timeout_s
        while time.monotonic() < deadline:
            status = self._summary(name)
            if status is not None and status.get("StreamStatus") == "ACTIVE":
                return
            time.sleep(0.2)
        raise BusUnavailable(f"Kinesis stream {name} not ACTIVE after {self.active_timeout_s:g}s")

    def _summary(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"])
        except ClientError as e:
            if _error_code(e) == "ResourceNotFoundException":
                return None
            raise BusUnavailable(f"describing Kinesis stream {name} failed: {e}") from e
        except BotoCoreError as e:
            raise _unreachable(name, e) from e

    def partitions(self, name: str) -> int | None:
        """The stream's open shard count, or None when it does not exist."""
        summary = self._summary(name)
        return None if summary is None else int(summary["OpenShardCount"])

    def retention_hours(self, name: str) -> int | None:
        """The stream's retention period in hours, or None when it does not exist."""
        summary = self._summary(name)
        return None if summary is None else int(summary["RetentionPeriodHours"])

    def ranges(self, name: str) -> list[PartitionRange]:
        """Per shard, the first and last sequence numbers present.

        Kinesis has no watermark call, so each shard is read from TRIM_HORIZON to its end
        (10,000 records per call): fine for the local bus, proportional to the data held.
        """
        if self._summary(name) is None:
            raise TopicMissing(f"Kinesis stream {name} does not exist")
        out: list[PartitionRange] = []
        for shard_id in list_shard_ids(self._client, name):
            first: str | None = None
            last: str | None = None
            iterator: str | None = self._client.get_shard_iterator(
                StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                response = self._client.get_records(ShardIterator=iterator, Limit=MAX_RECORDS_PER_GET)
                records = response.get("Records", [])
                if records:
                    first = first or str(records[0]["SequenceNumber"])
                    last = str(records[-1]["SequenceNumber"])
                if not records and int(response.get("MillisBehindLatest", 0) or 0) == 0:
                    break
                iterator = response.get("NextShardIterator")
            out.append(PartitionRange(name, shard_id, first, last))
        return out
