/*
 * store.h — fitd's persistent store: datasets, jobs (the durable queue), per-epoch
 * metrics, checkpoints and trained weights, in one SQLite file.
 *
 * Callers see operations (store_job_claim, store_epoch_commit, ...), never SQL, so
 * the backend can later become a shared PostgreSQL without touching them. No other
 * module opens the database.
 *
 * Connections: one `store` handle per thread (store_open); a handle is used by one
 * thread at a time, distinct handles may be used concurrently from many threads and
 * processes. Every connection runs in WAL mode with synchronous=FULL, foreign keys
 * on and a busy timeout; statements are prepared once per connection, cached, and
 * always bound with parameters. store_migrate runs once at start-up, from one
 * connection, before the others do real work; store_recover_running right after.
 *
 * Errors: every fallible call returns a store_rc (STORE_OK == 0) and leaves a
 * message in the handle (store_errmsg, valid until the next call on that handle).
 * A write either commits entirely or leaves nothing behind. Disk full is STORE_FULL
 * (the HTTP layer answers 507), a lock not obtained within the busy timeout is
 * STORE_BUSY (503), a damaged or foreign file is STORE_CORRUPT.
 *
 * Ownership: fixed-size fields live in the structs; `char *` fields of store_job
 * and every buffer returned through a `void **` / array out-parameter are malloc'ed
 * and belong to the caller (store_job_free, store_job_list_free,
 * store_dataset_list_free, free, nn_dataset_free, as each function says). Input
 * pointers are borrowed for the duration of the call only.
 *
 * Identifiers are opaque, unguessable strings: "ds_" / "job_" + 26 lowercase
 * base32 characters (128 random bits). Timestamps are RFC 3339 UTC text with
 * milliseconds ("2026-01-31T12:34:56.789Z"); "" means "not yet". Lists are newest
 * first in insertion order, with an opaque cursor for the next page.
 *
 * Tenants: every dataset and job carries a tenant string ("" until authentication
 * lands); list queries can filter on it. Nothing else is built for tenants yet.
 */
#ifndef FITD_STORE_H
#define FITD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

typedef struct store store;

typedef enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no such dataset / job (or no weights / checkpoint stored) */
    STORE_CONFLICT,  /* state forbids it: idempotency key reused with another body,
                        delete of an unfinished job or of a dataset in use, ... */
    STORE_BUSY,      /* database locked beyond the busy timeout (retry later) */
    STORE_FULL,      /* disk (or max_page_count) full: nothing was written */
    STORE_CORRUPT,   /* not a SQLite database, damaged file or stored data */
    STORE_INVALID,   /* a caller's bad argument (bad cursor, field too long, ...) */
    STORE_LIMIT,     /* a configured cap was reached (store_job_new.max_queued) */
    STORE_NOMEM,     /* out of memory */
    STORE_STOPPED,   /* a walk's callback asked it to stop (not a failure of the store) */
    STORE_ERROR      /* anything else (I/O error, schema from a newer fitd, ...) */
} store_rc;

/* "ok", "not_found", ... (static strings). */
const char *store_rc_name(store_rc rc);

/* ---------------------------------------------------------------- sizes */

#define STORE_ID_MAX 32      /* "job_" + 26 + NUL fits */
#define STORE_TS_MAX 32      /* RFC 3339 with milliseconds + NUL */
#define STORE_TENANT_MAX 64
#define STORE_NAME_MAX 256   /* dataset names (job names are malloc'ed) */
#define STORE_SHAPE_MAX 4    /* dimensions of a dataset's input_shape */
#define STORE_CURSOR_MAX 64  /* an opaque list cursor + NUL */
#define STORE_SHA256_HEX 65  /* 64 hex digits + NUL */
#define STORE_LIST_DEFAULT 50
#define STORE_LIST_MAX 1000

/* ---------------------------------------------------------------- connections */

