-- Kinesis consumer checkpoints: per consumer, stream and shard, the last sequence number whose
-- record the consumer's caller has durably handled (or that run scope skipped). A checkpoint is
-- state, not truth: it moves forward, so it is updated in place.
CREATE TABLE IF NOT EXISTS bus_kinesis_checkpoints (
    consumer_name   text        NOT NULL,
    stream          text        NOT NULL,
    shard_id        text        NOT NULL,
    sequence_number numeric     NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_name, stream, shard_id)
);
