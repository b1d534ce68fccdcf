-- 0001_init.sql — datasets, jobs (the durable queue), per-epoch metrics,
-- checkpoints and final weights. Applied once, inside a transaction, by
-- store_migrate; never edit it after release — add 0002_*.sql instead.
--
-- `seq` (the rowid) gives every row a total insertion order: lists page on it
-- (newest first) and workers claim the lowest queued seq (oldest first), which
-- stays exact even for rows created within the same millisecond. `id` is the
-- opaque public identifier. `tenant` is '' until authentication lands.

CREATE TABLE datasets (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    tenant      TEXT    NOT NULL DEFAULT '',
    name        TEXT    NOT NULL,
    format      TEXT    NOT NULL DEFAULT '',
    n_samples   INTEGER NOT NULL CHECK (n_samples > 0),
    input_shape TEXT    NOT NULL,            -- JSON array, e.g. [28,28]
    x_width     INTEGER NOT NULL CHECK (x_width > 0),
    y_width     INTEGER NOT NULL CHECK (y_width > 0),
    y_integer   INTEGER NOT NULL DEFAULT 0,
    n_classes   INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL,            -- stored float32 bytes of x and y
    sha256      TEXT    NOT NULL,            -- hex, over x then y as stored
    created_at  TEXT    NOT NULL
);
CREATE INDEX datasets_tenant_seq ON datasets (tenant, seq);

-- x and y as float32 little-endian, split into chunks (SQLite caps one value
-- at SQLITE_MAX_LENGTH, 1e9 bytes by default; datasets may be larger).
CREATE TABLE dataset_chunks (
    dataset_id TEXT    NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    part       TEXT    NOT NULL CHECK (part IN ('x', 'y')),
    chunk      INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    UNIQUE (dataset_id, part, chunk)
);

CREATE TABLE jobs (
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT    NOT NULL UNIQUE,
    tenant                TEXT    NOT NULL DEFAULT '',
    name                  TEXT,
    status                TEXT    NOT NULL DEFAULT 'queued'
                          CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    spec                  TEXT    NOT NULL,
    -- SET NULL: a finished job outlives the datasets it used (deleting a
    -- dataset used by a queued or running job is refused by the store).
    train_dataset_id      TEXT    REFERENCES datasets (id) ON DELETE SET NULL,
    validation_dataset_id TEXT    REFERENCES datasets (id) ON DELETE SET NULL,
    test_dataset_id       TEXT    REFERENCES datasets (id) ON DELETE SET NULL,
    epochs                INTEGER NOT NULL CHECK (epochs >= 1),
    epoch                 INTEGER NOT NULL DEFAULT 0,
    batch                 INTEGER NOT NULL DEFAULT 0,
    batches               INTEGER NOT NULL DEFAULT 0,
    epochs_done           INTEGER NOT NULL DEFAULT 0,
    best_epoch            INTEGER NOT NULL DEFAULT 0,
    attempts              INTEGER NOT NULL DEFAULT 0,
    cancel_requested      INTEGER NOT NULL DEFAULT 0,
    last_metrics          TEXT,
    error                 TEXT,
    test_metrics          TEXT,
    idempotency_key       TEXT,
    body_hash             TEXT,
    created_at            TEXT    NOT NULL,
    started_at            TEXT,
    finished_at           TEXT,
    updated_at            TEXT    NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq);
CREATE INDEX jobs_train_dataset ON jobs (train_dataset_id);
CREATE INDEX jobs_validation_dataset ON jobs (validation_dataset_id);
CREATE INDEX jobs_test_dataset ON jobs (test_dataset_id);

-- One row per completed epoch; a resumed epoch replaces its row.
CREATE TABLE job_metrics (
    job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL CHECK (epoch >= 1),
    record     TEXT    NOT NULL,             -- JSON object
    created_at TEXT    NOT NULL,
    PRIMARY KEY (job_id, epoch)
);

-- The latest checkpoint only (nn_trainer_checkpoint bytes).
CREATE TABLE job_checkpoints (
    job_id     TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);

-- Final weights, safetensors.
CREATE TABLE job_weights (
    job_id     TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    data       BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);
