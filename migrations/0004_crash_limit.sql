-- 0004_crash_limit.sql — a job that keeps taking the process down is failed, not
-- requeued forever: `crashes` counts the deaths of fitd while the job was running
-- since it last committed an epoch (the start-up recovery adds one, an epoch
-- commit sets 0), and recovery fails the job once it reaches fitd serve's
-- --crash-limit.
--
-- A failed job's last good weights are now read from its checkpoint when asked
-- for (GET /v1/jobs/{id}/checkpoint), so the copies earlier versions stored at
-- the failure go.

ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
DELETE FROM job_weights WHERE job_id IN (SELECT id FROM jobs WHERE status = 'failed');