/* Open (creating if absent) the database at `path` for the calling thread and set
 * WAL, synchronous=FULL, foreign_keys=ON, a 5000 ms busy timeout and a 128 KiB
 * page cache (one per connection, so it is kept small). Returns NULL on
 * failure with a message in errbuf (may be NULL) naming the file, e.g.
 * "var/fitd.db: file is not a SQLite database". Free with store_close. */
store *store_open(const char *path, char *errbuf, size_t errlen);
/* Serving: an exclusive lock on "<path>.lock", held until store_close, so that a
 * second server on the same database refuses to start (it would requeue this
 * one's running jobs at its start and train them twice). STORE_CONFLICT when
 * another process holds it. */
store_rc store_lock_serving(store *s);
/* Finalize the cached statements and close. Accepts NULL. */
void store_close(store *s);
/* The message of the last failed call on this handle ("" if none). */
const char *store_errmsg(const store *s);
/* The path the handle was opened with. */
const char *store_path(const store *s);

/* Apply every embedded "migrations/NNNN_*.sql" not yet recorded in
 * schema_migrations, in version order, each in its own transaction, recording
 * (version, name, applied_at). Idempotent. If the database records a version
 * higher than the newest embedded one (it was written by a newer fitd), nothing is
 * changed and STORE_ERROR names the database file and both versions. */
store_rc store_migrate(store *s);
/* The highest applied migration version (0 for a fresh database). */
store_rc store_schema_version(store *s, int *version);

/* At start-up: jobs left `running` by a dead process go back to `queued` (they
 * resume from their last checkpoint); a running or queued job whose cancel had
 * been requested (a shutdown requeued it first) becomes `cancelled` instead, its
 * checkpoint dropped. A job under which the process has now died crash_limit
 * (> 0) times since the job last committed an epoch becomes `failed`, its error
 * saying so, instead of taking every restart down again. *n_requeued and
 * *n_failed (may be NULL) count those jobs. */
store_rc store_recover_running(store *s, int crash_limit, int *n_requeued, int *n_failed);

/* A cheap read that proves the database answers (for /healthz). */
store_rc store_ping(store *s);

/* The database file's size in bytes as SQLite sees it (page_count x page_size;
 * the WAL file not included), for GET /metrics. */
store_rc store_db_bytes(store *s, int64_t *bytes);

/* Free the connection's unused page-cache memory (sqlite3_db_release_memory): for a
 * worker between jobs, whose cache would otherwise keep the last job's pages. */
void store_release_memory(store *s);

/* At start-up: SQLite's quick_check over every page (reads the whole file, no
 * index cross-checks). STORE_CORRUPT with a message naming the file and the first
 * problem found when the file is damaged or not a database. */
store_rc store_check(store *s);

/* Fill buf (>= prefix length + 27 bytes) with prefix + 26 base32 characters of
 * 128 bits from getrandom(). STORE_ERROR if randomness is unavailable,
 * STORE_INVALID if buf is too small. Thread-safe. */
store_rc store_new_id(const char *prefix, char *buf, size_t len);

/* ---------------------------------------------------------------- datasets */

/* A dataset resource. On store_dataset_insert the caller fills tenant, name,
 * format and (optionally) input_shape; the store fills everything else. */
typedef struct store_dataset_meta {
    char id[STORE_ID_MAX];
    char tenant[STORE_TENANT_MAX];
    char name[STORE_NAME_MAX];
    char format[16];          /* how it was uploaded: "csv", "json", "idx" (free text) */
    int64_t n_samples;
    int n_input_dims;         /* 0 on insert = {x_width} */
    int64_t input_shape[STORE_SHAPE_MAX]; /* product == x_width (e.g. {28, 28}) */
    int x_width;              /* features per sample */
    int y_width;              /* targets per sample (the regression width) */
    int y_integer;            /* every target is a non-negative integer */
    int n_classes;            /* y_width == 1 and y_integer: max label + 1; else 0 */
    double y_min, y_max;      /* the targets' range; NaN if unknown (stored before 0005) */
    int64_t bytes;            /* stored bytes of x and y (float32) */
    char sha256[STORE_SHA256_HEX]; /* hex SHA-256 of x then y, float32 little-endian */
    char created_at[STORE_TS_MAX];
} store_dataset_meta;

