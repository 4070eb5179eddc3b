-- Scenario Runner leases: one row per scenario_run_id (= sha256(equivalence_key)[:32]). A holder
-- owns the key until expires_at; another SR run with the same key is LEASE_BUSY until then or
-- until an operator clears the lease (`sr lease-clear`). A lease is coordination state, not truth.
CREATE TABLE IF NOT EXISTS sr_run_leases (
    scenario_run_id text        PRIMARY KEY,
    equivalence_key text        NOT NULL,
    platform_run_id text        NOT NULL,
    holder          text        NOT NULL,
    acquired_at     timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
