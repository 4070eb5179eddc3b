-- The stream worker's plumbing, shared by every consumer after ingest (runtime/worker/).
-- worker_positions: per consumer group and partition, the last input position whose effects are
--   durable; written in the same transaction as the state, so a redelivered record is recognised.
-- worker_outbox: records a transaction produced, published after it commits (published_at set then).
-- worker_dead_letters: records a handler refused, with the reason and the eb_ref (append-only).
CREATE TABLE worker_positions (
  consumer_group text NOT NULL,
  topic text NOT NULL,
  partition text NOT NULL,
  position numeric NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE worker_outbox (
  component text NOT NULL,
  record_id text NOT NULL,
  platform_run_id text NOT NULL,
  topic text NOT NULL,
  key text NOT NULL,
  value bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  eb_ref jsonb,
  PRIMARY KEY (component, platform_run_id, record_id)
);
CREATE INDEX worker_outbox_unpublished ON worker_outbox (component, platform_run_id, created_at)
  WHERE published_at IS NULL;

CREATE TABLE worker_dead_letters (
  consumer_group text NOT NULL,
  topic text NOT NULL,
  partition text NOT NULL,
  position numeric NOT NULL,
  component text NOT NULL,
  platform_run_id text NOT NULL,
  reason_code text NOT NULL,
  reason text NOT NULL,
  eb_ref jsonb NOT NULL,
  value_sha256 text NOT NULL,
  value_excerpt text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition, position)
);
CREATE INDEX worker_dead_letters_run ON worker_dead_letters (platform_run_id, component);
SELECT fp_make_append_only('worker_dead_letters');
