-- Each output's event-time frontier: every row of the output with event time before
-- frontier_ts_micros has been answered by IG (the output's stream view is ordered by ts_utc);
-- `ended` once the output has nothing more to send in this run (end of view or the run's cap).
-- A row per planned output is written when WSP takes up READY, so a reader can tell an output that
-- has not sent yet from one this run does not stream. DF waits for these before it decides.
ALTER TABLE wsp_output_progress ADD COLUMN frontier_ts_micros bigint;
ALTER TABLE wsp_output_progress ADD COLUMN ended boolean NOT NULL DEFAULT false;
