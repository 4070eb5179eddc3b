-- dla_audit_records by batch: verifying a run's stored audit chain (P9, `dla verify`) reads each
--   batch's index rows (WHERE platform_run_id AND batch_seq). Without this index every batch read
--   scanned the whole table: ~0.4 s per batch at 100k traffic events, 160 batches per run.
CREATE INDEX IF NOT EXISTS dla_audit_records_batch ON dla_audit_records (platform_run_id, batch_seq, batch_position);
