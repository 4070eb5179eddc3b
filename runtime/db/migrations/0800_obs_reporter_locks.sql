-- The reporter's single-writer lock (REPORTER_LOCK_BACKEND = postgres_table): one row per lock key
-- (REPORTER_LOCK_KEY_PATTERN, `reporter:<platform_run_id>`) naming who holds it. Liveness is a
-- session advisory lock on a hash of the key, held by the holder's own connection: when the holder
-- dies its session ends and the lock with it, so the next reporter takes over (recording whom it
-- took over from). Coordination state, not truth: the row is deleted on release.
CREATE TABLE IF NOT EXISTS obs_reporter_locks (
    lock_key        text        PRIMARY KEY,
    platform_run_id text        NOT NULL,
    holder          text        NOT NULL,
    advisory_key    bigint      NOT NULL,
    acquired_at     timestamptz NOT NULL DEFAULT now(),
    took_over_from  text
);
