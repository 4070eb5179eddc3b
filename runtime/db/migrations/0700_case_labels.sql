-- The case and labels plane (P10). Every table here is append-only truth: the runtime role may
-- only SELECT and INSERT (UPDATE, DELETE and TRUNCATE are refused by fp_make_append_only), and
-- every row is keyed by a deterministic id, so an append is INSERT ... ON CONFLICT DO NOTHING.
--
-- CaseTrigger's join of a decision with DLA's audit record of it (either may arrive first):
-- case_trigger_decisions: one row per decision that needs a case (the flattened decision record
--   and the sha256 of its payload); case_trigger_audit_refs: one row per decision DLA recorded
--   (audit id and the sha256 DLA took); case_triggers: one row per published trigger (the outbox
--   row goes with it in the same transaction, so a trigger is published once per trigger id).
CREATE TABLE case_trigger_decisions (
  platform_run_id text NOT NULL,
  decision_id text NOT NULL,
  record_sha256 text NOT NULL,
  decision jsonb NOT NULL,
  envelope_ts_utc text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, decision_id)
);
SELECT fp_make_append_only('case_trigger_decisions');

CREATE TABLE case_trigger_audit_refs (
  platform_run_id text NOT NULL,
  decision_id text NOT NULL,
  audit_id text NOT NULL,
  record_sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, decision_id)
);
SELECT fp_make_append_only('case_trigger_audit_refs');

CREATE TABLE case_triggers (
  platform_run_id text NOT NULL,
  trigger_id text NOT NULL,
  case_id text NOT NULL,
  decision_id text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, trigger_id)
);
SELECT fp_make_append_only('case_triggers');

-- CM's case timeline: one row per timeline event (runtime/case/cm/domain.py). The case's state is
-- folded from these rows on read (never stored). at_utc is the normalised RFC 3339 text the ids hash.
CREATE TABLE cm_case_timeline (
  platform_run_id text NOT NULL,
  timeline_event_id text NOT NULL,
  case_id text NOT NULL,
  kind text NOT NULL,
  actor text NOT NULL,
  at_utc text NOT NULL,
  details jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, timeline_event_id)
);
CREATE INDEX cm_case_timeline_case ON cm_case_timeline (platform_run_id, case_id);
SELECT fp_make_append_only('cm_case_timeline');

-- LS's label assertions (runtime/case/ls/domain.py), keyed by assertion id and readable by the
-- label subject key (LABEL_SUBJECT_KEY_FIELDS) for label_as_of.
CREATE TABLE ls_label_assertions (
  platform_run_id text NOT NULL,
  assertion_id text NOT NULL,
  event_id text NOT NULL,
  label_type text NOT NULL,
  source text NOT NULL,
  label_value text NOT NULL,
  observed_at_utc text NOT NULL,
  effective_at_utc text NOT NULL,
  evidence jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, assertion_id)
);
CREATE INDEX ls_label_assertions_subject ON ls_label_assertions (platform_run_id, event_id, label_type);
SELECT fp_make_append_only('ls_label_assertions');
