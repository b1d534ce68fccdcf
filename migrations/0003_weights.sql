-- 0003_weights.sql — uploaded weights for warm starts (POST /v1/weights).
-- A job names them in its spec ("init": {"weights": id}); the store refuses to
-- delete a row while a queued or running job's spec names it. Succeeded jobs
-- now keep their final checkpoint (job_checkpoints) for "init": {"from_job": id,
-- "resume": true}; that needs no schema change.

CREATE TABLE weights (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    tenant     TEXT    NOT NULL DEFAULT '',
    name       TEXT    NOT NULL,
    tensors    TEXT    NOT NULL,             -- JSON array of {"name", "dtype", "shape"}
    bytes      INTEGER NOT NULL,             -- size of the uploaded safetensors file
    sha256     TEXT    NOT NULL,             -- hex, over the uploaded bytes
    data       BLOB    NOT NULL,             -- the safetensors file as uploaded
    created_at TEXT    NOT NULL
);
CREATE INDEX weights_tenant_seq ON weights (tenant, seq);