/* Store a parsed dataset (x and y as float32 little-endian BLOBs, in chunks so any
 * size up to the core's limits fits) and its meta in ONE transaction: on any
 * failure nothing is left. `meta` is in/out: tenant, name, format, n_input_dims and
 * input_shape are read; id, n_samples, widths, y_integer, n_classes, range (copied from
 * `ds`, so call nn_dataset_describe first), bytes, sha256 and created_at are
 * written. STORE_INVALID for an empty dataset or a shape that does not match
 * x_width. `ds` is borrowed. */
store_rc store_dataset_insert(store *s, store_dataset_meta *meta, const nn_dataset *ds);
/* Meta of one dataset. STORE_NOT_FOUND if absent. */
store_rc store_dataset_get(store *s, const char *id, store_dataset_meta *out);

/* A page of a list, newest first. */
typedef struct store_list_query {
    const char *tenant; /* NULL = every tenant */
    int limit;          /* 0 = STORE_LIST_DEFAULT; clamped to [1, STORE_LIST_MAX] */
    const char *cursor; /* NULL or "" = first page; else a next_cursor returned before */
} store_list_query;

/* *items is a malloc'ed array of *n metas (NULL when *n == 0), freed with
 * store_dataset_list_free. next_cursor (STORE_CURSOR_MAX bytes) receives the
 * cursor of the next page, "" when this is the last. STORE_INVALID for a cursor
 * that this store did not produce. */
store_rc store_dataset_list(store *s, const store_list_query *q, store_dataset_meta **items,
                            size_t *n, char *next_cursor);
void store_dataset_list_free(store_dataset_meta *items);

/* Meta (out_meta may be NULL) and the matrices. On STORE_OK *out holds malloc'ed x
 * and y, freed with nn_dataset_free; y_integer and n_classes are set. On failure
 * *out is zeroed. STORE_CORRUPT if the stored chunks do not add up. */
store_rc store_dataset_load(store *s, const char *id, store_dataset_meta *out_meta,
                            nn_dataset *out);
/* Delete a dataset and its data. STORE_CONFLICT while a queued or running job uses
 * it (as train, validation or test data); finished jobs keep their spec but lose
 * the link. STORE_NOT_FOUND if absent. */
store_rc store_dataset_delete(store *s, const char *id);
/* *in_use = 1 when a queued or running job uses the dataset. */
store_rc store_dataset_in_use(store *s, const char *id, int *in_use);

/* ---------------------------------------------------------------- jobs */

typedef enum store_job_status {
    STORE_JOB_QUEUED = 0,
    STORE_JOB_RUNNING,
    STORE_JOB_SUCCEEDED,
    STORE_JOB_FAILED,
    STORE_JOB_CANCELLED,
    STORE_JOB_STATUS_COUNT
} store_job_status;
/* "queued", "running", "succeeded", "failed", "cancelled". */
const char *store_job_status_name(store_job_status st);
/* STORE_JOB_STATUS_COUNT for an unknown name. */
store_job_status store_job_status_from_name(const char *name);
/* succeeded, failed or cancelled. */
int store_job_status_finished(store_job_status st);

/* Everything the API returns about a job. Strings marked malloc'ed are owned by
 * the struct: release them with store_job_free (the struct itself is the
 * caller's). Zero-initialise before the first use. */
