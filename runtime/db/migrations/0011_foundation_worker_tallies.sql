-- worker_tallies: per consumer group and run, how many of the run's records the stream worker
--   processed and dead-lettered. Written by the worker loop in the SAME transaction as the state,
--   positions and dead letters of the batch, and only for records past the durable position, so a
--   redelivered record is never counted twice. The reporter (P11) reconciles each group's input
--   (the run's records on its topics) against processed + skipped + dead_lettered: topics are
--   shared across runs, so whole-topic offset ranges cannot say what the run's group consumed.
CREATE TABLE worker_tallies (
  consumer_group text NOT NULL,
  platform_run_id text NOT NULL,
  component text NOT NULL,
  processed bigint NOT NULL DEFAULT 0 CHECK (processed >= 0),
  dead_lettered bigint NOT NULL DEFAULT 0 CHECK (dead_lettered >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, platform_run_id)
);
CREATE INDEX worker_tallies_run ON worker_tallies (platform_run_id);
