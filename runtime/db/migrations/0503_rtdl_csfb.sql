-- CSFB: the FlowBinding index (one row per flow, from its flow anchor) and the arrival context
-- per session; derived state, rebuildable from the archive (not append-only). Two records for
-- one key keep the earlier in (ts, event_id) order. Pending join misses (traffic events waiting
-- for their context) and the late joins they turned into are operational, like the counters.
CREATE TABLE rtdl_csfb_flow_bindings (
  platform_run_id text NOT NULL,
  flow_id text NOT NULL,
  session_id text NOT NULL,
  customer_id text NOT NULL,
  account_id text NOT NULL,
  card_id text NOT NULL,
  device_id text NOT NULL,
  merchant_id text NOT NULL,
  channel text,
  anchor_ts_micros bigint NOT NULL,
  anchor_event_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (platform_run_id, flow_id)
);

CREATE TABLE rtdl_csfb_arrivals (
  platform_run_id text NOT NULL,
  session_id text NOT NULL,
  arrival_id text NOT NULL,
  customer_id text NOT NULL,
  device_id text,
  channel text NOT NULL,
  ip_country text NOT NULL,
  ts_micros bigint NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (platform_run_id, session_id)
);

CREATE TABLE rtdl_csfb_pending (
  platform_run_id text NOT NULL,
  flow_id text NOT NULL,
  event_id text NOT NULL,
  session_id text NOT NULL,
  PRIMARY KEY (platform_run_id, flow_id, event_id)
);
CREATE INDEX rtdl_csfb_pending_session ON rtdl_csfb_pending (platform_run_id, session_id);

CREATE TABLE rtdl_csfb_late_joins (
  platform_run_id text NOT NULL,
  event_id text NOT NULL,
  PRIMARY KEY (platform_run_id, event_id)
);
