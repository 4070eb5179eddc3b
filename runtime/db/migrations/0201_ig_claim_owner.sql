-- Ingestion Gate: who is working on an identity right now, and at most one ADMIT per identity.
-- claim_owner: the owner key of the IG process whose request holds the identity (NULL = nobody).
--   Each IG process holds a session-level advisory lock on its key for as long as it lives, so a
--   claim whose owner's lock can be taken belongs to a dead process and may be taken over; a claim
--   of a live process is never taken (its retry gets 503 until it is ADMITTED, then DUPLICATE).
ALTER TABLE ig_admissions ADD COLUMN claim_owner bigint;

-- The receipts are the truth: one ADMIT receipt per identity, whatever the concurrency.
CREATE UNIQUE INDEX ig_receipts_one_admit ON ig_receipts (platform_run_id, event_class, event_id)
  WHERE outcome = 'ADMIT';
