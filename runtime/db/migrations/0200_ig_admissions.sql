-- Ingestion Gate state.
-- ig_admissions: one row per dedupe identity (platform_run_id, event_class, event_id). Its state moves
--   PENDING (claimed, publish outcome not yet known) -> PUBLISHED (eb_ref known, receipt not yet
--   durable) -> ADMITTED (receipt written). It is working state, not truth: the receipts are truth.
-- ig_receipts: the append-only index of every receipt by receipt_id, pointing at the immutable batch
--   object in the object store that carries it. UPDATE and DELETE are refused.
-- ig_quarantine: append-only index of quarantined payloads (invalid events and anomalies).
CREATE TABLE ig_admissions (
  platform_run_id text NOT NULL,
  event_class     text NOT NULL,
  event_id        text NOT NULL,
  payload_hash    text NOT NULL,
  state           text NOT NULL CHECK (state IN ('PENDING', 'PUBLISHED', 'ADMITTED')),
  receipt_id      text,
  eb_ref          jsonb,
  publish_attempts integer NOT NULL DEFAULT 0,
  claimed_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, event_class, event_id)
);

CREATE TABLE ig_receipts (
  receipt_id          text PRIMARY KEY,
  platform_run_id     text NOT NULL,
  event_class         text,
  event_id            text,
  outcome             text NOT NULL CHECK (outcome IN ('ADMIT', 'DUPLICATE', 'QUARANTINE', 'ANOMALY', 'PUBLISH_AMBIGUOUS')),
  error_code          text,
  payload_hash        text,
  eb_ref              jsonb,
  original_receipt_id text,
  batch_key           text NOT NULL,
  batch_index         integer NOT NULL,
  receipt             jsonb NOT NULL,
  recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ig_receipts_run_outcome ON ig_receipts (platform_run_id, outcome);
CREATE INDEX ig_receipts_identity ON ig_receipts (platform_run_id, event_class, event_id);
CREATE TRIGGER ig_receipts_append_only BEFORE UPDATE OR DELETE ON ig_receipts
  FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation();

CREATE TABLE ig_quarantine (
  receipt_id      text PRIMARY KEY,
  platform_run_id text NOT NULL,
  event_class     text,
  event_id        text,
  reason          text NOT NULL,
  object_key      text NOT NULL,
  object_index    integer NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ig_quarantine_run ON ig_quarantine (platform_run_id, reason);
CREATE TRIGGER ig_quarantine_append_only BEFORE UPDATE OR DELETE ON ig_quarantine
  FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation();
