-- The action layer's truth (append-only; the runtime role may only SELECT and INSERT).
-- al_effects: one row per executed effect, unique on (run, idempotency key): an effect is executed
--   at most once however often its intent is delivered (INSERT ... ON CONFLICT DO NOTHING).
-- al_duplicates: one row per delivery of an intent whose key was already executed (a duplicate
--   prevented); durable, so the count survives restarts and adds up across consumer groups.
CREATE TABLE al_effects (
  platform_run_id text NOT NULL,
  idempotency_key text NOT NULL,
  intent_id text NOT NULL,
  outcome_id text NOT NULL,
  decision_id text NOT NULL,
  event_id text NOT NULL,
  action_type text NOT NULL,
  outcome jsonb NOT NULL,
  intent_eb_ref jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, idempotency_key)
);
CREATE INDEX al_effects_decision ON al_effects (platform_run_id, decision_id);
SELECT fp_make_append_only('al_effects');

CREATE TABLE al_duplicates (
  duplicate_seq bigserial PRIMARY KEY,
  platform_run_id text NOT NULL,
  idempotency_key text NOT NULL,
  intent_id text NOT NULL,
  intent_eb_ref jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX al_duplicates_run ON al_duplicates (platform_run_id);
SELECT fp_make_append_only('al_duplicates');