typedef struct store_job {
    char id[STORE_ID_MAX];
    char tenant[STORE_TENANT_MAX];
    store_job_status status;
    char *name;              /* malloc'ed; NULL when none was given */
    char *spec_json;         /* malloc'ed; the job spec as submitted (normalized by the caller) */
    char train_dataset_id[STORE_ID_MAX];      /* "" if the dataset was deleted since */
    char validation_dataset_id[STORE_ID_MAX]; /* "" = none */
    char test_dataset_id[STORE_ID_MAX];       /* "" = none */
    int epochs;              /* planned epochs */
    int epoch;               /* progress: the epoch in progress, or the last committed */
    int batch, batches;      /* progress within that epoch */
    int epochs_done;         /* epochs committed (metrics rows 1..epochs_done exist) */
    int best_epoch;          /* 1-based; 0 = none yet */
    int attempts;            /* times claimed by a worker */
    int cancel_requested;
    int has_checkpoint;      /* a checkpoint is stored (resume possible) */
    int checkpoint_epoch;    /* its epoch; 0 if none */
    int has_weights;         /* a succeeded job's final weights are stored (a failed
                                job's last good ones are its checkpoint's) */
    char *last_metrics_json; /* malloc'ed; the last committed epoch record; NULL before */
    char *error;             /* malloc'ed; NULL unless failed (or a message on cancel) */
    char *test_metrics_json; /* malloc'ed; NULL unless evaluated on test data */
    char *idempotency_key;   /* malloc'ed; NULL when none was given */
    char created_at[STORE_TS_MAX];
    char started_at[STORE_TS_MAX];  /* first claim; "" while never run */
    char finished_at[STORE_TS_MAX]; /* "" until finished */
    char updated_at[STORE_TS_MAX];
    char sweep_id[STORE_ID_MAX];    /* the sweep this job is a trial of; "" = none */
} store_job;
/* Free the malloc'ed members and zero the struct. Accepts NULL. */
void store_job_free(store_job *j);

/* A job submission (all pointers borrowed). */
typedef struct store_job_new {
    const char *tenant;                /* NULL = "" */
    const char *name;                  /* NULL = none */
    const char *spec_json;             /* required */
    const char *train_dataset_id;      /* required */
    const char *validation_dataset_id; /* NULL or "" = none */
    const char *test_dataset_id;       /* NULL or "" = none */
    int epochs;                        /* planned epochs (>= 1) */
    const char *idempotency_key;       /* NULL or "" = none */
    const char *body_hash;             /* required with a key: e.g. hex SHA-256 of the body */
    int64_t max_queued;                /* > 0: STORE_LIMIT when that many jobs are queued */
} store_job_new;

/* Enqueue a job durably: on STORE_OK the row is committed (answer 202 only now)
 * and *out (may be NULL; freed with store_job_free) holds it. With an idempotency
 * key already used by this tenant: the same body_hash returns the existing job with
 * *created = 0 (whatever its state); another hash is STORE_CONFLICT. *created (may
 * be NULL) is 1 for a new job. A dataset id that does not exist is STORE_NOT_FOUND
 * (the caller normally checked it already). */
store_rc store_job_insert(store *s, const store_job_new *in, store_job *out, int *created);
/* STORE_NOT_FOUND if absent. *out is freed with store_job_free. */
store_rc store_job_get(store *s, const char *id, store_job *out);

typedef struct store_job_query {
    const char *tenant;   /* NULL = every tenant */
    int has_status;       /* filter on `status` when non-zero */
    store_job_status status;
    int limit;            /* 0 = STORE_LIST_DEFAULT; clamped to [1, STORE_LIST_MAX] */
    const char *cursor;   /* NULL or "" = first page */
} store_job_query;
/* Newest first (insertion order, stable under concurrent inserts). *jobs is a
 * malloc'ed array of *n (NULL when 0), freed with store_job_list_free(*jobs, *n).
 * next_cursor as for store_dataset_list. */
store_rc store_job_list(store *s, const store_job_query *q, store_job **jobs, size_t *n,
                        char *next_cursor);
