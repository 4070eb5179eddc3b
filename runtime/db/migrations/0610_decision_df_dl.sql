-- The decision fabric's and the degrade ladder's truth (append-only; the runtime role may only
-- SELECT and INSERT).
-- df_decisions: one row per decision, unique on decision_id = H(run, event class, event id, policy
--   digest): inserted ON CONFLICT DO NOTHING inside DF's worker transaction, so a redelivered or
--   replayed event never gets a second decision. `record` is the whole decision_response payload;
--   the columns beside it are what P9 groups and measures (outcome, reasons, posture, degrade,
--   admission-to-decision latency).
-- dl_posture_history: one row per posture change of the run (seq from 0), with the health seen and
--   the entry's own sha256; DF decides with the posture of the highest seq.
CREATE TABLE df_decisions (
  decision_id text PRIMARY KEY,
  platform_run_id text NOT NULL,
  event_class text NOT NULL,
  event_id text NOT NULL,
  event_ts_utc timestamptz NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('APPROVE', 'STEP_UP', 'REVIEW', 'DECLINE')),
  posture text NOT NULL CHECK (posture IN ('GREEN', 'AMBER', 'RED')),
  reason_codes text[] NOT NULL,
  degrade_codes text[] NOT NULL,
  policy_digest text NOT NULL,
  core_sha256 text NOT NULL,
  record jsonb NOT NULL,
  eb_ref jsonb NOT NULL,
  receipt_id text,
  admitted_at timestamptz,
  decided_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (platform_run_id, event_class, event_id, policy_digest)
);
CREATE INDEX df_decisions_run ON df_decisions (platform_run_id, outcome);
SELECT fp_make_append_only('df_decisions');

CREATE TABLE dl_posture_history (
  platform_run_id text NOT NULL,
  seq integer NOT NULL CHECK (seq >= 0),
  posture text NOT NULL CHECK (posture IN ('GREEN', 'AMBER', 'RED')),
  previous text,
  reasons text[] NOT NULL,
  health jsonb NOT NULL,
  entry_sha256 text NOT NULL,
  at_utc timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, seq)
);
SELECT fp_make_append_only('dl_posture_history');

-- DF and DL ask, per batch and per tick, for the last offset IG admitted on each partition of a
-- run: an index on (run, topic, partition, offset) of the admissions' eb_ref answers it with a
-- few index probes per partition instead of a scan of the run's admissions.
CREATE INDEX ig_admissions_run_partition_offset ON ig_admissions
  (platform_run_id, (eb_ref->>'topic'), (eb_ref->>'partition'), ((eb_ref->>'offset')::numeric));
