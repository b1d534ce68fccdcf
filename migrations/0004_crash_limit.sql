-- 0004_crash_limit.sql — a job that keeps taking the process down is failed, not
-- requeued forever. At each claim `claimed_epochs` records the epochs the job had
-- committed; at start-up recovery counts, for each job a dead process left
-- running, the deaths since its last committed epoch in `crashes` (1 when it
-- committed an epoch since its claim, else one more), and fails the job once that
-- reaches fitd serve's --crash-limit.

ALTER TABLE jobs ADD COLUMN claimed_epochs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN crashes        INTEGER NOT NULL DEFAULT 0;