void store_job_list_free(store_job *jobs, size_t n);
/* Jobs in a state (e.g. queued, for limits and metrics). */
store_rc store_job_count(store *s, store_job_status st, int64_t *count);

/* Worker side: atomically move the oldest queued job to running (one
 * UPDATE ... RETURNING; sets started_at on the first claim, increments attempts)
 * and fill *out with it (freed with store_job_free). STORE_NOT_FOUND when the
 * queue is empty. Safe against any number of concurrent claimers: a job is handed
 * to exactly one. */
store_rc store_job_claim(store *s, store_job *out);

/* User side: a queued job becomes cancelled at once; a running job gets
 * cancel_requested = 1 (the worker sees it through store_job_cancel_requested and
 * finishes the job as cancelled; its metrics are kept). *status_out (may be NULL)
 * receives the status after the call. Cancelling a running job twice is fine;
 * a finished job is STORE_CONFLICT; absent STORE_NOT_FOUND. */
store_rc store_job_cancel(store *s, const char *id, store_job_status *status_out);
/* *requested = 1 when a cancel of this job was requested. */
store_rc store_job_cancel_requested(store *s, const char *id, int *requested);

/* One completed epoch, written by the worker. */
typedef struct store_epoch {
    int epoch;                 /* 1-based */
    const char *record_json;   /* the epoch's metrics object (required) */
    const void *checkpoint;    /* trainer state after this epoch; NULL = keep the old one */
    size_t checkpoint_len;
    int best_epoch;            /* 0 = none */
    int batches;               /* batches per epoch (progress becomes batches/batches) */
    const char *halted;        /* successive halving stops the trial here: the reason
                                  (set as its error, with its cancel flag); NULL = no */
} store_epoch;
/* In ONE transaction: insert or replace the metrics row (job_id, epoch) so that a
 * resumed epoch never duplicates, drop rows of later epochs (left by a run resumed
 * from an older checkpoint), replace the job's checkpoint, and update its progress,
 * best epoch and last metrics. Only for a running job: otherwise STORE_CONFLICT
 * (STORE_NOT_FOUND if absent). */
store_rc store_epoch_commit(store *s, const char *job_id, const store_epoch *e);
/* Cheap progress update of a running job (the caller may throttle it). Advisory: it
 * does not wait for another connection's lock (STORE_BUSY at once). A job that is
 * no longer running is left alone and STORE_CONFLICT returned. */
store_rc store_job_progress(store *s, const char *job_id, int epoch, int batch, int batches);

/* Finish a running job as succeeded, failed or cancelled, in one transaction:
 * error text (NULL = none), final weights (safetensors, NULL = none), test metrics
 * JSON (NULL = none); a cancelled job's checkpoint is dropped; a failed job keeps
 * its last good checkpoint for inspection, and a succeeded job its final trainer
 * state (for "init": {"from_job": id, "resume": true}, server/warmstart.h).
 * STORE_INVALID for a non-final status; STORE_CONFLICT if the job is not running. */
store_rc store_job_finish(store *s, const char *job_id, store_job_status status,
                          const char *error, const void *weights, size_t weights_len,
                          const char *test_metrics_json);
/* Graceful shutdown: a running job goes back to queued (it resumes from its
 * checkpoint). STORE_CONFLICT if it is not running. */
store_rc store_job_requeue(store *s, const char *job_id);
/* Graceful shutdown mid-epoch: in ONE transaction, store `checkpoint` (the trainer
 * stopped at batch `batch` of epoch epochs_done + 1; no metrics row is written)
 * as the job's checkpoint (its epoch is epochs_done), set the progress to that
 * batch, and put the running job back to queued. STORE_CONFLICT if it is not
 * running (nothing written); STORE_INVALID without a checkpoint. */
store_rc store_job_suspend(store *s, const char *job_id, const void *checkpoint,
                           size_t checkpoint_len, int epochs_done, int batch, int batches);

