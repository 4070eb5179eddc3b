-- RTDL operational progress, shared by OFP, IEG and CSFB (runtime/rtdl/store.py): per run,
-- component and input partition, the event-time watermark (largest event time applied) with the
-- count of late events, and the component's counters. Both depend on partitioning and
-- consumption order, so they stay out of the state digest; both are written in the worker's
-- transaction with the state they describe.
CREATE TABLE rtdl_watermarks (
  platform_run_id text NOT NULL,
  component text NOT NULL,
  topic text NOT NULL,
  partition text NOT NULL,
  max_event_ts_micros bigint NOT NULL,
  late_events bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, component, topic, partition)
);

CREATE TABLE rtdl_counters (
  platform_run_id text NOT NULL,
  component text NOT NULL,
  topic text NOT NULL,
  partition text NOT NULL,
  counter text NOT NULL,
  value bigint NOT NULL,
  PRIMARY KEY (platform_run_id, component, topic, partition, counter)
);

-- OFP facts: one row per (entity, traffic event); derived state, rebuildable from the archive
-- (not append-only: facts older than the 24 h + grace horizon are evicted). The primary key is
-- the point-in-time read's range: one entity's facts in (ts, event_id) order, covering every
-- column features need, so `features_as_of` is one index range scan. An event id fixes its event
-- time (the id hashes the payload, whose ts_utc must equal the envelope's), so the key is also the
-- idempotence key (run, entity, event_id).
CREATE TABLE rtdl_ofp_facts (
  platform_run_id text NOT NULL,
  entity_kind text NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  ts_micros bigint NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  amount_minor bigint NOT NULL,
  merchant_id text NOT NULL,
  merchant_country text NOT NULL,
  device_id text NOT NULL,
  is_p2p boolean NOT NULL,
  is_round boolean NOT NULL,
  PRIMARY KEY (platform_run_id, entity_kind, entity_id, ts_micros, event_id)
    INCLUDE (amount_minor, merchant_id, merchant_country, device_id, is_p2p, is_round)
);
-- The run's newest event time (retention cutoff) and eviction of facts past the horizon.
CREATE INDEX rtdl_ofp_facts_run_ts ON rtdl_ofp_facts (platform_run_id, ts_micros);
