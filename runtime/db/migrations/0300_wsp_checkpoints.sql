-- World Streamer Producer checkpoints.
-- wsp_ready_runs: one row per READY (platform_run_id, scenario_run_id) WSP has taken up; a COMPLETED
--   row makes a replayed READY a skip. wsp_output_progress: rows of each output IG has answered for,
--   so a restarted WSP resumes after the last acknowledged batch (same event ids either way).
CREATE TABLE wsp_ready_runs (
  platform_run_id text NOT NULL,
  scenario_run_id text NOT NULL,
  ready_ref       jsonb NOT NULL,
  status          text NOT NULL CHECK (status IN ('STARTED', 'COMPLETED', 'FAILED')),
  attempts        integer NOT NULL DEFAULT 1,
  started_at      timestamptz NOT NULL DEFAULT now(),
  ended_at        timestamptz,
  PRIMARY KEY (platform_run_id, scenario_run_id)
);

CREATE TABLE wsp_output_progress (
  platform_run_id text NOT NULL,
  scenario_run_id text NOT NULL,
  output_id       text NOT NULL,
  rows_sent       bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, scenario_run_id, output_id)
);