/* The latest checkpoint: *buf malloc'ed (free), *len bytes, *epoch (may be NULL).
 * STORE_NOT_FOUND if the job or the checkpoint is absent (the message says which). */
store_rc store_job_checkpoint_load(store *s, const char *job_id, void **buf, size_t *len,
                                   int *epoch);
/* The latest checkpoint read in place (incremental blob I/O, one read
 * transaction): use(user, read, src, len) may read any byte ranges of its len
 * bytes through read(src, ...), leaving its results in `user`. STORE_NOT_FOUND as
 * store_job_checkpoint_load; a failed read is the store's error, whatever use made
 * of it. */
typedef void (*store_blob_use_fn)(void *user, nn_read_at_fn read, void *src, size_t len);
store_rc store_job_checkpoint_read(store *s, const char *job_id, store_blob_use_fn use,
                                   void *user);
/* The final weights (safetensors): *buf malloc'ed (free). STORE_NOT_FOUND if the job
 * or its weights are absent. */
store_rc store_job_weights_load(store *s, const char *job_id, void **buf, size_t *len);

/* Per-epoch records after epoch `after` (0: all) in epoch order: fn is called once
 * per row with the epoch and the record's JSON text (borrowed, valid during the
 * call only, NUL-terminated). fn returning non-zero stops the walk and
 * STORE_STOPPED is returned. The walk reads one snapshot. STORE_NOT_FOUND if the
 * job is absent (a job with no epochs yet calls fn zero times). */
typedef int (*store_metrics_fn)(void *user, int epoch, const char *record_json, size_t len);
store_rc store_job_metrics(store *s, const char *job_id, int after, store_metrics_fn fn,
                           void *user);

/* Delete a finished job with its metrics, checkpoint and weights (foreign keys ON
 * DELETE CASCADE). STORE_CONFLICT if queued or running, if a queued or running
 * job starts from it (init.from_job), or if it is a sweep's trial (those go with
 * their sweep, store_sweep_delete); STORE_NOT_FOUND if absent. */
store_rc store_job_delete(store *s, const char *job_id);

/* ---------------------------------------------------------------- uploaded weights */

/* A weights resource (POST /v1/weights: a safetensors file for warm starts). On
 * store_weights_insert the caller fills tenant, name and tensors_json; the store
 * fills id ("wts_" + 26 base32), bytes, sha256 and created_at. */
typedef struct store_weights_meta {
    char id[STORE_ID_MAX];
    char tenant[STORE_TENANT_MAX];
    char name[STORE_NAME_MAX];
    char *tensors_json; /* JSON array of {"name","dtype","shape"}; malloc'ed on reads
                           (store_weights_meta_free), borrowed on insert */
    int64_t bytes;
    char sha256[STORE_SHA256_HEX];
    char created_at[STORE_TS_MAX];
} store_weights_meta;
/* Free tensors_json (a read's) and zero the struct. Accepts NULL. */
void store_weights_meta_free(store_weights_meta *m);

/* The largest value one column holds (every connection sets SQLite's length limit
 * to it: SQLite's default). An upload stored whole (weights) is capped by it. */
#define STORE_MAX_BLOB ((size_t)1000000000)

/* Store the file `data` (len bytes, already validated by the caller) and its meta
 * in one statement. STORE_LIMIT when the blob is over SQLite's size limit. */
store_rc store_weights_insert(store *s, store_weights_meta *meta, const void *data, size_t len);
/* Meta of one upload (free with store_weights_meta_free). STORE_NOT_FOUND if absent. */
store_rc store_weights_get(store *s, const char *id, store_weights_meta *out);
/* A page, newest first, as store_dataset_list; free with store_weights_list_free. */
store_rc store_weights_list(store *s, const store_list_query *q, store_weights_meta **items,
                            size_t *n, char *next_cursor);
