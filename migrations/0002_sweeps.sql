-- 0002_sweeps.sql — hyper-parameter sweeps (server/sweep.h). A sweep is a row
-- here plus one ordinary job row per trial, inserted in one transaction; its
-- status and counts are derived from those jobs, so sweeps survive restarts
-- exactly as jobs do.

CREATE TABLE sweeps (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    tenant           TEXT    NOT NULL DEFAULT '',
    name             TEXT,
    request          TEXT    NOT NULL,           -- the POST body (JSON), as accepted
    objective_metric TEXT    NOT NULL,
    objective_mode   TEXT    NOT NULL CHECK (objective_mode IN ('min', 'max')),
    max_parallel     INTEGER NOT NULL DEFAULT 0, -- 0 = no cap; the claim honours it
    n_trials         INTEGER NOT NULL CHECK (n_trials >= 1),
    halving_min_epochs INTEGER NOT NULL DEFAULT 0, -- 0 = no successive halving
    halving_eta      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL
);
CREATE INDEX sweeps_tenant_seq ON sweeps (tenant, seq);

-- A trial is a job with these set (NULL for a job submitted on its own).
ALTER TABLE jobs ADD COLUMN sweep_id TEXT REFERENCES sweeps (id);
ALTER TABLE jobs ADD COLUMN trial_index INTEGER;
ALTER TABLE jobs ADD COLUMN trial_params TEXT; -- JSON object {pointer: value}
CREATE INDEX jobs_sweep_status ON jobs (sweep_id, status);
