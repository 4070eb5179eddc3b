-- OFP's bounded point-in-time read (runtime/rtdl/ofp/blocks.py) for the busy entity kinds
-- (merchant): a chain row per fact with, per attribute (country, device; a merchant's merchant is
-- itself), the times of the previous and next fact of the same entity with the same value in
-- (ts, event_id) order; and a row per 10-minute block with count, amount sum and max, p2p and round counts and, per attribute,
-- `firsts[k]` = the block's facts whose previous same-value fact lies in a block before block - k.
-- Both are an index of rtdl_ofp_facts, written in the same transaction and equal to what the set
-- of facts defines whatever the order of arrival; they stay out of the state digest (the facts are
-- in it) and a rebuild from the archive writes them again through the same handler. Evicted with
-- the facts, block by block.
CREATE TABLE rtdl_ofp_chain (
  platform_run_id text NOT NULL,
  entity_kind text NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  ts_micros bigint NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  amount_minor bigint NOT NULL,
  merchant_id text COLLATE "C" NOT NULL,
  merchant_country text COLLATE "C" NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  is_p2p boolean NOT NULL,
  is_round boolean NOT NULL,
  country_prev_ts bigint,
  country_next_ts bigint,
  device_prev_ts bigint,
  device_next_ts bigint,
  PRIMARY KEY (platform_run_id, entity_kind, entity_id, ts_micros, event_id)
) WITH (fillfactor = 70);  -- room for link updates in place (HOT: no link column is indexed)
-- The previous / next same-value fact of a new fact, and the first-seen probes of a read. The
-- value leads (after the run), so a statement without it (a range of the entity's facts) never
-- finds these indexes cheaper than the primary key, with or without statistics.
CREATE INDEX rtdl_ofp_chain_country ON rtdl_ofp_chain (platform_run_id, merchant_country, entity_kind, entity_id, ts_micros, event_id);
CREATE INDEX rtdl_ofp_chain_device ON rtdl_ofp_chain (platform_run_id, device_id, entity_kind, entity_id, ts_micros, event_id);
-- No index on (run, ts): a read must take the primary key (one entity's range) whatever the
-- statistics say; eviction deletes per entity found in rtdl_ofp_blocks.

CREATE TABLE rtdl_ofp_blocks (
  platform_run_id text NOT NULL,
  entity_kind text NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  block bigint NOT NULL,
  fact_count bigint NOT NULL,
  amount_sum bigint NOT NULL,
  amount_max bigint NOT NULL,
  p2p_count bigint NOT NULL,
  round_count bigint NOT NULL,
  country_firsts int[] NOT NULL,
  device_firsts int[] NOT NULL,
  PRIMARY KEY (platform_run_id, entity_kind, entity_id, block)
) WITH (fillfactor = 50);  -- rewritten at every batch touching the block
-- No index on (run, block) either: eviction (once per hour of event time) scans this small table.
