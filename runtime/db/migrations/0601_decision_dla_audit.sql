-- The decision log and audit's truth (append-only; the runtime role may only SELECT and INSERT).
-- dla_audit_batches: one row per immutable, hash-chained batch object. The row with the highest
--   batch_seq holds the chain head digest; the row count is the batch count, so an edit to (or the
--   removal of) the last batch object is caught by verify. Written after its object, in the same
--   transaction: a row never points at a missing object.
-- dla_audit_records: one row per logged lane record (decision, intent, outcome) with its content
--   (the chain query returns it) and the batch that holds it; the lineage queries read it.
CREATE TABLE dla_audit_batches (
  platform_run_id text NOT NULL,
  batch_seq integer NOT NULL CHECK (batch_seq >= 0),
  previous_sha256 text NOT NULL,
  sha256 text NOT NULL,
  record_count integer NOT NULL CHECK (record_count > 0),
  object_key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, batch_seq)
);
SELECT fp_make_append_only('dla_audit_batches');

CREATE TABLE dla_audit_records (
  platform_run_id text NOT NULL,
  audit_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('decision', 'intent', 'outcome')),
  record_id text NOT NULL,
  parent_id text,
  decision_id text,
  event_id text,
  record_sha256 text NOT NULL,
  batch_seq integer NOT NULL,
  batch_position integer NOT NULL,
  eb_ref jsonb NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, audit_id),
  UNIQUE (platform_run_id, kind, record_id)
);
CREATE INDEX dla_audit_records_decision ON dla_audit_records (platform_run_id, decision_id);
CREATE INDEX dla_audit_records_event ON dla_audit_records (platform_run_id, event_id);
CREATE INDEX dla_audit_records_parent ON dla_audit_records (platform_run_id, parent_id);
SELECT fp_make_append_only('dla_audit_records');