void store_weights_list_free(store_weights_meta *items, size_t n);
/* The file: *buf malloc'ed (free). STORE_NOT_FOUND if absent. */
store_rc store_weights_load(store *s, const char *id, void **buf, size_t *len);
/* Delete an upload. STORE_CONFLICT while a queued or running job's spec names it
 * ("init": {"weights": id}); STORE_NOT_FOUND if absent. */
store_rc store_weights_delete(store *s, const char *id);

/* ---------------------------------------------------------------- sweeps
 *
 * A sweep (server/sweep.h) is a row plus one ordinary job per trial, inserted in
 * one transaction. Its counts and status come from its jobs, so a restart needs
 * nothing special. store_job_claim never starts a trial while max_parallel
 * trials of its sweep are running. */

typedef struct store_sweep {
    char id[STORE_ID_MAX];   /* "swp_" + 26 base32 characters */
    char tenant[STORE_TENANT_MAX];
    char *name;              /* malloc'ed; NULL when none */
    char *request_json;      /* malloc'ed; the accepted POST body */
    char metric[64];         /* objective metric */
    int mode_max;            /* objective mode: 1 = max, 0 = min */
    int max_parallel;        /* 0 = no cap */
    int n_trials;
    int halving_min_epochs;  /* 0 = no successive halving */
    int halving_eta;
    int cancel_requested;
    int64_t counts[STORE_JOB_STATUS_COUNT]; /* trials per job status */
    char created_at[STORE_TS_MAX];
} store_sweep;
/* Free the malloc'ed members and zero the struct. Accepts NULL. */
void store_sweep_free(store_sweep *w);
void store_sweep_list_free(store_sweep *items, size_t n);

typedef struct store_sweep_new {
    const char *tenant;             /* NULL = "" */
    const char *name;               /* NULL = none */
    const char *request_json;       /* required */
    const char *metric;             /* required, [A-Za-z0-9_]{1,63} */
    int mode_max, max_parallel, halving_min_epochs, halving_eta;
    size_t n_trials;                /* >= 1 */
    const store_job_new *trials;    /* n_trials jobs (idempotency keys ignored) */
    const char *const *trial_params; /* n_trials JSON texts {pointer: value} */
    int64_t max_queued;             /* > 0: STORE_LIMIT unless queued + n_trials fit */
} store_sweep_new;
/* Insert the sweep and all its trial jobs (queued, trial_index 0..n-1) in ONE
 * transaction: on any failure nothing is stored. *out (may be NULL) receives the
 * sweep. STORE_NOT_FOUND when a dataset does not exist. */
store_rc store_sweep_insert(store *s, const store_sweep_new *in, store_sweep *out);
/* STORE_NOT_FOUND if absent. Free *out with store_sweep_free. */
store_rc store_sweep_get(store *s, const char *id, store_sweep *out);
/* In ONE transaction: delete a sweep and all its trial jobs (with their metrics,
 * checkpoints and weights). STORE_CONFLICT while a trial is queued or running
 * (nothing is deleted); STORE_NOT_FOUND if absent. */
store_rc store_sweep_delete(store *s, const char *id);
/* Newest first, paged like store_dataset_list; free with store_sweep_list_free. */
store_rc store_sweep_list(store *s, const store_list_query *q, store_sweep **items, size_t *n,
                          char *next_cursor);

typedef struct store_idbuf {
    char id[STORE_ID_MAX];
} store_idbuf;
/* In ONE transaction: flag the sweep cancelled, cancel its queued trials and
 * request the cancel of its running ones, whose ids come back in *running
 * (malloc'ed array of *n_running, free; NULL when 0) for pool_cancel.
 * STORE_CONFLICT when every trial had already finished; STORE_NOT_FOUND if absent. */
store_rc store_sweep_cancel(store *s, const char *id, store_idbuf **running, size_t *n_running);

