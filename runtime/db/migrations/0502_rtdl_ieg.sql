-- IEG: entities and edges with first and last seen as (ts, event_id) pairs; derived state,
-- rebuildable from the archive (not append-only). Applying a batch is one min/max merge upsert per
-- table. Event ids compare bytewise (COLLATE "C") so (ts, event_id) order is the domain's.
CREATE TABLE rtdl_ieg_entities (
  platform_run_id text NOT NULL,
  kind text NOT NULL,
  entity_id text NOT NULL,
  first_ts_micros bigint NOT NULL,
  first_event_id text COLLATE "C" NOT NULL,
  last_ts_micros bigint NOT NULL,
  last_event_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (platform_run_id, kind, entity_id)
);

CREATE TABLE rtdl_ieg_edges (
  platform_run_id text NOT NULL,
  from_kind text NOT NULL,
  from_id text NOT NULL,
  relation text NOT NULL,
  to_kind text NOT NULL,
  to_id text NOT NULL,
  first_ts_micros bigint NOT NULL,
  first_event_id text COLLATE "C" NOT NULL,
  last_ts_micros bigint NOT NULL,
  last_event_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (platform_run_id, from_kind, from_id, relation, to_kind, to_id)
);
-- Neighbour queries walk edges from either end.
CREATE INDEX rtdl_ieg_edges_to ON rtdl_ieg_edges (platform_run_id, to_kind, to_id, relation);