/* One trial of a sweep with its objective: the best value of the sweep's metric
 * over the trial's committed epochs (min or max by the sweep's mode). */
typedef struct store_trial {
    char job_id[STORE_ID_MAX];
    int index;
    store_job_status status;
    char *params_json;       /* malloc'ed {pointer: value} */
    int epochs, epochs_done;
    int has_objective;
    double objective;
    int best_epoch;          /* the epoch of that value; 0 when none */
    char *last_metrics_json; /* malloc'ed; NULL before the first epoch */
    char *error;             /* malloc'ed; NULL when none */
} store_trial;
/* The trials in trial order; free with store_trial_list_free. A trial job deleted
 * through DELETE /v1/jobs/{id} is simply absent. */
store_rc store_sweep_trials(store *s, const store_sweep *w, store_trial **items, size_t *n);
void store_trial_list_free(store_trial *items, size_t n);

/* For the worker: the halving settings of the sweep a job belongs to.
 * STORE_NOT_FOUND when the job is not a trial. */
typedef struct store_job_sweep {
    char sweep_id[STORE_ID_MAX];
    char metric[64];
    int mode_max, halving_min_epochs, halving_eta;
} store_job_sweep;
store_rc store_job_sweep_get(store *s, const char *job_id, store_job_sweep *out);
/* The values of `metric` at `epoch` of every trial of the sweep but `except_job`
 * that committed that epoch: *values malloc'ed (free; NULL when none), *n of
 * them. */
store_rc store_sweep_rung_values(store *s, const char *sweep_id, int epoch, const char *metric,
                                 const char *except_job, double **values, int *n);

/* ---------------------------------------------------------------- operations */

/* A consistent copy of the whole database into a new file `dest_path` (which must
 * not exist: STORE_CONFLICT), taken with SQLite's online backup API on this
 * handle. The copy is one snapshot: a read transaction is held while pages are
 * copied in chunks; in WAL mode writers on other connections go on meanwhile
 * (only checkpoints wait). It is written to "DEST.tmp" first, synced, then renamed,
 * so a reader never sees a half-written backup. *bytes (may be NULL) receives the
 * backup's size. The copy is a complete fitd database: start fitd on it to restore. */
store_rc store_backup(store *s, const char *dest_path, int64_t *bytes);

/* Retention: delete every finished job (succeeded, failed, cancelled) whose
 * finished_at is before `before_unix_s` (seconds since the epoch, fractions
 * allowed), with its metrics, checkpoint and weights (ON DELETE CASCADE), in one
 * statement; then the sweeps left without trials, in the same transaction. Queued
 * and running jobs are never touched. *n_deleted (jobs) may be NULL. */
store_rc store_jobs_prune(store *s, double before_unix_s, int64_t *n_deleted);

/* ---------------------------------------------------------------- fault injection */

/* Tests only. Cap the database at n_pages pages (PRAGMA max_page_count) so that
 * writes fail with STORE_FULL; 0 restores the default cap. */
store_rc store_test_set_max_pages(store *s, int64_t n_pages);
/* Tests only. Every store_open from now on in this process applies
 * store_test_set_max_pages(n_pages) to its new connection (0 = off). fitd sets it
 * from FITD_TEST_MAX_PAGES (server/main.c) so that a test can fill the disk. */
void store_test_set_open_max_pages(int64_t n_pages);
/* Tests only. The n-th statement step (or blob open or read) from now on this
 * handle fails as if SQLite returned the error behind `rc` (STORE_FULL,
 * STORE_BUSY, STORE_CORRUPT or, for anything else, an I/O error); 0 disables.
 * Transaction control (COMMIT included) counts as a step; ROLLBACK does not. */
void store_test_fail_after(store *s, int n, store_rc rc);
/* Tests only. Bytes per stored dataset chunk (default 16 MiB); 0 restores it. */
void store_test_set_chunk_bytes(store *s, size_t n_bytes);

#endif
