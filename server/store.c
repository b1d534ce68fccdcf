/*
 * store.c — the SQLite implementation of store.h.
 *
 * Every statement is a static string in stmt_sql[], prepared on first use per
 * connection (SQLITE_PREPARE_PERSISTENT), bound with sqlite3_bind_*, stepped
 * through step() (where the test fault hook lives, as for the blob reads that
 * take stored weights and checkpoints in place) and reset right after use, so
 * no statement keeps a read transaction open between calls. Multi-statement writes
 * run inside BEGIN IMMEDIATE (the write lock is taken up front, so a WAL snapshot
 * can never go stale under us and the busy timeout applies) and roll back on any
 * failure.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <nettle/sha2.h>
#include <sqlite3.h>

#include "digest.h"
#include "embedded.h"
#include "store.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
#define BUSY_TIMEOUT_MS 5000
#define STORE_CACHE_KIB "128" /* page cache per connection (PRAGMA cache_size = -N) */
#define CHUNK_BYTES_DEFAULT ((size_t)16 << 20)
#define MIGRATIONS_MAX 512

/* ---------------------------------------------------------------- statements */

enum {
    ST_BEGIN,
    ST_BEGIN_IMMEDIATE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PING,
    ST_DB_BYTES,
    ST_MIG_TABLE_EXISTS,
    ST_MIG_MAX,
    ST_MIG_HAS,
    ST_MIG_INSERT,
    ST_DS_INSERT,
    ST_DS_CHUNK_INSERT,
    ST_DS_GET,
    ST_DS_LIST,
    ST_DS_CHUNKS,
    ST_DS_EXISTS,
    ST_JOB_INIT_MISSING,
    ST_DS_IN_USE,
    ST_DS_DELETE,
    ST_JOB_INSERT,
    ST_JOB_BY_KEY,
    ST_JOB_COUNT,
    ST_JOB_GET,
    ST_JOB_LIST,
    ST_JOB_CLAIM,
    ST_JOB_STATE,
    ST_JOB_CANCEL_QUEUED,
    ST_JOB_CANCEL_RUNNING,
    ST_EPOCH_JOB,
    ST_EPOCH_METRIC,
    ST_EPOCH_TRIM,
    ST_CKPT_PUT,
    ST_CKPT_GET,
    ST_CKPT_DELETE,
    ST_CKPT_DELETE_CANCELLED,
    ST_JOB_PROGRESS,
    ST_JOB_FINISH,
    ST_WEIGHTS_PUT,
    ST_WEIGHTS_GET,
    ST_JOB_REQUEUE,
    ST_JOB_SUSPEND,
    ST_RECOVER_CANCELLED,
    ST_RECOVER_COUNT_CRASHES,
    ST_RECOVER_FAIL_CRASHED,
    ST_RECOVER_QUEUED,
    ST_METRICS,
    ST_JOB_DELETE,
    ST_SWEEP_INSERT,
    ST_JOB_TRIAL,
    ST_SWEEP_GET,
    ST_SWEEP_LIST,
    ST_SWEEP_FLAG_CANCEL,
    ST_SWEEP_CANCEL_QUEUED,
    ST_SWEEP_CANCEL_RUNNING,
    ST_SWEEP_TRIALS,
    ST_SWEEP_OF_JOB,
    ST_SWEEP_RUNG,
    ST_SWEEP_DELETE_JOBS,
    ST_SWEEP_DELETE,
    ST_SWEEPS_PRUNE,
    ST_WTS_INSERT,
    ST_WTS_GET,
    ST_WTS_LIST,
    ST_WTS_DATA,
    ST_WTS_DELETE,
    ST_JOBS_PRUNE,
    ST_COUNT
};

/* Column order shared by the dataset readers (read_dataset). */
#define DS_COLS                                                                              \
    "seq, id, tenant, name, format, n_samples, input_shape, x_width, y_width, y_integer, " \
    "n_classes, bytes, sha256, created_at, y_min, y_max"

/* Column order shared by every job reader (read_job), SELECT and RETURNING alike. */
#define JOB_COLS                                                                               \
    "seq, id, tenant, status, name, spec, train_dataset_id, validation_dataset_id, "           \
    "test_dataset_id, epochs, epoch, batch, batches, epochs_done, best_epoch, attempts, "     \
    "cancel_requested, "                                                                       \
    "(SELECT epoch FROM job_checkpoints WHERE job_checkpoints.job_id = jobs.id), "            \
    "EXISTS (SELECT 1 FROM job_weights WHERE job_weights.job_id = jobs.id), "                 \
    "last_metrics, error, test_metrics, idempotency_key, created_at, started_at, finished_at, " \
    "updated_at, sweep_id"

#define FINISHED_SET "('succeeded', 'failed', 'cancelled')"
/* Not the init.from_job of a queued or running job. The sub-select does not depend
 * on the outer row, so SQLite builds the list once per statement, not per row. */
#define NOT_A_SOURCE(id) "(" id " NOT IN (SELECT json_extract(d.spec, '$.init.from_job') " \
                         "FROM jobs AS d WHERE d.status IN ('queued', 'running') " \
                         "AND json_extract(d.spec, '$.init.from_job') IS NOT NULL))"

/* A finished job of table alias t that ended before ?1 (unix seconds) and that no
 * queued or running job starts from: retention may delete it. */
#define PRUNABLE(t)                                                                           \
    t ".status IN " FINISHED_SET " AND " NOT_A_SOURCE(t ".id") " AND " t                      \
    ".finished_at IS NOT NULL AND " t ".finished_at <> '' AND " t ".finished_at < "           \
    "strftime('%Y-%m-%dT%H:%M:%fZ', ?1, 'unixepoch')"

/* Column order of read_sweep: the sweep and its trial counts per job status. */
#define SWEEP_COUNT(st) \
    "(SELECT count(*) FROM jobs WHERE jobs.sweep_id = sweeps.id AND jobs.status = '" st "')"
#define SWEEP_COLS                                                                           \
    "seq, id, tenant, name, request, objective_metric, objective_mode, max_parallel, "        \
    "n_trials, halving_min_epochs, halving_eta, cancel_requested, created_at, "               \
    SWEEP_COUNT("queued") ", " SWEEP_COUNT("running") ", " SWEEP_COUNT("succeeded") ", "      \
    SWEEP_COUNT("failed") ", " SWEEP_COUNT("cancelled")

/* Column order of the weights readers (read_weights). */
#define WTS_COLS "seq, id, tenant, name, tensors, bytes, sha256, created_at"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT count(*) FROM sqlite_master",
    [ST_DB_BYTES] = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    [ST_MIG_TABLE_EXISTS] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    [ST_MIG_MAX] = "SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1",
    [ST_MIG_HAS] = "SELECT 1 FROM schema_migrations WHERE version = ?1",
    [ST_MIG_INSERT] =
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, " NOW ")",
    [ST_DS_INSERT] = "INSERT INTO datasets (id, tenant, name, format, n_samples, input_shape, "
                     "x_width, y_width, y_integer, n_classes, bytes, sha256, y_min, y_max, "
                     "created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, " NOW ") "
                     "RETURNING created_at",
    [ST_DS_CHUNK_INSERT] =
        "INSERT INTO dataset_chunks (dataset_id, part, chunk, data) VALUES (?1, ?2, ?3, ?4)",
    [ST_DS_GET] = "SELECT " DS_COLS " FROM datasets WHERE id = ?1",
    [ST_DS_LIST] = "SELECT " DS_COLS " FROM datasets WHERE (?1 IS NULL OR tenant = ?1) "
                   "AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [ST_DS_CHUNKS] =
        "SELECT chunk, data FROM dataset_chunks WHERE dataset_id = ?1 AND part = ?2 ORDER BY chunk",
    [ST_DS_EXISTS] = "SELECT 1 FROM datasets WHERE id = ?1",
    /* What a job spec's init names and no longer exists: NULL when all is there. */
    [ST_JOB_INIT_MISSING] =
        "SELECT CASE WHEN json_extract(?1, '$.init.weights') IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM weights WHERE id = json_extract(?1, '$.init.weights')) "
        "THEN 'init.weights ' || json_extract(?1, '$.init.weights') "
        "WHEN json_extract(?1, '$.init.from_job') IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM jobs WHERE id = json_extract(?1, '$.init.from_job')) "
        "THEN 'init.from_job ' || json_extract(?1, '$.init.from_job') END",
    [ST_DS_IN_USE] = "SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ('queued', 'running') "
                     "AND (train_dataset_id = ?1 OR validation_dataset_id = ?1 "
                     "OR test_dataset_id = ?1))",
    [ST_DS_DELETE] = "DELETE FROM datasets WHERE id = ?1",
    [ST_JOB_INSERT] = "INSERT INTO jobs (id, tenant, name, status, spec, train_dataset_id, "
                      "validation_dataset_id, test_dataset_id, epochs, idempotency_key, body_hash, "
                      "created_at, updated_at) "
                      "VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10, " NOW ", " NOW ")",
    [ST_JOB_BY_KEY] = "SELECT id, body_hash FROM jobs WHERE tenant = ?1 AND idempotency_key = ?2",
    [ST_JOB_COUNT] = "SELECT count(*) FROM jobs WHERE status = ?1",
    [ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE (?1 IS NULL OR tenant = ?1) "
                    "AND (?2 IS NULL OR status = ?2) AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
    /* The whole claim is this one statement: the sub-select and the update run
     * under the same write lock, so two claimers can never get the same row. */
    [ST_JOB_CLAIM] = "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                     "started_at = COALESCE(started_at, " NOW "), updated_at = " NOW " "
                     "WHERE status = 'queued' AND seq = (SELECT q.seq FROM jobs q "
                     "WHERE q.status = 'queued' AND (q.sweep_id IS NULL OR NOT EXISTS "
                     /* a sweep's max_parallel: skip trials of a sweep at its cap */
                     "(SELECT 1 FROM sweeps w WHERE w.id = q.sweep_id AND w.max_parallel > 0 "
                     "AND w.max_parallel <= (SELECT count(*) FROM jobs r "
                     "WHERE r.sweep_id = q.sweep_id AND r.status = 'running'))) "
                     "ORDER BY q.seq LIMIT 1) RETURNING " JOB_COLS,
    [ST_JOB_STATE] = "SELECT status, cancel_requested FROM jobs WHERE id = ?1",
    [ST_JOB_CANCEL_QUEUED] = "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, "
                             "finished_at = " NOW ", updated_at = " NOW " "
                             "WHERE id = ?1 AND status = 'queued'",
    [ST_JOB_CANCEL_RUNNING] = "UPDATE jobs SET cancel_requested = 1, updated_at = " NOW " "
                              "WHERE id = ?1 AND status = 'running'",
    [ST_EPOCH_JOB] = "UPDATE jobs SET epoch = ?2, epochs_done = ?2, batch = ?3, batches = ?3, "
                     "best_epoch = ?4, last_metrics = ?5, crashes = 0, "
                     "cancel_requested = max(cancel_requested, ?6 IS NOT NULL), "
                     "error = coalesce(?6, error), updated_at = " NOW " "
                     "WHERE id = ?1 AND status = 'running'",
    [ST_EPOCH_METRIC] = "INSERT OR REPLACE INTO job_metrics (job_id, epoch, record, created_at) "
                        "VALUES (?1, ?2, ?3, " NOW ")",
    [ST_EPOCH_TRIM] = "DELETE FROM job_metrics WHERE job_id = ?1 AND epoch > ?2",
    [ST_CKPT_PUT] = "INSERT OR REPLACE INTO job_checkpoints (job_id, epoch, data, created_at) "
                    "VALUES (?1, ?2, ?3, " NOW ")",
    [ST_CKPT_GET] = "SELECT rowid, epoch FROM job_checkpoints WHERE job_id = ?1",
    [ST_CKPT_DELETE] = "DELETE FROM job_checkpoints WHERE job_id = ?1",
    /* A failed job keeps its last good checkpoint (readable after the failure), a
     * succeeded job its final state (resumable for more epochs: warmstart.h). */
    [ST_CKPT_DELETE_CANCELLED] = "DELETE FROM job_checkpoints WHERE job_id IN "
                                 "(SELECT id FROM jobs WHERE status = 'cancelled' "
                                 "AND (?1 IS NULL OR sweep_id = ?1))", /* ?1: a sweep, or all */
    [ST_JOB_PROGRESS] = "UPDATE jobs SET epoch = ?2, batch = ?3, batches = ?4, updated_at = " NOW
                        " WHERE id = ?1 AND status = 'running'",
    /* A success's progress is its last epoch, whole (a job resumed after its last
     * epoch's commit was requeued at batch 0 of it). */
    [ST_JOB_FINISH] = "UPDATE jobs SET status = ?2, error = ?3, test_metrics = ?4, "
                      "epoch = iif(?2 = 'succeeded', epochs_done, epoch), "
                      "batch = iif(?2 = 'succeeded', batches, batch), "
                      "finished_at = " NOW ", updated_at = " NOW " "
                      "WHERE id = ?1 AND status = 'running'",
    [ST_WEIGHTS_PUT] = "INSERT OR REPLACE INTO job_weights (job_id, data, created_at) "
                       "VALUES (?1, ?2, " NOW ")",
    [ST_WEIGHTS_GET] = "SELECT rowid FROM job_weights WHERE job_id = ?1",
    [ST_JOB_REQUEUE] = "UPDATE jobs SET status = 'queued', epoch = epochs_done, batch = 0, "
                       "updated_at = " NOW " WHERE id = ?1 AND status = 'running'",
    [ST_JOB_SUSPEND] = "UPDATE jobs SET status = 'queued', epoch = ?2, batch = ?3, batches = ?4, "
                       "updated_at = " NOW " WHERE id = ?1 AND status = 'running'",
    /* Queued too: a running job whose cancel came as a shutdown requeued it (else
     * its next claim would load its data only to be cancelled). */
    [ST_RECOVER_CANCELLED] = "UPDATE jobs SET status = 'cancelled', finished_at = " NOW ", "
                             "updated_at = " NOW " "
                             "WHERE status IN ('running', 'queued') AND cancel_requested <> 0",
    /* Deaths since the job's last committed epoch (an epoch commit sets crashes to
     * 0): a job that kills the process (out of memory, a crash) dies at the same
     * place on every retry. */
    [ST_RECOVER_COUNT_CRASHES] = "UPDATE jobs SET crashes = crashes + 1 WHERE status = 'running'",
    [ST_RECOVER_FAIL_CRASHED] =
        "UPDATE jobs SET status = 'failed', error = printf('fitd stopped %d time%s (killed or "
        "crashed) while this job was %s; not retried (fitd serve --crash-limit %d)', crashes, "
        "CASE WHEN crashes = 1 THEN '' ELSE 's' END, "
        "CASE WHEN epochs_done >= epochs THEN 'finishing after its last epoch' "
        "WHEN epochs_done = 0 THEN 'running, before its first epoch completed' "
        "ELSE printf('running, after epoch %d and before another completed', epochs_done) END, "
        "?1), "
        "finished_at = " NOW ", updated_at = " NOW " "
        "WHERE status = 'running' AND ?1 > 0 AND crashes >= ?1",
    [ST_RECOVER_QUEUED] = "UPDATE jobs SET status = 'queued', epoch = epochs_done, batch = 0, "
                          "updated_at = " NOW " WHERE status = 'running'",
    [ST_METRICS] = "SELECT epoch, record FROM job_metrics WHERE job_id = ?1 AND epoch > ?2 ORDER BY epoch",
    /* A finished job that no queued or running job starts from (init.from_job in its
     * resolved spec, an exact path) — that job would fail when a worker claims it. */
    /* A sweep's trials go with their sweep (store_sweep_delete): its ranking and
     * best trial would change without a trace. */
    [ST_JOB_DELETE] = ("DELETE FROM jobs WHERE id = ?1 AND status IN " FINISHED_SET
                       " AND sweep_id IS NULL AND " NOT_A_SOURCE("?1")),
    [ST_SWEEP_INSERT] = "INSERT INTO sweeps (id, tenant, name, request, objective_metric, "
                        "objective_mode, max_parallel, n_trials, halving_min_epochs, halving_eta, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, " NOW ")",
    [ST_JOB_TRIAL] = "UPDATE jobs SET sweep_id = ?2, trial_index = ?3, trial_params = ?4 "
                     "WHERE id = ?1",
    [ST_SWEEP_GET] = "SELECT " SWEEP_COLS " FROM sweeps WHERE id = ?1",
    /* All of a sweep's trials, or none while one is unfinished; then the sweep, once
     * no trial refers to it. */
    [ST_SWEEP_DELETE_JOBS] = "DELETE FROM jobs WHERE sweep_id = ?1 AND NOT EXISTS (SELECT 1 "
                             "FROM jobs WHERE sweep_id = ?1 AND (status NOT IN " FINISHED_SET
                             " OR NOT " NOT_A_SOURCE("jobs.id") "))",
    [ST_SWEEP_DELETE] = "DELETE FROM sweeps WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM jobs "
                        "WHERE sweep_id = ?1)",
    [ST_SWEEPS_PRUNE] = "DELETE FROM sweeps WHERE NOT EXISTS (SELECT 1 FROM jobs "
                        "WHERE sweep_id = sweeps.id)",
    [ST_SWEEP_LIST] = "SELECT " SWEEP_COLS " FROM sweeps WHERE (?1 IS NULL OR tenant = ?1) "
                      "AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [ST_SWEEP_FLAG_CANCEL] = "UPDATE sweeps SET cancel_requested = 1 WHERE id = ?1",
    [ST_SWEEP_CANCEL_QUEUED] = "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, "
                               "error = 'the sweep was cancelled', finished_at = " NOW ", "
                               "updated_at = " NOW " WHERE sweep_id = ?1 AND status = 'queued'",
    [ST_SWEEP_CANCEL_RUNNING] = "UPDATE jobs SET cancel_requested = 1, updated_at = " NOW " "
                                "WHERE sweep_id = ?1 AND status = 'running' RETURNING id",
    /* ?2 is the JSON path of the objective metric, ?3 1 for "max": the best epoch
     * and value of each trial, earliest epoch on ties. */
    [ST_SWEEP_TRIALS] =
        "SELECT t.*, (SELECT json_extract(v.record, ?2) FROM job_metrics v "
        "WHERE v.job_id = t.id AND v.epoch = t.best) FROM "
        "(SELECT j.id, j.trial_index, j.status, j.trial_params, j.epochs, j.epochs_done, "
        "j.last_metrics, j.error, "
        "(SELECT m.epoch FROM job_metrics m WHERE m.job_id = j.id "
        " AND json_type(m.record, ?2) IN ('integer', 'real') ORDER BY "
        " CASE WHEN ?3 THEN -json_extract(m.record, ?2) ELSE json_extract(m.record, ?2) END, "
        " m.epoch LIMIT 1) AS best "
        "FROM jobs j WHERE j.sweep_id = ?1) t ORDER BY t.trial_index",
    [ST_SWEEP_OF_JOB] = "SELECT s.id, s.objective_metric, s.objective_mode, s.halving_min_epochs, "
                        "s.halving_eta FROM jobs j JOIN sweeps s ON s.id = j.sweep_id "
                        "WHERE j.id = ?1",
    [ST_SWEEP_RUNG] = "SELECT json_extract(m.record, ?3) FROM job_metrics m "
                      "JOIN jobs j ON j.id = m.job_id WHERE j.sweep_id = ?1 AND m.epoch = ?2 "
                      "AND json_type(m.record, ?3) IN ('integer', 'real') AND m.job_id <> ?4",
    [ST_WTS_INSERT] = "INSERT INTO weights (id, tenant, name, tensors, bytes, sha256, data, "
                      "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " NOW ") RETURNING created_at",
    [ST_WTS_GET] = "SELECT " WTS_COLS " FROM weights WHERE id = ?1",
    [ST_WTS_LIST] = "SELECT " WTS_COLS " FROM weights WHERE (?1 IS NULL OR tenant = ?1) "
                    "AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [ST_WTS_DATA] = "SELECT rowid FROM weights WHERE id = ?1",
    /* In use = named by the spec of a queued or running job (the stored spec is
     * the resolved rendering, so the path is exact). */
    [ST_WTS_DELETE] = "DELETE FROM weights WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM jobs "
                      "WHERE status IN ('queued', 'running') "
                      "AND json_extract(spec, '$.init.weights') = ?1)",
    /* A sweep's trials go all together or not at all (a trial pruned alone would
     * change the sweep's ranking untraced): every trial of it must be prunable. */
    [ST_JOBS_PRUNE] = "DELETE FROM jobs WHERE " PRUNABLE("jobs")
                      " AND (sweep_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS k "
                      "WHERE k.sweep_id = jobs.sweep_id AND NOT (" PRUNABLE("k") ")))",
};

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST_COUNT];
    char errmsg[512];
    int fail_after; /* test hook: steps until an injected failure; 0 = off */
    int fail_code;  /* the SQLite code injected */
    size_t chunk_bytes;
    int64_t default_max_pages; /* remembered by store_test_set_max_pages */
    int lock_fd;               /* store_lock_serving's lock file, or -1 */
};

/* store_test_set_open_max_pages: applied by every store_open (tests only). */
static _Atomic int64_t open_max_pages;

void store_test_set_open_max_pages(int64_t n_pages)
{
    atomic_store(&open_max_pages, n_pages > 0 ? n_pages : 0);
}

/* ---------------------------------------------------------------- errors */

static store_rc set_err(store *s, store_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static store_rc set_err(store *s, store_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

static store_rc map_sqlite(int code)
{
    switch (code & 0xff) {
    case SQLITE_OK: return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return STORE_BUSY;
    case SQLITE_FULL: return STORE_FULL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return STORE_CORRUPT;
    case SQLITE_NOMEM: return STORE_NOMEM;
    case SQLITE_TOOBIG: return STORE_LIMIT;
    case SQLITE_CONSTRAINT:
        return code == SQLITE_CONSTRAINT_FOREIGNKEY ? STORE_NOT_FOUND : STORE_CONFLICT;
    default: return STORE_ERROR;
    }
}

/* Record a SQLite failure of `what` and return its store_rc. The connection's
 * message is used when it belongs to this failure (an injected one has none). */
static store_rc sql_fail(store *s, int code, const char *what)
{
    const char *msg = sqlite3_extended_errcode(s->db) == code ? sqlite3_errmsg(s->db)
                                                              : sqlite3_errstr(code);
    store_rc rc = map_sqlite(code);
    if (rc == STORE_OK) rc = STORE_ERROR; /* a caller saw something unexpected */
    if (rc == STORE_CORRUPT)
        return set_err(s, rc, "%s: %s: %s (file is not a SQLite database or is damaged)", s->path,
                       what, msg);
    if (rc == STORE_FULL)
        return set_err(s, rc, "%s: %s: %s (disk full)", s->path, what, msg);
    return set_err(s, rc, "%s: %s", what, msg);
}

#define BIND(call)                                                \
    do {                                                          \
        int brc_ = (call);                                        \
        if (brc_ != SQLITE_OK) {                                  \
            rc = sql_fail(s, brc_, "bind");                       \
            goto out;                                             \
        }                                                         \
    } while (0)

const char *store_rc_name(store_rc rc)
{
    switch (rc) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not_found";
    case STORE_CONFLICT: return "conflict";
    case STORE_BUSY: return "busy";
    case STORE_FULL: return "full";
    case STORE_CORRUPT: return "corrupt";
    case STORE_INVALID: return "invalid";
    case STORE_LIMIT: return "limit";
    case STORE_NOMEM: return "nomem";
    case STORE_STOPPED: return "stopped";
    case STORE_ERROR: return "error";
    }
    return "unknown";
}

const char *store_errmsg(const store *s)
{
    return s ? s->errmsg : "no store";
}

const char *store_path(const store *s)
{
    return s ? s->path : "";
}

/* ---------------------------------------------------------------- statement helpers */

static store_rc prep(store *s, int id, sqlite3_stmt **out)
{
    *out = NULL;
    if (!s->stmt[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            s->stmt[id] = NULL;
            return sql_fail(s, rc, "prepare");
        }
    }
    *out = s->stmt[id];
    return STORE_OK;
}

/* Reset a cached statement after use (ends its implicit read, drops bindings). */
static void done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* The test fault hook: the SQLite code to fail this step or blob read with, or 0. */
static int injected(store *s)
{
    return s->fail_after > 0 && --s->fail_after == 0 ? s->fail_code : 0;
}

static int step(store *s, sqlite3_stmt *st)
{
    int code = injected(s);
    return code ? code : sqlite3_step(st);
}

/* Run a statement that returns no rows (or whose rows are ignored) to the end. */
static store_rc run_done(store *s, sqlite3_stmt *st, const char *what)
{
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return sql_fail(s, rc, what);
    return STORE_OK;
}

static store_rc run_plain(store *s, int id, const char *what)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, id, &st);
    if (rc == STORE_OK) rc = run_done(s, st, what);
    done(st);
    return rc;
}

/* One statement that takes a single text parameter (an id) and returns no rows. */
static store_rc run_id(store *s, int id, const char *text, const char *what)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, id, &st);
    if (rc == STORE_OK) {
        int brc = sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        rc = brc == SQLITE_OK ? run_done(s, st, what) : sql_fail(s, brc, "bind");
    }
    done(st);
    return rc;
}

static store_rc tx_begin(store *s, int immediate)
{
    return run_plain(s, immediate ? ST_BEGIN_IMMEDIATE : ST_BEGIN, "begin");
}

static store_rc tx_commit(store *s)
{
    return run_plain(s, ST_COMMIT, "commit");
}

/* Roll back if a transaction is open. Not subject to fault injection: it is the
 * recovery path. Keeps the first error message. */
static void tx_rollback(store *s)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_get_autocommit(s->db)) return;
    if (prep(s, ST_ROLLBACK, &st) != STORE_OK) return;
    sqlite3_step(st);
    done(st);
}

static int bind_text_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (!v) return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* NaN (unknown) is stored as NULL, and read back as NaN. */
static int bind_real_opt(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

static double col_real_opt(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* "" and NULL both mean "none". */
static int bind_text_none(sqlite3_stmt *st, int i, const char *v)
{
    return bind_text_opt(st, i, (v && *v) ? v : NULL);
}

static void col_fixed(sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(buf, t, n);
    buf[n] = '\0';
}

/* A malloc'ed copy of a text column, *out = NULL for SQL NULL. */
static store_rc col_dup(store *s, sqlite3_stmt *st, int col, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return STORE_OK;
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t) return set_err(s, STORE_NOMEM, "out of memory reading a column");
    char *p = malloc(n + 1);
    if (!p) return set_err(s, STORE_NOMEM, "out of memory reading a column");
    memcpy(p, t, n);
    p[n] = '\0';
    *out = p;
    return STORE_OK;
}

static int fits(const char *str, size_t size)
{
    return str && strlen(str) < size;
}

/* ---------------------------------------------------------------- ids and cursors */

static const char b32_alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz"; /* Crockford */

store_rc store_new_id(const char *prefix, char *buf, size_t len)
{
    unsigned char r[16];
    size_t plen = prefix ? strlen(prefix) : 0;
    if (!buf || len < plen + 27) return STORE_INVALID;
    for (size_t got = 0; got < sizeof r;) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return STORE_ERROR;
        }
        got += (size_t)k;
    }
    if (plen) memcpy(buf, prefix, plen);
    /* 26 groups of 5 bits cover the 128 bits (the last group is zero-padded). */
    for (int i = 0; i < 26; i++) {
        unsigned v = 0;
        for (int b = 0; b < 5; b++) {
            int bit = i * 5 + b;
            unsigned x = bit < 128 ? (r[bit / 8] >> (7 - bit % 8)) & 1u : 0u;
            v = (v << 1) | x;
        }
        buf[plen + (size_t)i] = b32_alphabet[v];
    }
    buf[plen + 26] = '\0';
    return STORE_OK;
}

/* Cursors are base64url("v2:<list>:<seq>"): opaque to clients, checked on the way
 * in (another version is refused as malformed). */
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Bound to the list that made it, so a jobs cursor given to /v1/datasets is
 * refused rather than read as a position. */
static void cursor_encode(const char *list, int64_t seq, char *out)
{
    char raw[48];
    int n = snprintf(raw, sizeof raw, "v2:%s:%lld", list, (long long)seq);
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)raw[i] << 16;
        if (i + 1 < n) v |= (unsigned char)raw[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)raw[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

/* *seq = INT64_MAX for no cursor; STORE_INVALID for a malformed one or one that
 * another list made. */
static store_rc cursor_decode(store *s, const char *list, const char *cursor, int64_t *seq)
{
    char raw[48];
    size_t n = 0, len, head = strlen(list) + 4;
    unsigned acc = 0;
    int bits = 0;
    *seq = INT64_MAX;
    if (!cursor || !*cursor) return STORE_OK;
    len = strlen(cursor);
    if (len >= STORE_CURSOR_MAX) goto bad;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(b64url, cursor[i]);
        if (!p || !cursor[i]) goto bad;
        acc = (acc << 6) | (unsigned)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= sizeof raw) goto bad;
            raw[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    raw[n] = '\0';
    if (n < 4 || memcmp(raw, "v2:", 3) != 0) goto bad;
    if (n <= head || strncmp(raw + 3, list, head - 4) != 0 || raw[head - 1] != ':')
        return set_err(s, STORE_INVALID, "invalid cursor: it is not one of this list's (%s)", list);
    int64_t v = 0;
    for (size_t i = head; i < n; i++) {
        if (raw[i] < '0' || raw[i] > '9' || v > (INT64_MAX - 9) / 10) goto bad;
        v = v * 10 + (raw[i] - '0');
    }
    if (v <= 0) goto bad;
    *seq = v;
    return STORE_OK;
bad:
    return set_err(s, STORE_INVALID, "invalid cursor");
}

static int clamp_limit(int limit)
{
    if (limit <= 0) return STORE_LIST_DEFAULT;
    return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

/* Room for item n of a growing array of *cap items of `size` bytes: returns arr
 * itself while n < *cap, else arr realloc'ed to twice *cap (16 at first) with *cap
 * updated. NULL with STORE_NOMEM set when out of memory; arr is then unchanged
 * and still the caller's to free. */
static void *grow_array(store *s, void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return arr;
    size_t c = *cap ? *cap * 2 : 16;
    void *more = c <= SIZE_MAX / size ? realloc(arr, c * size) : NULL;
    if (!more) {
        set_err(s, STORE_NOMEM, "out of memory");
        return NULL;
    }
    *cap = c;
    return more;
}

/* ---------------------------------------------------------------- rows by id, pages */

/* How one resource's rows are read: the readers fill an item from the current
 * row (and its list position into *seq when seq is not NULL); on failure the
 * item holds nothing to free. `clear` frees a read item's fields (NULL: none). */
typedef struct row_kind {
    const char *noun;   /* "job": "job <id> not found", "read job" */
    const char *plural; /* "jobs": "list jobs" */
    size_t size;        /* bytes of one item */
    store_rc (*read)(store *s, sqlite3_stmt *st, void *item, int64_t *seq);
    void (*clear)(void *item);
} row_kind;

/* Free an array of n read items (the list_free of every resource). */
static void free_rows(void *items, size_t n, const row_kind *k)
{
    for (size_t i = 0; items && k->clear && i < n; i++) k->clear((char *)items + i * k->size);
    free(items);
}

/* The row a single-id statement returns, read into *out (zeroed first). */
static store_rc get_row(store *s, int id, const char *text, const row_kind *k, void *out)
{
    sqlite3_stmt *st = NULL;
    char what[48];
    memset(out, 0, k->size);
    store_rc rc = prep(s, id, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code == SQLITE_DONE) {
        rc = set_err(s, STORE_NOT_FOUND, "%s %s not found", k->noun, text);
    } else if (code != SQLITE_ROW) {
        snprintf(what, sizeof what, "read %s", k->noun);
        rc = sql_fail(s, code, what);
    } else {
        rc = k->read(s, st, out, NULL);
    }
out:
    done(st);
    return rc;
}

/* One page of a list statement, newest first. Its parameters are the n_texts
 * optional filters (NULL binds NULL: no filter), then the cursor's position and
 * limit + 1 (the one more row tells whether a next page exists). On success
 * *items is a malloc'ed array of *n items (NULL when none; the resource's
 * list_free releases it) and next_cursor the next page's cursor ("" on the
 * last); on failure *items is NULL and *n 0. */
static store_rc list_page(store *s, int id, const char *const *texts, int n_texts,
                          const store_list_query *q, const row_kind *k, void **items, size_t *n,
                          char *next_cursor)
{
    sqlite3_stmt *st = NULL;
    char *arr = NULL;
    int64_t after = INT64_MAX, last_seq = 0;
    int limit = clamp_limit(q ? q->limit : 0);
    size_t count = 0;
    int code, more = 0;
    char what[48];
    store_rc rc;

    *items = NULL;
    *n = 0;
    if (next_cursor) next_cursor[0] = '\0';
    if ((rc = cursor_decode(s, k->plural, q ? q->cursor : NULL, &after)) != STORE_OK) return rc;
    if (!(arr = calloc((size_t)limit, k->size))) return set_err(s, STORE_NOMEM, "out of memory");
    if ((rc = prep(s, id, &st)) != STORE_OK) goto out;
    for (int i = 0; i < n_texts; i++) BIND(bind_text_opt(st, i + 1, texts[i]));
    BIND(sqlite3_bind_int64(st, n_texts + 1, after));
    BIND(sqlite3_bind_int(st, n_texts + 2, limit + 1));
    while ((code = step(s, st)) == SQLITE_ROW) {
        if (count == (size_t)limit) {
            more = 1;
            break;
        }
        if ((rc = k->read(s, st, arr + count * k->size, &last_seq)) != STORE_OK) goto out;
        count++;
    }
    if (code != SQLITE_ROW && code != SQLITE_DONE) {
        snprintf(what, sizeof what, "list %s", k->plural);
        rc = sql_fail(s, code, what);
        goto out;
    }
    if (more && next_cursor) cursor_encode(k->plural, last_seq, next_cursor);
    if (count) {
        *items = arr;
        arr = NULL;
    }
    *n = count;
    count = 0;
out:
    done(st);
    free_rows(arr, count, k);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

static store_rc pragma_exec(store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        store_rc r = map_sqlite(rc);
        if (r == STORE_CORRUPT)
            set_err(s, r, "%s: file is not a SQLite database or is damaged (%s)", s->path,
                    msg ? msg : sqlite3_errstr(rc));
        else
            set_err(s, r, "%s: %s: %s", s->path, sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return r;
    }
    return STORE_OK;
}

/* PRAGMA journal_mode=WAL answers with the mode now in force. */
static store_rc set_wal(store *s)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = STORE_OK;
    int code = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (code == SQLITE_OK) code = sqlite3_step(st);
    if (code == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            rc = set_err(s, STORE_ERROR, "%s: cannot enable WAL mode (journal mode is %s)",
                         s->path, mode ? mode : "?");
    } else {
        store_rc r = map_sqlite(code);
        if (r == STORE_OK) r = STORE_ERROR;
        if (r == STORE_CORRUPT)
            rc = set_err(s, r, "%s: file is not a SQLite database or is damaged (%s)", s->path,
                         sqlite3_errmsg(s->db));
        else
            rc = set_err(s, r, "%s: cannot enable WAL mode: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return rc;
}

store *store_open(const char *path, char *errbuf, size_t errlen)
{
    store *s = NULL;
    if (errbuf && errlen) errbuf[0] = '\0';
    if (!path || !*path) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "no database path given");
        return NULL;
    }
    if (sqlite3_libversion_number() < 3035000) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "SQLite %s is too old: fitd needs 3.35 or newer",
                     sqlite3_libversion());
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->lock_fd = -1;
    s->path = strdup(path);
    if (!s->path) goto nomem;
    s->chunk_bytes = CHUNK_BYTES_DEFAULT;

    int code = sqlite3_open_v2(path, &s->db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                               NULL);
    if (code != SQLITE_OK) {
        set_err(s, map_sqlite(code), "%s: cannot open database: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(code));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, (int)STORE_MAX_BLOB);
    if (set_wal(s) != STORE_OK) goto fail;
    if (pragma_exec(s, "PRAGMA synchronous = FULL") != STORE_OK) goto fail;
    if (pragma_exec(s, "PRAGMA foreign_keys = ON") != STORE_OK) goto fail;
    /* A small page cache per connection: every HTTP thread and every worker has
     * one, and at SQLite's default (2 MiB each) they grew with the database
     * until they held more than the rest of the process (tests/soak). The OS
     * caches the file anyway; this holds the hot B-tree pages. */
    if (pragma_exec(s, "PRAGMA cache_size = -" STORE_CACHE_KIB) != STORE_OK) goto fail;
    /* Reading the schema proves the file is a database we can use. */
    if (pragma_exec(s, "SELECT count(*) FROM sqlite_master") != STORE_OK) goto fail;
    int64_t test_pages = atomic_load(&open_max_pages);
    if (test_pages > 0 && store_test_set_max_pages(s, test_pages) != STORE_OK) goto fail;
    s->errmsg[0] = '\0';
    return s;

nomem:
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s: out of memory", path);
    store_close(s);
    return NULL;
fail:
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", s->errmsg);
    store_close(s);
    return NULL;
}

void store_close(store *s)
{
    if (!s) return;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->stmt[i]);
    if (s->db) sqlite3_close(s->db);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the lock */
    free(s->path);
    free(s);
}

store_rc store_lock_serving(store *s)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s.lock", s->path) >= sizeof path)
        return set_err(s, STORE_INVALID, "%s: the path is too long", s->path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return set_err(s, STORE_ERROR, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return set_err(s, STORE_CONFLICT, "another fitd is serving %s (it holds %s)", s->path, path);
        return set_err(s, STORE_ERROR, "%s: %s", path, strerror(e));
    }
    s->lock_fd = fd;
    return STORE_OK;
}

void store_release_memory(store *s)
{
    if (s && s->db) sqlite3_db_release_memory(s->db);
}

store_rc store_ping(store *s)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_PING, &st);
    if (rc == STORE_OK) {
        int code = step(s, st);
        if (code != SQLITE_ROW) rc = sql_fail(s, code, "ping");
    }
    done(st);
    return rc;
}

store_rc store_db_bytes(store *s, int64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_DB_BYTES, &st);
    *bytes = 0;
    if (rc == STORE_OK) {
        int code = step(s, st);
        if (code != SQLITE_ROW) rc = sql_fail(s, code, "database size");
        else *bytes = sqlite3_column_int64(st, 0);
    }
    done(st);
    return rc;
}

store_rc store_check(store *s)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = STORE_OK;
    int code = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (code == SQLITE_OK) code = sqlite3_step(st);
    if (code == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok") != 0)
            rc = set_err(s, STORE_CORRUPT, "%s: the database file is damaged (quick_check: %.300s)",
                         s->path, res ? res : "no answer");
    } else {
        rc = map_sqlite(code);
        if (rc == STORE_OK) rc = STORE_ERROR;
        if (rc == STORE_CORRUPT)
            set_err(s, rc, "%s: file is not a SQLite database or is damaged (%s)", s->path,
                    sqlite3_errmsg(s->db));
        else
            set_err(s, rc, "%s: cannot check the database: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- migrations */

typedef struct migration {
    int version;
    const char *name; /* basename, e.g. "0001_init.sql" */
    const char *sql;
} migration;

static int migration_cmp(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* The embedded "migrations/NNNN_*.sql" files, sorted by version. */
static store_rc migrations_collect(store *s, migration *out, int *n_out)
{
    int n = 0;
    static const char dir[] = "migrations/";
    for (const srv_embedded_file *f = srv_embedded; f->path; f++) {
        if (strncmp(f->path, dir, sizeof dir - 1) != 0) continue;
        const char *base = f->path + sizeof dir - 1;
        size_t blen = strlen(base);
        if (blen < 5 || strcmp(base + blen - 4, ".sql") != 0) continue;
        int v = 0, digits = 0;
        const char *p = base;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            if (v > 99999) break;
            v = v * 10 + (*p - '0');
        }
        if (digits == 0 || *p != '_' || v <= 0)
            return set_err(s, STORE_ERROR, "embedded migration %s is not named NNNN_name.sql",
                           f->path);
        if (n == MIGRATIONS_MAX) return set_err(s, STORE_ERROR, "too many embedded migrations");
        out[n].version = v;
        out[n].name = base;
        out[n].sql = f->data;
        n++;
    }
    qsort(out, (size_t)n, sizeof *out, migration_cmp);
    for (int i = 1; i < n; i++)
        if (out[i].version == out[i - 1].version)
            return set_err(s, STORE_ERROR, "embedded migrations %s and %s share version %d",
                           out[i - 1].name, out[i].name, out[i].version);
    *n_out = n;
    return STORE_OK;
}

/* Highest recorded version and its name (0 and "" when none). */
static store_rc recorded_max(store *s, int *version, char *name, size_t name_size)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_MIG_MAX, &st);
    *version = 0;
    name[0] = '\0';
    if (rc != STORE_OK) goto out;
    int code = step(s, st);
    if (code == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        col_fixed(st, 1, name, name_size);
    } else if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read schema_migrations");
    }
out:
    done(st);
    return rc;
}

store_rc store_schema_version(store *s, int *version)
{
    sqlite3_stmt *st = NULL;
    char name[128];
    store_rc rc = prep(s, ST_MIG_TABLE_EXISTS, &st);
    *version = 0;
    if (rc != STORE_OK) goto out;
    int code = step(s, st);
    if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "read schema");
        goto out;
    }
    int exists = sqlite3_column_int(st, 0);
    done(st);
    st = NULL;
    if (exists) rc = recorded_max(s, version, name, sizeof name);
out:
    done(st);
    return rc;
}

static store_rc migration_apply(store *s, const migration *m)
{
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    store_rc rc = tx_begin(s, 1);
    if (rc != STORE_OK) goto out;
    /* Another process may have applied it since we looked. */
    if ((rc = prep(s, ST_MIG_HAS, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_int(st, 1, m->version));
    int code = step(s, st);
    if (code != SQLITE_ROW && code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read schema_migrations");
        goto out;
    }
    done(st);
    st = NULL;
    if (code == SQLITE_ROW) goto commit;

    code = sqlite3_exec(s->db, m->sql, NULL, NULL, &msg);
    if (code != SQLITE_OK) {
        rc = set_err(s, map_sqlite(code) == STORE_OK ? STORE_ERROR : map_sqlite(code),
                     "%s: migration migrations/%s failed: %s", s->path, m->name,
                     msg ? msg : sqlite3_errstr(code));
        goto out;
    }
    if ((rc = prep(s, ST_MIG_INSERT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_int(st, 1, m->version));
    BIND(sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC));
    if ((rc = run_done(s, st, "record migration")) != STORE_OK) goto out;
commit:
    rc = tx_commit(s);
out:
    sqlite3_free(msg);
    done(st);
    if (rc != STORE_OK) tx_rollback(s);
    return rc;
}

store_rc store_migrate(store *s)
{
    migration *ms = NULL;
    int n = 0, have = 0;
    char have_name[128];
    store_rc rc;

    ms = malloc(MIGRATIONS_MAX * sizeof *ms);
    if (!ms) return set_err(s, STORE_NOMEM, "out of memory");
    if ((rc = migrations_collect(s, ms, &n)) != STORE_OK) goto out;
    if ((rc = pragma_exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                             "applied_at TEXT NOT NULL)")) != STORE_OK)
        goto out;
    if ((rc = recorded_max(s, &have, have_name, sizeof have_name)) != STORE_OK) goto out;
    int newest = n ? ms[n - 1].version : 0;
    if (have > newest) {
        rc = set_err(s, STORE_ERROR,
                     "%s: database schema version %d (%s) is newer than this fitd supports "
                     "(version %d, %s): it was written by a newer fitd; refusing to use it",
                     s->path, have, have_name, newest, n ? ms[n - 1].name : "none");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if ((rc = migration_apply(s, &ms[i])) != STORE_OK) goto out;
out:
    free(ms);
    return rc;
}

/* ---------------------------------------------------------------- job state helpers */

static const char *const status_names[STORE_JOB_STATUS_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled"};

const char *store_job_status_name(store_job_status st)
{
    return (unsigned)st < STORE_JOB_STATUS_COUNT ? status_names[st] : "unknown";
}

store_job_status store_job_status_from_name(const char *name)
{
    for (int i = 0; name && i < STORE_JOB_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0) return (store_job_status)i;
    return STORE_JOB_STATUS_COUNT;
}

int store_job_status_finished(store_job_status st)
{
    return st == STORE_JOB_SUCCEEDED || st == STORE_JOB_FAILED || st == STORE_JOB_CANCELLED;
}

/* A job's status and cancel flag; STORE_NOT_FOUND if absent. */
static store_rc job_state(store *s, const char *id, store_job_status *status, int *cancel)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_JOB_STATE, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code == SQLITE_DONE) {
        rc = set_err(s, STORE_NOT_FOUND, "job %s not found", id);
    } else if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "read job");
    } else {
        char name[16];
        col_fixed(st, 0, name, sizeof name);
        if (status) *status = store_job_status_from_name(name);
        if (cancel) *cancel = sqlite3_column_int(st, 1);
    }
out:
    done(st);
    return rc;
}

/* After an update matched no running job: NOT_FOUND or CONFLICT with a message. */
static store_rc not_running(store *s, const char *id)
{
    store_job_status st = STORE_JOB_QUEUED;
    store_rc rc = job_state(s, id, &st, NULL);
    if (rc != STORE_OK) return rc;
    return set_err(s, STORE_CONFLICT, "job %s is %s, not running", id, store_job_status_name(st));
}

/* ---------------------------------------------------------------- datasets */

static int is_big_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static void swap32(void *dst, const void *src, size_t n_values)
{
    const unsigned char *a = src;
    unsigned char *b = dst;
    for (size_t i = 0; i < n_values; i++) {
        unsigned char t0 = a[4 * i], t1 = a[4 * i + 1], t2 = a[4 * i + 2], t3 = a[4 * i + 3];
        b[4 * i] = t3;
        b[4 * i + 1] = t2;
        b[4 * i + 2] = t1;
        b[4 * i + 3] = t0;
    }
}

/* SHA-256 of the little-endian bytes of x then y, as hex. */
static store_rc dataset_sha256(store *s, const nn_dataset *ds, size_t nx, size_t ny, char *hex)
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    if (!is_big_endian()) {
        sha256_update(&ctx, nx * 4, (const uint8_t *)ds->x);
        sha256_update(&ctx, ny * 4, (const uint8_t *)ds->y);
    } else {
        enum { BLOCK = 4096 };
        unsigned char *tmp = malloc(BLOCK * 4);
        if (!tmp) return set_err(s, STORE_NOMEM, "out of memory");
        for (int part = 0; part < 2; part++) {
            const float *p = part ? ds->y : ds->x;
            size_t n = part ? ny : nx;
            for (size_t i = 0; i < n; i += BLOCK) {
                size_t k = n - i < BLOCK ? n - i : BLOCK;
                swap32(tmp, p + i, k);
                sha256_update(&ctx, k * 4, tmp);
            }
        }
        free(tmp);
    }
    digest_sha256_finish_hex(&ctx, hex);
    return STORE_OK;
}

/* Write one matrix as chunk rows (inside the caller's transaction). */
static store_rc put_part(store *s, const char *id, const char *part, const float *data,
                         size_t count)
{
    sqlite3_stmt *st = NULL;
    unsigned char *tmp = NULL;
    size_t per = s->chunk_bytes / 4, chunk = 0;
    store_rc rc = prep(s, ST_DS_CHUNK_INSERT, &st);
    if (rc != STORE_OK) goto out;
    if (is_big_endian() && !(tmp = malloc(per * 4))) {
        rc = set_err(s, STORE_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < count; i += per, chunk++) {
        size_t k = count - i < per ? count - i : per;
        const void *bytes = data + i;
        if (tmp) {
            swap32(tmp, data + i, k);
            bytes = tmp;
        }
        BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_int64(st, 3, (sqlite3_int64)chunk));
        BIND(sqlite3_bind_blob64(st, 4, bytes, (sqlite3_uint64)k * 4, SQLITE_STATIC));
        if ((rc = run_done(s, st, "store dataset data")) != STORE_OK) goto out;
        done(st);
    }
out:
    done(st);
    free(tmp);
    return rc;
}

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

store_rc store_dataset_insert(store *s, store_dataset_meta *meta, const nn_dataset *ds)
{
    sqlite3_stmt *st = NULL;
    char shape[24 * STORE_SHAPE_MAX + 4];
    char sha[STORE_SHA256_HEX];
    char id[STORE_ID_MAX];
    char created[STORE_TS_MAX];
    size_t nx = 0, ny = 0;
    store_rc rc = STORE_OK;
    int in_tx = 0;

    s->errmsg[0] = '\0';
    if (!meta || !ds || !ds->x || !ds->y || ds->n == 0 || ds->x_width <= 0 || ds->y_width <= 0)
        return set_err(s, STORE_INVALID, "empty or malformed dataset");
    if (!memchr(meta->tenant, 0, sizeof meta->tenant) || !memchr(meta->name, 0, sizeof meta->name) ||
        !memchr(meta->format, 0, sizeof meta->format))
        return set_err(s, STORE_INVALID, "dataset tenant, name or format not terminated");
    if (ds->n > (size_t)INT64_MAX || !mul_ok(ds->n, (size_t)ds->x_width, &nx) ||
        !mul_ok(ds->n, (size_t)ds->y_width, &ny) || nx > SIZE_MAX / 8 || ny > SIZE_MAX / 8)
        return set_err(s, STORE_INVALID, "dataset too large");

    /* input_shape: default {x_width}; otherwise its product must be x_width. */
    if (meta->n_input_dims == 0) {
        meta->n_input_dims = 1;
        meta->input_shape[0] = ds->x_width;
    }
    if (meta->n_input_dims < 0 || meta->n_input_dims > STORE_SHAPE_MAX)
        return set_err(s, STORE_INVALID, "input_shape must have 1 to %d dimensions",
                       STORE_SHAPE_MAX);
    {
        int64_t prod = 1;
        size_t o = 0;
        shape[o++] = '[';
        for (int i = 0; i < meta->n_input_dims; i++) {
            int64_t d = meta->input_shape[i];
            if (d <= 0 || d > ds->x_width || prod > ds->x_width / d)
                return set_err(s, STORE_INVALID, "input_shape does not match %d features",
                               ds->x_width);
            prod *= d;
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", i ? "," : "",
                                  (long long)d);
        }
        snprintf(shape + o, sizeof shape - o, "]");
        if (prod != ds->x_width)
            return set_err(s, STORE_INVALID, "input_shape does not match %d features",
                           ds->x_width);
    }
    if ((rc = dataset_sha256(s, ds, nx, ny, sha)) != STORE_OK) return rc;
    if (store_new_id("ds_", id, sizeof id) != STORE_OK)
        return set_err(s, STORE_ERROR, "no randomness for an id: %s", strerror(errno));

    int y_integer = ds->y_integer ? 1 : 0;
    int n_classes = ds->n_classes > 0 ? ds->n_classes : 0;
    int64_t bytes = (int64_t)(nx + ny) * 4;

    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = prep(s, ST_DS_INSERT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, meta->tenant, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 3, meta->name, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 4, meta->format, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int64(st, 5, (sqlite3_int64)ds->n));
    BIND(sqlite3_bind_text(st, 6, shape, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 7, ds->x_width));
    BIND(sqlite3_bind_int(st, 8, ds->y_width));
    BIND(sqlite3_bind_int(st, 9, y_integer));
    BIND(sqlite3_bind_int(st, 10, n_classes));
    BIND(sqlite3_bind_int64(st, 11, bytes));
    BIND(sqlite3_bind_text(st, 12, sha, -1, SQLITE_STATIC));
    BIND(bind_real_opt(st, 13, ds->y_min));
    BIND(bind_real_opt(st, 14, ds->y_max));
    int code = step(s, st);
    if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "insert dataset");
        goto out;
    }
    col_fixed(st, 0, created, sizeof created);
    if ((rc = run_done(s, st, "insert dataset")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if ((rc = put_part(s, id, "x", ds->x, nx)) != STORE_OK) goto out;
    if ((rc = put_part(s, id, "y", ds->y, ny)) != STORE_OK) goto out;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;

    memcpy(meta->id, id, sizeof id);
    memcpy(meta->sha256, sha, sizeof sha);
    memcpy(meta->created_at, created, sizeof created);
    meta->n_samples = (int64_t)ds->n;
    meta->x_width = ds->x_width;
    meta->y_width = ds->y_width;
    meta->y_integer = y_integer;
    meta->n_classes = n_classes;
    meta->y_min = ds->y_min;
    meta->y_max = ds->y_max;
    meta->bytes = bytes;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

/* Parse "[a,b,...]" as written by store_dataset_insert. */
static int parse_shape(const char *t, store_dataset_meta *m)
{
    int n = 0;
    if (!t || *t++ != '[') return 0;
    for (;;) {
        if (n == STORE_SHAPE_MAX) return 0;
        char *end = NULL;
        long long v = strtoll(t, &end, 10);
        if (end == t || v <= 0) return 0;
        m->input_shape[n++] = v;
        t = end;
        if (*t == ',') {
            t++;
            continue;
        }
        if (*t == ']' && t[1] == '\0') break;
        return 0;
    }
    m->n_input_dims = n;
    return 1;
}

/* Fill a meta from a row in DS_COLS order; *seq (may be NULL) gets the row's seq. */
static store_rc read_dataset(store *s, sqlite3_stmt *st, void *item, int64_t *seq)
{
    store_dataset_meta *m = item;
    memset(m, 0, sizeof *m);
    if (seq) *seq = sqlite3_column_int64(st, 0);
    col_fixed(st, 1, m->id, sizeof m->id);
    col_fixed(st, 2, m->tenant, sizeof m->tenant);
    col_fixed(st, 3, m->name, sizeof m->name);
    col_fixed(st, 4, m->format, sizeof m->format);
    m->n_samples = sqlite3_column_int64(st, 5);
    m->x_width = sqlite3_column_int(st, 7);
    m->y_width = sqlite3_column_int(st, 8);
    m->y_integer = sqlite3_column_int(st, 9);
    m->n_classes = sqlite3_column_int(st, 10);
    m->bytes = sqlite3_column_int64(st, 11);
    col_fixed(st, 12, m->sha256, sizeof m->sha256);
    col_fixed(st, 13, m->created_at, sizeof m->created_at);
    m->y_min = col_real_opt(st, 14);
    m->y_max = col_real_opt(st, 15);
    if (!parse_shape((const char *)sqlite3_column_text(st, 6), m))
        return set_err(s, STORE_CORRUPT, "dataset %s: stored input_shape is malformed", m->id);
    return STORE_OK;
}

static const row_kind dataset_rows = {"dataset", "datasets", sizeof(store_dataset_meta),
                                       read_dataset, NULL};

store_rc store_dataset_get(store *s, const char *id, store_dataset_meta *out)
{
    return get_row(s, ST_DS_GET, id, &dataset_rows, out);
}

store_rc store_dataset_list(store *s, const store_list_query *q, store_dataset_meta **items,
                            size_t *n, char *next_cursor)
{
    const char *texts[] = {q ? q->tenant : NULL};
    void *arr = NULL;
    store_rc rc = list_page(s, ST_DS_LIST, texts, 1, q, &dataset_rows, &arr, n, next_cursor);
    *items = arr;
    return rc;
}

void store_dataset_list_free(store_dataset_meta *items)
{
    free(items);
}

/* Read one matrix's chunks into dst (count floats), checking they add up. */
static store_rc get_part(store *s, const char *id, const char *part, float *dst, size_t count)
{
    sqlite3_stmt *st = NULL;
    size_t off = 0; /* bytes */
    size_t total = count * 4;
    int64_t expect = 0;
    int code;
    store_rc rc = prep(s, ST_DS_CHUNKS, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC));
    while ((code = step(s, st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (sqlite3_column_int64(st, 0) != expect++ || len % 4 || len > total - off ||
            (!b && len)) {
            rc = set_err(s, STORE_CORRUPT, "dataset %s: stored %s data is damaged", id, part);
            goto out;
        }
        if (is_big_endian())
            swap32((unsigned char *)dst + off, b, len / 4);
        else if (len)
            memcpy((unsigned char *)dst + off, b, len);
        off += len;
    }
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read dataset data");
        goto out;
    }
    if (off != total)
        rc = set_err(s, STORE_CORRUPT, "dataset %s: stored %s data is %zu bytes, expected %zu",
                     id, part, off, total);
out:
    done(st);
    return rc;
}

store_rc store_dataset_load(store *s, const char *id, store_dataset_meta *out_meta,
                            nn_dataset *out)
{
    store_dataset_meta meta;
    float *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int in_tx = 0;
    store_rc rc;

    memset(out, 0, sizeof *out);
    if ((rc = tx_begin(s, 0)) != STORE_OK) goto out; /* one snapshot for meta and data */
    in_tx = 1;
    if ((rc = store_dataset_get(s, id, &meta)) != STORE_OK) goto out;
    if (meta.n_samples <= 0 || meta.x_width <= 0 || meta.y_width <= 0 ||
        (uint64_t)meta.n_samples > SIZE_MAX ||
        !mul_ok((size_t)meta.n_samples, (size_t)meta.x_width, &nx) ||
        !mul_ok((size_t)meta.n_samples, (size_t)meta.y_width, &ny) || nx > SIZE_MAX / 4 ||
        ny > SIZE_MAX / 4) {
        rc = set_err(s, STORE_CORRUPT, "dataset %s: stored shape is invalid", id);
        goto out;
    }
    x = malloc(nx * 4);
    y = malloc(ny * 4);
    if (!x || !y) {
        rc = set_err(s, STORE_NOMEM, "out of memory loading dataset %s (%zu bytes)", id,
                     (nx + ny) * 4);
        goto out;
    }
    if ((rc = get_part(s, id, "x", x, nx)) != STORE_OK) goto out;
    if ((rc = get_part(s, id, "y", y, ny)) != STORE_OK) goto out;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;

    out->n = (size_t)meta.n_samples;
    out->x_width = meta.x_width;
    out->y_width = meta.y_width;
    out->x = x;
    out->y = y;
    out->y_integer = meta.y_integer;
    out->n_classes = meta.n_classes;
    out->y_min = (float)meta.y_min;
    out->y_max = (float)meta.y_max;
    x = y = NULL;
    if (out_meta) *out_meta = meta;
out:
    if (in_tx) tx_rollback(s);
    free(x);
    free(y);
    return rc;
}

static store_rc dataset_in_use(store *s, const char *id, int *in_use)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_DS_IN_USE, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code != SQLITE_ROW)
        rc = sql_fail(s, code, "check dataset use");
    else
        *in_use = sqlite3_column_int(st, 0);
out:
    done(st);
    return rc;
}

static store_rc dataset_exists(store *s, const char *id)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_DS_EXISTS, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code == SQLITE_DONE)
        rc = set_err(s, STORE_NOT_FOUND, "dataset %s not found", id);
    else if (code != SQLITE_ROW)
        rc = sql_fail(s, code, "read dataset");
out:
    done(st);
    return rc;
}

store_rc store_dataset_in_use(store *s, const char *id, int *in_use)
{
    store_rc rc = dataset_exists(s, id);
    *in_use = 0;
    if (rc != STORE_OK) return rc;
    return dataset_in_use(s, id, in_use);
}

store_rc store_dataset_delete(store *s, const char *id)
{
    sqlite3_stmt *st = NULL;
    int in_use = 0, in_tx = 0;
    store_rc rc = tx_begin(s, 1);
    if (rc != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = dataset_exists(s, id)) != STORE_OK) goto out;
    if ((rc = dataset_in_use(s, id, &in_use)) != STORE_OK) goto out;
    if (in_use) {
        rc = set_err(s, STORE_CONFLICT, "dataset %s is used by a queued or running job", id);
        goto out;
    }
    if ((rc = run_id(s, ST_DS_DELETE, id, "delete dataset")) != STORE_OK) goto out;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

/* ---------------------------------------------------------------- jobs */

void store_job_free(store_job *j)
{
    if (!j) return;
    free(j->name);
    free(j->spec_json);
    free(j->last_metrics_json);
    free(j->error);
    free(j->test_metrics_json);
    free(j->idempotency_key);
    memset(j, 0, sizeof *j);
}

/* Fill a job from a row in JOB_COLS order. On failure *j holds nothing to free. */
static store_rc read_job(store *s, sqlite3_stmt *st, void *item, int64_t *seq)
{
    store_job *j = item;
    char status[16];
    store_rc rc = STORE_OK;
    memset(j, 0, sizeof *j);
    if (seq) *seq = sqlite3_column_int64(st, 0);
    col_fixed(st, 1, j->id, sizeof j->id);
    col_fixed(st, 2, j->tenant, sizeof j->tenant);
    col_fixed(st, 3, status, sizeof status);
    j->status = store_job_status_from_name(status);
    col_fixed(st, 6, j->train_dataset_id, sizeof j->train_dataset_id);
    col_fixed(st, 7, j->validation_dataset_id, sizeof j->validation_dataset_id);
    col_fixed(st, 8, j->test_dataset_id, sizeof j->test_dataset_id);
    j->epochs = sqlite3_column_int(st, 9);
    j->epoch = sqlite3_column_int(st, 10);
    j->batch = sqlite3_column_int(st, 11);
    j->batches = sqlite3_column_int(st, 12);
    j->epochs_done = sqlite3_column_int(st, 13);
    j->best_epoch = sqlite3_column_int(st, 14);
    j->attempts = sqlite3_column_int(st, 15);
    j->cancel_requested = sqlite3_column_int(st, 16) != 0;
    j->has_checkpoint = sqlite3_column_type(st, 17) != SQLITE_NULL;
    j->checkpoint_epoch = sqlite3_column_int(st, 17);
    j->has_weights = sqlite3_column_int(st, 18) != 0;
    col_fixed(st, 23, j->created_at, sizeof j->created_at);
    col_fixed(st, 24, j->started_at, sizeof j->started_at);
    col_fixed(st, 25, j->finished_at, sizeof j->finished_at);
    col_fixed(st, 26, j->updated_at, sizeof j->updated_at);
    col_fixed(st, 27, j->sweep_id, sizeof j->sweep_id);
    if ((rc = col_dup(s, st, 4, &j->name)) != STORE_OK ||
        (rc = col_dup(s, st, 5, &j->spec_json)) != STORE_OK ||
        (rc = col_dup(s, st, 19, &j->last_metrics_json)) != STORE_OK ||
        (rc = col_dup(s, st, 20, &j->error)) != STORE_OK ||
        (rc = col_dup(s, st, 21, &j->test_metrics_json)) != STORE_OK ||
        (rc = col_dup(s, st, 22, &j->idempotency_key)) != STORE_OK) {
        store_job_free(j);
        return rc;
    }
    if (j->status == STORE_JOB_STATUS_COUNT) {
        store_job_free(j);
        return set_err(s, STORE_CORRUPT, "job has an unknown status '%s'", status);
    }
    return STORE_OK;
}

static void clear_job(void *item)
{
    store_job_free(item);
}

static const row_kind job_rows = {"job", "jobs", sizeof(store_job), read_job, clear_job};

void store_job_list_free(store_job *jobs, size_t n)
{
    free_rows(jobs, n, &job_rows);
}

store_rc store_job_get(store *s, const char *id, store_job *out)
{
    return get_row(s, ST_JOB_GET, id, &job_rows, out);
}

store_rc store_job_count(store *s, store_job_status status, int64_t *count)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_JOB_COUNT, &st);
    *count = 0;
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, store_job_status_name(status), -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code != SQLITE_ROW)
        rc = sql_fail(s, code, "count jobs");
    else
        *count = sqlite3_column_int64(st, 0);
out:
    done(st);
    return rc;
}

/* The argument checks of every job insert (a job on its own or a sweep's trial). */
static store_rc job_new_check(store *s, const store_job_new *in)
{
    if (!in || !in->spec_json || !in->train_dataset_id || !*in->train_dataset_id ||
        in->epochs < 1)
        return set_err(s, STORE_INVALID, "a job needs a spec, training data and epochs >= 1");
    if (!fits(in->tenant ? in->tenant : "", STORE_TENANT_MAX))
        return set_err(s, STORE_INVALID, "tenant too long");
    const char *ds_ids[3] = {in->train_dataset_id, in->validation_dataset_id, in->test_dataset_id};
    for (int i = 0; i < 3; i++)
        if (ds_ids[i] && *ds_ids[i] && !fits(ds_ids[i], STORE_ID_MAX))
            return set_err(s, STORE_NOT_FOUND, "dataset %.40s... not found", ds_ids[i]);
    return STORE_OK;
}

/* STORE_NOT_FOUND when the weights or the job a spec's init starts from is gone.
 * Checked in the insert's transaction: a delete, which refuses a source of a queued
 * job, then either ran before (the insert fails) or sees the new job. */
static store_rc init_source_exists(store *s, const char *spec_json)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = prep(s, ST_JOB_INIT_MISSING, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, spec_json, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code != SQLITE_ROW)
        rc = sql_fail(s, code, "read the init source");
    else if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        rc = set_err(s, STORE_NOT_FOUND, "%s not found", (const char *)sqlite3_column_text(st, 0));
out:
    done(st);
    return rc;
}

/* Insert the queued job row `id` inside the caller's transaction, once its datasets
 * and init source are known to exist. `key` NULL = no idempotency key. */
static store_rc job_row_insert(store *s, const char *id, const store_job_new *in, const char *key)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = STORE_OK;
    const char *ds_ids[3] = {in->train_dataset_id, in->validation_dataset_id, in->test_dataset_id};
    for (int i = 0; i < 3; i++)
        if (ds_ids[i] && *ds_ids[i] && (rc = dataset_exists(s, ds_ids[i])) != STORE_OK) goto out;
    if ((rc = init_source_exists(s, in->spec_json)) != STORE_OK) goto out;
    if ((rc = prep(s, ST_JOB_INSERT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, in->tenant ? in->tenant : "", -1, SQLITE_STATIC));
    BIND(bind_text_opt(st, 3, in->name));
    BIND(sqlite3_bind_text(st, 4, in->spec_json, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 5, in->train_dataset_id, -1, SQLITE_STATIC));
    BIND(bind_text_none(st, 6, in->validation_dataset_id));
    BIND(bind_text_none(st, 7, in->test_dataset_id));
    BIND(sqlite3_bind_int(st, 8, in->epochs));
    BIND(bind_text_opt(st, 9, key));
    BIND(bind_text_opt(st, 10, key ? in->body_hash : NULL));
    rc = run_done(s, st, "insert job");
out:
    done(st);
    return rc;
}

store_rc store_job_insert(store *s, const store_job_new *in, store_job *out, int *created)
{
    sqlite3_stmt *st = NULL;
    store_job job;
    char id[STORE_ID_MAX];
    const char *tenant = in && in->tenant ? in->tenant : "";
    const char *key = in && in->idempotency_key && *in->idempotency_key ? in->idempotency_key
                                                                        : NULL;
    int in_tx = 0, code;
    store_rc rc = STORE_OK;

    memset(&job, 0, sizeof job);
    if (out) memset(out, 0, sizeof *out);
    if (created) *created = 0;
    s->errmsg[0] = '\0';
    if ((rc = job_new_check(s, in)) != STORE_OK) return rc;
    if (key && (!in->body_hash || !*in->body_hash))
        return set_err(s, STORE_INVALID, "an idempotency key needs a body hash");
    if (store_new_id("job_", id, sizeof id) != STORE_OK)
        return set_err(s, STORE_ERROR, "no randomness for an id: %s", strerror(errno));

    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if (key) {
        if ((rc = prep(s, ST_JOB_BY_KEY, &st)) != STORE_OK) goto out;
        BIND(sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC));
        code = step(s, st);
        if (code == SQLITE_ROW) {
            char old_id[STORE_ID_MAX];
            const char *hash = (const char *)sqlite3_column_text(st, 1);
            int same = hash && strcmp(hash, in->body_hash) == 0;
            col_fixed(st, 0, old_id, sizeof old_id);
            done(st);
            st = NULL;
            if (!same) {
                rc = set_err(s, STORE_CONFLICT,
                             "Idempotency-Key was already used with a different request body "
                             "(job %s)",
                             old_id);
                goto out;
            }
            if ((rc = store_job_get(s, old_id, &job)) != STORE_OK) goto out;
            goto commit;
        }
        if (code != SQLITE_DONE) {
            rc = sql_fail(s, code, "read job by idempotency key");
            goto out;
        }
        done(st);
        st = NULL;
    }
    if (in->max_queued > 0) {
        int64_t queued = 0;
        if ((rc = store_job_count(s, STORE_JOB_QUEUED, &queued)) != STORE_OK) goto out;
        if (queued >= in->max_queued) {
            rc = set_err(s, STORE_LIMIT, "the queue is full (%lld queued jobs)",
                         (long long)queued);
            goto out;
        }
    }
    if ((rc = job_row_insert(s, id, in, key)) != STORE_OK) goto out;
    if ((rc = store_job_get(s, id, &job)) != STORE_OK) goto out;
    if (created) *created = 1;
commit:
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
    if (out) {
        *out = job;
        memset(&job, 0, sizeof job);
    }
out:
    done(st);
    if (in_tx) tx_rollback(s);
    if (rc != STORE_OK && created) *created = 0;
    store_job_free(&job);
    return rc;
}

store_rc store_job_list(store *s, const store_job_query *q, store_job **jobs, size_t *n,
                        char *next_cursor)
{
    const char *texts[] = {q ? q->tenant : NULL,
                           q && q->has_status ? store_job_status_name(q->status) : NULL};
    store_list_query page = {.cursor = q ? q->cursor : NULL, .limit = q ? q->limit : 0};
    void *arr = NULL;
    *jobs = NULL;
    *n = 0;
    if (next_cursor) next_cursor[0] = '\0';
    if (q && q->has_status && (unsigned)q->status >= STORE_JOB_STATUS_COUNT)
        return set_err(s, STORE_INVALID, "unknown job status");
    store_rc rc = list_page(s, ST_JOB_LIST, texts, 2, &page, &job_rows, &arr, n, next_cursor);
    *jobs = arr;
    return rc;
}

store_rc store_job_claim(store *s, store_job *out)
{
    sqlite3_stmt *st = NULL;
    char id[STORE_ID_MAX] = "";
    int code;
    store_rc rc = prep(s, ST_JOB_CLAIM, &st);
    memset(out, 0, sizeof *out);
    if (rc != STORE_OK) goto out;
    code = step(s, st);
    if (code == SQLITE_DONE) {
        rc = set_err(s, STORE_NOT_FOUND, "no queued job");
        goto out;
    }
    if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "claim job");
        goto out;
    }
    col_fixed(st, 1, id, sizeof id);
    rc = read_job(s, st, out, NULL);
    /* The statement commits when it runs to completion. */
    code = step(s, st);
    while (code == SQLITE_ROW) code = step(s, st);
    if (code != SQLITE_DONE) {
        store_rc rc2 = sql_fail(s, code, "claim job");
        if (rc == STORE_OK) rc = rc2;
        store_job_free(out);
        goto out;
    }
    if (rc != STORE_OK) {
        /* Claimed but could not be read (out of memory): hand it back to the queue. */
        done(st);
        st = NULL;
        char keep[sizeof s->errmsg];
        memcpy(keep, s->errmsg, sizeof keep);
        store_job_requeue(s, id);
        memcpy(s->errmsg, keep, sizeof keep);
    }
out:
    done(st);
    return rc;
}

store_rc store_job_cancel(store *s, const char *id, store_job_status *status_out)
{
    static const int order[2] = {ST_JOB_CANCEL_QUEUED, ST_JOB_CANCEL_RUNNING};
    static const store_job_status result[2] = {STORE_JOB_CANCELLED, STORE_JOB_RUNNING};
    sqlite3_stmt *st = NULL;
    int in_tx = 0, changed = 0;
    /* One transaction: the job cannot move between the two updates (a cancel of a
     * job requeued in between would have changed nothing). */
    store_rc rc = tx_begin(s, 1);
    if (rc != STORE_OK) goto out;
    in_tx = 1;
    for (int i = 0; i < 2 && !changed; i++) {
        if ((rc = prep(s, order[i], &st)) != STORE_OK) goto out;
        BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
        if ((rc = run_done(s, st, "cancel job")) != STORE_OK) goto out;
        done(st);
        st = NULL;
        changed = sqlite3_changes(s->db) > 0;
        if (changed && status_out) *status_out = result[i];
        /* A queued job may hold the checkpoint a shutdown or crash left: it goes
         * now, as a cancelled run's does in store_job_finish. */
        if (changed && i == 0 && (rc = run_id(s, ST_CKPT_DELETE, id, "drop checkpoint")) != STORE_OK)
            goto out;
    }
    if (!changed) { /* neither queued nor running: finished (in one transaction), or absent */
        store_job_status now = STORE_JOB_QUEUED;
        if ((rc = job_state(s, id, &now, NULL)) != STORE_OK) goto out;
        if (status_out) *status_out = now;
        rc = set_err(s, STORE_CONFLICT, "job %s already %s", id, store_job_status_name(now));
        goto out;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

store_rc store_job_cancel_requested(store *s, const char *id, int *requested)
{
    int flag = 0;
    store_rc rc = job_state(s, id, NULL, &flag);
    *requested = rc == STORE_OK && flag;
    return rc;
}

store_rc store_epoch_commit(store *s, const char *job_id, const store_epoch *e)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0;
    store_rc rc;

    if (!e || e->epoch < 1 || !e->record_json || (e->checkpoint_len && !e->checkpoint))
        return set_err(s, STORE_INVALID, "an epoch commit needs epoch >= 1 and a record");
    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;

    if ((rc = prep(s, ST_EPOCH_JOB, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, e->epoch));
    BIND(sqlite3_bind_int(st, 3, e->batches));
    BIND(sqlite3_bind_int(st, 4, e->best_epoch));
    BIND(sqlite3_bind_text(st, 5, e->record_json, -1, SQLITE_STATIC));
    BIND(e->halted ? sqlite3_bind_text(st, 6, e->halted, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st, 6));
    if ((rc = run_done(s, st, "update job progress")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if (sqlite3_changes(s->db) == 0) {
        rc = not_running(s, job_id);
        goto out;
    }

    if ((rc = prep(s, ST_EPOCH_METRIC, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, e->epoch));
    BIND(sqlite3_bind_text(st, 3, e->record_json, -1, SQLITE_STATIC));
    if ((rc = run_done(s, st, "store epoch metrics")) != STORE_OK) goto out;
    done(st);
    st = NULL;

    if ((rc = prep(s, ST_EPOCH_TRIM, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, e->epoch));
    if ((rc = run_done(s, st, "trim epoch metrics")) != STORE_OK) goto out;
    done(st);
    st = NULL;

    if (e->checkpoint) {
        if ((rc = prep(s, ST_CKPT_PUT, &st)) != STORE_OK) goto out;
        BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_int(st, 2, e->epoch));
        BIND(sqlite3_bind_blob64(st, 3, e->checkpoint, (sqlite3_uint64)e->checkpoint_len,
                                 SQLITE_STATIC));
        if ((rc = run_done(s, st, "store checkpoint")) != STORE_OK) goto out;
        done(st);
        st = NULL;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

store_rc store_job_progress(store *s, const char *job_id, int epoch, int batch, int batches)
{
    sqlite3_stmt *st = NULL;
    /* Advisory, written every second between batches: it does not wait for a lock
     * another connection holds (waiting out the busy timeout each time held
     * training to one batch per 5 s for as long as the lock lasted). */
    sqlite3_busy_timeout(s->db, 0);
    store_rc rc = prep(s, ST_JOB_PROGRESS, &st);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, epoch));
    BIND(sqlite3_bind_int(st, 3, batch));
    BIND(sqlite3_bind_int(st, 4, batches));
    if ((rc = run_done(s, st, "update progress")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if (sqlite3_changes(s->db) == 0) rc = not_running(s, job_id);
out:
    done(st);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    return rc;
}

store_rc store_job_finish(store *s, const char *job_id, store_job_status status,
                          const char *error, const void *weights, size_t weights_len,
                          const char *test_metrics_json)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0;
    store_rc rc;

    if (!store_job_status_finished(status))
        return set_err(s, STORE_INVALID, "%s is not a final job status",
                       store_job_status_name(status));
    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = prep(s, ST_JOB_FINISH, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, store_job_status_name(status), -1, SQLITE_STATIC));
    BIND(bind_text_opt(st, 3, error));
    BIND(bind_text_opt(st, 4, test_metrics_json));
    if ((rc = run_done(s, st, "finish job")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if (sqlite3_changes(s->db) == 0) {
        rc = not_running(s, job_id);
        goto out;
    }
    if (weights) {
        if ((rc = prep(s, ST_WEIGHTS_PUT, &st)) != STORE_OK) goto out;
        BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_blob64(st, 2, weights, (sqlite3_uint64)weights_len, SQLITE_STATIC));
        if ((rc = run_done(s, st, "store weights")) != STORE_OK) goto out;
        done(st);
        st = NULL;
    }
    /* A failed job keeps its last good checkpoint for inspection; a succeeded one
     * its final trainer state, which "init": {"from_job", "resume": true} needs. */
    if (status == STORE_JOB_CANCELLED) {
        if ((rc = run_id(s, ST_CKPT_DELETE, job_id, "drop checkpoint")) != STORE_OK) goto out;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

store_rc store_job_requeue(store *s, const char *job_id)
{
    store_rc rc = run_id(s, ST_JOB_REQUEUE, job_id, "requeue job");
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0) rc = not_running(s, job_id);
    return rc;
}

store_rc store_job_suspend(store *s, const char *job_id, const void *checkpoint,
                           size_t checkpoint_len, int epochs_done, int batch, int batches)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0;
    store_rc rc;

    if (!checkpoint || !checkpoint_len || epochs_done < 0 || batch < 0)
        return set_err(s, STORE_INVALID, "a suspend needs a checkpoint and its position");
    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = prep(s, ST_JOB_SUSPEND, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, batch > 0 ? epochs_done + 1 : epochs_done));
    BIND(sqlite3_bind_int(st, 3, batch));
    BIND(sqlite3_bind_int(st, 4, batches));
    if ((rc = run_done(s, st, "suspend job")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if (sqlite3_changes(s->db) == 0) {
        rc = not_running(s, job_id);
        goto out;
    }
    if ((rc = prep(s, ST_CKPT_PUT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, epochs_done));
    BIND(sqlite3_bind_blob64(st, 3, checkpoint, (sqlite3_uint64)checkpoint_len, SQLITE_STATIC));
    if ((rc = run_done(s, st, "store checkpoint")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

store_rc store_recover_running(store *s, int crash_limit, int *n_requeued, int *n_failed)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0, requeued = 0, failed = 0;
    store_rc rc;
    if (n_requeued) *n_requeued = 0;
    if (n_failed) *n_failed = 0;
    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = run_plain(s, ST_RECOVER_CANCELLED, "recover jobs")) != STORE_OK) goto out;
    if ((rc = run_plain(s, ST_RECOVER_COUNT_CRASHES, "recover jobs")) != STORE_OK) goto out;
    if ((rc = prep(s, ST_RECOVER_FAIL_CRASHED, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_int(st, 1, crash_limit));
    if ((rc = run_done(s, st, "recover jobs")) != STORE_OK) goto out;
    failed = sqlite3_changes(s->db);
    if ((rc = run_plain(s, ST_RECOVER_QUEUED, "recover jobs")) != STORE_OK) goto out;
    requeued = sqlite3_changes(s->db);
    if ((rc = run_id(s, ST_CKPT_DELETE_CANCELLED, NULL, "recover jobs")) != STORE_OK) goto out;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
    if (n_requeued) *n_requeued = requeued;
    if (n_failed) *n_failed = failed;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

/* A stored blob as an nn_read_at_fn source: the first failed read's SQLite code
 * is kept for the store's error. */
typedef struct blob_src {
    store *s;
    sqlite3_blob *b;
    int code;
} blob_src;

static int blob_read_at(void *src, size_t off, void *dst, size_t n)
{
    blob_src *bs = src;
    if (bs->code != SQLITE_OK) return -1;
    if (off > (size_t)INT_MAX || n > (size_t)INT_MAX - off) { /* past any SQLite blob */
        bs->code = SQLITE_RANGE;
        return -1;
    }
    bs->code = injected(bs->s);
    if (!bs->code) bs->code = sqlite3_blob_read(bs->b, dst, (int)n, (int)off);
    return bs->code == SQLITE_OK ? 0 : -1;
}

/* A stored blob (stmt: SELECT rowid[, epoch] of `table`'s row with key ?1: a job's
 * checkpoint or weights, or an upload) handed to `use` in place, inside one read
 * transaction: incremental blob I/O, so neither SQLite nor the caller holds a
 * copy of the whole unless use makes one. For a job's blob (of_job) the job must
 * exist (STORE_NOT_FOUND says which is missing). */
static store_rc blob_use(store *s, int stmt, const char *table, const char *key, int of_job,
                         const char *what, store_blob_use_fn use, void *user, int *epoch)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0;
    store_rc rc;
    if ((rc = tx_begin(s, 0)) != STORE_OK) goto out;
    in_tx = 1;
    if (of_job && (rc = job_state(s, key, NULL, NULL)) != STORE_OK) goto out;
    if ((rc = prep(s, stmt, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code == SQLITE_DONE) {
        rc = of_job ? set_err(s, STORE_NOT_FOUND, "job %s has no %s", key, what)
                    : set_err(s, STORE_NOT_FOUND, "%s %s not found", what, key);
        goto out;
    }
    if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, what);
        goto out;
    }
    sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
    if (epoch) *epoch = sqlite3_column_int(st, 1);
    done(st);
    st = NULL;
    blob_src src = {s, NULL, SQLITE_OK};
    code = injected(s);
    if (!code) code = sqlite3_blob_open(s->db, "main", table, "data", rowid, 0, &src.b);
    if (code != SQLITE_OK) {
        sqlite3_blob_close(src.b);
        rc = sql_fail(s, code, what);
        goto out;
    }
    use(user, blob_read_at, &src, (size_t)sqlite3_blob_bytes(src.b));
    sqlite3_blob_close(src.b);
    if (src.code != SQLITE_OK) {
        rc = sql_fail(s, src.code, what);
        goto out;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

/* A copy of the whole blob, for the _load calls. */
typedef struct whole_blob {
    void *buf;
    size_t len;
} whole_blob;

static void read_whole(void *user, nn_read_at_fn read, void *src, size_t len)
{
    whole_blob *w = user;
    w->buf = malloc(len ? len : 1);
    w->len = len;
    if (w->buf && len) read(src, 0, w->buf, len); /* a failure is the store's error */
}

static store_rc blob_whole(store *s, int stmt, const char *table, const char *key, int of_job,
                           const char *what, void **buf, size_t *len, int *epoch)
{
    whole_blob w = {NULL, 0};
    store_rc rc = blob_use(s, stmt, table, key, of_job, what, read_whole, &w, epoch);
    if (rc == STORE_OK && !w.buf) rc = set_err(s, STORE_NOMEM, "out of memory reading a %s", what);
    if (rc != STORE_OK) {
        free(w.buf);
        w.buf = NULL;
        w.len = 0;
    }
    *buf = w.buf;
    *len = w.len;
    return rc;
}

store_rc store_job_checkpoint_load(store *s, const char *job_id, void **buf, size_t *len,
                                   int *epoch)
{
    int e = 0;
    store_rc rc = blob_whole(s, ST_CKPT_GET, "job_checkpoints", job_id, 1, "checkpoint", buf, len, &e);
    if (epoch) *epoch = rc == STORE_OK ? e : 0;
    return rc;
}

store_rc store_job_checkpoint_read(store *s, const char *job_id, store_blob_use_fn use,
                                   void *user)
{
    return blob_use(s, ST_CKPT_GET, "job_checkpoints", job_id, 1, "checkpoint", use, user, NULL);
}

store_rc store_job_weights_load(store *s, const char *job_id, void **buf, size_t *len)
{
    return blob_whole(s, ST_WEIGHTS_GET, "job_weights", job_id, 1, "weights", buf, len, NULL);
}

store_rc store_job_metrics(store *s, const char *job_id, int after, store_metrics_fn fn,
                           void *user)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0, code;
    store_rc rc;
    if ((rc = tx_begin(s, 0)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = job_state(s, job_id, NULL, NULL)) != STORE_OK) goto out;
    if ((rc = prep(s, ST_METRICS, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, after));
    while ((code = step(s, st)) == SQLITE_ROW) {
        const char *rec = (const char *)sqlite3_column_text(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (!rec) {
            rc = set_err(s, STORE_NOMEM, "out of memory reading metrics");
            goto out;
        }
        if (fn && fn(user, sqlite3_column_int(st, 0), rec, len) != 0) {
            rc = set_err(s, STORE_STOPPED, "metrics walk stopped by the callback");
            goto out;
        }
    }
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read metrics");
        goto out;
    }
    done(st);
    st = NULL;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

store_rc store_job_delete(store *s, const char *job_id)
{
    store_rc rc = run_id(s, ST_JOB_DELETE, job_id, "delete job");
    if (rc != STORE_OK || sqlite3_changes(s->db) != 0) return rc;
    store_job j = {0};
    if ((rc = store_job_get(s, job_id, &j)) != STORE_OK) return rc;
    if (!store_job_status_finished(j.status))
        rc = set_err(s, STORE_CONFLICT, "job %s is %s: only finished jobs can be deleted; cancel it first",
                     job_id, store_job_status_name(j.status));
    else if (j.sweep_id[0])
        rc = set_err(s, STORE_CONFLICT, "job %s is a trial of sweep %s: delete the sweep with its trials",
                     job_id, j.sweep_id);
    else
        rc = set_err(s, STORE_CONFLICT, "job %s is the init.from_job of a queued or running job", job_id);
    store_job_free(&j);
    return rc;
}

/* ---------------------------------------------------------------- sweeps */

void store_sweep_free(store_sweep *w)
{
    if (!w) return;
    free(w->name);
    free(w->request_json);
    memset(w, 0, sizeof *w);
}

/* Fill a sweep from a row in SWEEP_COLS order. On failure *w holds nothing. */
static store_rc read_sweep(store *s, sqlite3_stmt *st, void *item, int64_t *seq)
{
    store_sweep *w = item;
    char mode[8];
    store_rc rc;
    memset(w, 0, sizeof *w);
    if (seq) *seq = sqlite3_column_int64(st, 0);
    col_fixed(st, 1, w->id, sizeof w->id);
    col_fixed(st, 2, w->tenant, sizeof w->tenant);
    col_fixed(st, 5, w->metric, sizeof w->metric);
    col_fixed(st, 6, mode, sizeof mode);
    w->mode_max = strcmp(mode, "max") == 0;
    w->max_parallel = sqlite3_column_int(st, 7);
    w->n_trials = sqlite3_column_int(st, 8);
    w->halving_min_epochs = sqlite3_column_int(st, 9);
    w->halving_eta = sqlite3_column_int(st, 10);
    w->cancel_requested = sqlite3_column_int(st, 11) != 0;
    col_fixed(st, 12, w->created_at, sizeof w->created_at);
    for (int k = 0; k < STORE_JOB_STATUS_COUNT; k++) w->counts[k] = sqlite3_column_int64(st, 13 + k);
    if ((rc = col_dup(s, st, 3, &w->name)) != STORE_OK ||
        (rc = col_dup(s, st, 4, &w->request_json)) != STORE_OK) {
        store_sweep_free(w);
        return rc;
    }
    return STORE_OK;
}

static void clear_sweep(void *item)
{
    store_sweep_free(item);
}

static const row_kind sweep_rows = {"sweep", "sweeps", sizeof(store_sweep), read_sweep,
                                    clear_sweep};

void store_sweep_list_free(store_sweep *items, size_t n)
{
    free_rows(items, n, &sweep_rows);
}

store_rc store_sweep_get(store *s, const char *id, store_sweep *out)
{
    return get_row(s, ST_SWEEP_GET, id, &sweep_rows, out);
}

store_rc store_sweep_delete(store *s, const char *id)
{
    int deleted = 0;
    store_rc rc = tx_begin(s, 1);
    if (rc != STORE_OK) return rc;
    if ((rc = run_id(s, ST_SWEEP_DELETE_JOBS, id, "delete sweep trials")) == STORE_OK &&
        (rc = run_id(s, ST_SWEEP_DELETE, id, "delete sweep")) == STORE_OK) {
        deleted = sqlite3_changes(s->db) == 1;
        rc = deleted ? tx_commit(s) : STORE_OK;
    }
    if (rc != STORE_OK || !deleted) tx_rollback(s);
    if (rc != STORE_OK || deleted) return rc;
    /* Nothing went: absent, or a trial still queued or running. */
    store_sweep w;
    rc = store_sweep_get(s, id, &w);
    if (rc != STORE_OK) return rc;
    store_sweep_free(&w);
    return set_err(s, STORE_CONFLICT,
                   "sweep %s has trials queued or running, or one a waiting job starts from "
                   "(init.from_job); cancel it first",
                   id);
}

store_rc store_sweep_insert(store *s, const store_sweep_new *in, store_sweep *out)
{
    sqlite3_stmt *st = NULL;
    char id[STORE_ID_MAX];
    char (*job_ids)[STORE_ID_MAX] = NULL;
    int in_tx = 0;
    store_rc rc = STORE_OK;

    if (out) memset(out, 0, sizeof *out);
    s->errmsg[0] = '\0';
    if (!in || !in->request_json || !in->metric || in->n_trials < 1 || !in->trials ||
        !in->trial_params)
        return set_err(s, STORE_INVALID, "a sweep needs a request, an objective and trials");
    if (!fits(in->tenant ? in->tenant : "", STORE_TENANT_MAX) || !fits(in->metric, 64))
        return set_err(s, STORE_INVALID, "tenant or metric too long");
    for (size_t i = 0; i < in->n_trials; i++)
        if ((rc = job_new_check(s, &in->trials[i])) != STORE_OK) return rc;
    if (!(job_ids = calloc(in->n_trials, sizeof *job_ids)))
        return set_err(s, STORE_NOMEM, "out of memory");
    if (store_new_id("swp_", id, sizeof id) != STORE_OK) {
        rc = set_err(s, STORE_ERROR, "no randomness for an id: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < in->n_trials; i++) {
        if (store_new_id("job_", job_ids[i], sizeof job_ids[i]) != STORE_OK) {
            rc = set_err(s, STORE_ERROR, "no randomness for an id: %s", strerror(errno));
            goto out;
        }
    }

    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if (in->max_queued > 0) {
        int64_t queued = 0;
        if ((rc = store_job_count(s, STORE_JOB_QUEUED, &queued)) != STORE_OK) goto out;
        if (queued + (int64_t)in->n_trials > in->max_queued) {
            rc = set_err(s, STORE_LIMIT,
                         "the queue cannot take %zu more jobs (%lld queued, --max-queued %lld)",
                         in->n_trials, (long long)queued, (long long)in->max_queued);
            goto out;
        }
    }
    if ((rc = prep(s, ST_SWEEP_INSERT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, in->tenant ? in->tenant : "", -1, SQLITE_STATIC));
    BIND(bind_text_opt(st, 3, in->name));
    BIND(sqlite3_bind_text(st, 4, in->request_json, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 5, in->metric, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 6, in->mode_max ? "max" : "min", -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 7, in->max_parallel > 0 ? in->max_parallel : 0));
    BIND(sqlite3_bind_int64(st, 8, (sqlite3_int64)in->n_trials));
    BIND(sqlite3_bind_int(st, 9, in->halving_min_epochs > 0 ? in->halving_min_epochs : 0));
    BIND(sqlite3_bind_int(st, 10, in->halving_eta > 0 ? in->halving_eta : 0));
    if ((rc = run_done(s, st, "insert sweep")) != STORE_OK) goto out;
    done(st);
    st = NULL;
    for (size_t i = 0; i < in->n_trials; i++) {
        if ((rc = job_row_insert(s, job_ids[i], &in->trials[i], NULL)) != STORE_OK) goto out;
        if ((rc = prep(s, ST_JOB_TRIAL, &st)) != STORE_OK) goto out;
        BIND(sqlite3_bind_text(st, 1, job_ids[i], -1, SQLITE_STATIC));
        BIND(sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC));
        BIND(sqlite3_bind_int64(st, 3, (sqlite3_int64)i));
        BIND(bind_text_opt(st, 4, in->trial_params[i]));
        if ((rc = run_done(s, st, "insert trial")) != STORE_OK) goto out;
        done(st);
        st = NULL;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
    if (out) rc = store_sweep_get(s, id, out);
out:
    done(st);
    if (in_tx) tx_rollback(s);
    free(job_ids);
    return rc;
}

store_rc store_sweep_list(store *s, const store_list_query *q, store_sweep **items, size_t *n,
                          char *next_cursor)
{
    const char *texts[] = {q ? q->tenant : NULL};
    void *arr = NULL;
    store_rc rc = list_page(s, ST_SWEEP_LIST, texts, 1, q, &sweep_rows, &arr, n, next_cursor);
    *items = arr;
    return rc;
}

store_rc store_sweep_cancel(store *s, const char *id, store_idbuf **running, size_t *n_running)
{
    sqlite3_stmt *st = NULL;
    store_idbuf *ids = NULL;
    size_t n = 0, cap = 0;
    int in_tx = 0, code, n_queued = 0;
    store_rc rc;

    *running = NULL;
    *n_running = 0;
    if ((rc = tx_begin(s, 1)) != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = run_id(s, ST_SWEEP_FLAG_CANCEL, id, "cancel sweep")) != STORE_OK) goto out;
    if (sqlite3_changes(s->db) == 0) {
        rc = set_err(s, STORE_NOT_FOUND, "sweep %s not found", id);
        goto out;
    }
    if ((rc = run_id(s, ST_SWEEP_CANCEL_QUEUED, id, "cancel sweep")) != STORE_OK) goto out;
    n_queued = sqlite3_changes(s->db);
    /* Checkpoints that queued trials held (a shutdown or crash stopped them) go too. */
    if ((rc = run_id(s, ST_CKPT_DELETE_CANCELLED, id, "cancel sweep")) != STORE_OK) goto out;
    if ((rc = prep(s, ST_SWEEP_CANCEL_RUNNING, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC));
    while ((code = step(s, st)) == SQLITE_ROW) {
        store_idbuf *more = grow_array(s, ids, &cap, n, sizeof *ids);
        if (!more) {
            rc = STORE_NOMEM;
            goto out;
        }
        ids = more;
        col_fixed(st, 0, ids[n].id, sizeof ids[n].id);
        n++;
    }
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "cancel sweep");
        goto out;
    }
    done(st);
    st = NULL;
    if (n_queued == 0 && n == 0) {
        rc = set_err(s, STORE_CONFLICT, "every trial of sweep %s has already finished", id);
        goto out;
    }
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
    *running = ids;
    *n_running = n;
    ids = NULL;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    free(ids);
    return rc;
}

void store_trial_list_free(store_trial *items, size_t n)
{
    if (!items) return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].params_json);
        free(items[i].last_metrics_json);
        free(items[i].error);
    }
    free(items);
}

/* '$."name"': the JSON path of a record key (metric names are [A-Za-z0-9_]). */
static void metric_path(const char *metric, char *out, size_t len)
{
    snprintf(out, len, "$.\"%s\"", metric);
}

store_rc store_sweep_trials(store *s, const store_sweep *w, store_trial **items, size_t *n)
{
    sqlite3_stmt *st = NULL;
    store_trial *arr = NULL;
    size_t count = 0, cap = 0;
    char path[80], status[16];
    int code;
    store_rc rc;

    *items = NULL;
    *n = 0;
    metric_path(w->metric, path, sizeof path);
    if ((rc = prep(s, ST_SWEEP_TRIALS, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT));
    BIND(sqlite3_bind_int(st, 3, w->mode_max));
    while ((code = step(s, st)) == SQLITE_ROW) {
        store_trial *more = grow_array(s, arr, &cap, count, sizeof *arr);
        if (!more) {
            rc = STORE_NOMEM;
            goto out;
        }
        arr = more;
        store_trial *t = &arr[count];
        memset(t, 0, sizeof *t);
        count++;
        col_fixed(st, 0, t->job_id, sizeof t->job_id);
        t->index = sqlite3_column_int(st, 1);
        col_fixed(st, 2, status, sizeof status);
        t->status = store_job_status_from_name(status);
        t->epochs = sqlite3_column_int(st, 4);
        t->epochs_done = sqlite3_column_int(st, 5);
        t->best_epoch = sqlite3_column_int(st, 8);
        t->has_objective = sqlite3_column_type(st, 9) != SQLITE_NULL;
        t->objective = sqlite3_column_double(st, 9);
        if ((rc = col_dup(s, st, 3, &t->params_json)) != STORE_OK ||
            (rc = col_dup(s, st, 6, &t->last_metrics_json)) != STORE_OK ||
            (rc = col_dup(s, st, 7, &t->error)) != STORE_OK)
            goto out;
    }
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read trials");
        goto out;
    }
    *items = arr;
    *n = count;
    arr = NULL;
    count = 0;
out:
    done(st);
    store_trial_list_free(arr, count);
    return rc;
}

store_rc store_job_sweep_get(store *s, const char *job_id, store_job_sweep *out)
{
    sqlite3_stmt *st = NULL;
    char mode[8];
    store_rc rc = prep(s, ST_SWEEP_OF_JOB, &st);
    memset(out, 0, sizeof *out);
    if (rc != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC));
    int code = step(s, st);
    if (code == SQLITE_DONE) {
        rc = set_err(s, STORE_NOT_FOUND, "job %s is not a sweep trial", job_id);
    } else if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "read the sweep of a job");
    } else {
        col_fixed(st, 0, out->sweep_id, sizeof out->sweep_id);
        col_fixed(st, 1, out->metric, sizeof out->metric);
        col_fixed(st, 2, mode, sizeof mode);
        out->mode_max = strcmp(mode, "max") == 0;
        out->halving_min_epochs = sqlite3_column_int(st, 3);
        out->halving_eta = sqlite3_column_int(st, 4);
    }
out:
    done(st);
    return rc;
}

store_rc store_sweep_rung_values(store *s, const char *sweep_id, int epoch, const char *metric,
                                 const char *except_job, double **values, int *n)
{
    sqlite3_stmt *st = NULL;
    double *arr = NULL;
    size_t count = 0, cap = 0;
    int code;
    char path[80];
    store_rc rc;

    *values = NULL;
    *n = 0;
    metric_path(metric, path, sizeof path);
    if ((rc = prep(s, ST_SWEEP_RUNG, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, sweep_id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int(st, 2, epoch));
    BIND(sqlite3_bind_text(st, 3, path, -1, SQLITE_TRANSIENT));
    BIND(sqlite3_bind_text(st, 4, except_job, -1, SQLITE_STATIC));
    while ((code = step(s, st)) == SQLITE_ROW) {
        double *more = grow_array(s, arr, &cap, count, sizeof *arr);
        if (!more) {
            rc = STORE_NOMEM;
            goto out;
        }
        arr = more;
        arr[count++] = sqlite3_column_double(st, 0);
    }
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "read rung values");
        goto out;
    }
    *values = arr;
    *n = (int)count;
    arr = NULL;
out:
    done(st);
    free(arr);
    return rc;
}

/* ---------------------------------------------------------------- uploaded weights */

void store_weights_meta_free(store_weights_meta *m)
{
    if (!m) return;
    free(m->tensors_json);
    memset(m, 0, sizeof *m);
}

/* Fill *m from a row in WTS_COLS order. On failure *m holds nothing to free. */
static store_rc read_weights(store *s, sqlite3_stmt *st, void *item, int64_t *seq)
{
    store_weights_meta *m = item;
    memset(m, 0, sizeof *m);
    if (seq) *seq = sqlite3_column_int64(st, 0);
    col_fixed(st, 1, m->id, sizeof m->id);
    col_fixed(st, 2, m->tenant, sizeof m->tenant);
    col_fixed(st, 3, m->name, sizeof m->name);
    m->bytes = sqlite3_column_int64(st, 5);
    col_fixed(st, 6, m->sha256, sizeof m->sha256);
    col_fixed(st, 7, m->created_at, sizeof m->created_at);
    return col_dup(s, st, 4, &m->tensors_json);
}

store_rc store_weights_insert(store *s, store_weights_meta *meta, const void *data, size_t len)
{
    sqlite3_stmt *st = NULL;
    store_rc rc = STORE_OK;

    s->errmsg[0] = '\0';
    if (!meta || !data || !len || !meta->tensors_json || !memchr(meta->tenant, 0, sizeof meta->tenant) ||
        !memchr(meta->name, 0, sizeof meta->name))
        return set_err(s, STORE_INVALID, "weights need data, tensors, a tenant and a name");
    if (store_new_id("wts_", meta->id, sizeof meta->id) != STORE_OK)
        return set_err(s, STORE_ERROR, "no randomness for an id");
    digest_sha256_hex(data, len, meta->sha256);
    meta->bytes = (int64_t)len;

    if ((rc = prep(s, ST_WTS_INSERT, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_text(st, 1, meta->id, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 2, meta->tenant, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 3, meta->name, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_text(st, 4, meta->tensors_json, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_int64(st, 5, meta->bytes));
    BIND(sqlite3_bind_text(st, 6, meta->sha256, -1, SQLITE_STATIC));
    BIND(sqlite3_bind_blob64(st, 7, data, (sqlite3_uint64)len, SQLITE_STATIC));
    int code = step(s, st);
    if (code != SQLITE_ROW) {
        rc = sql_fail(s, code, "store weights");
        goto out;
    }
    col_fixed(st, 0, meta->created_at, sizeof meta->created_at);
    if ((rc = run_done(s, st, "store weights")) != STORE_OK) goto out;
out:
    done(st);
    return rc;
}

static void clear_weights(void *item)
{
    store_weights_meta_free(item);
}

static const row_kind weights_rows = {"weights", "weights", sizeof(store_weights_meta),
                                      read_weights, clear_weights};

void store_weights_list_free(store_weights_meta *items, size_t n)
{
    free_rows(items, n, &weights_rows);
}

store_rc store_weights_get(store *s, const char *id, store_weights_meta *out)
{
    return get_row(s, ST_WTS_GET, id, &weights_rows, out);
}

store_rc store_weights_list(store *s, const store_list_query *q, store_weights_meta **items,
                            size_t *n, char *next_cursor)
{
    const char *texts[] = {q ? q->tenant : NULL};
    void *arr = NULL;
    store_rc rc = list_page(s, ST_WTS_LIST, texts, 1, q, &weights_rows, &arr, n, next_cursor);
    *items = arr;
    return rc;
}

store_rc store_weights_load(store *s, const char *id, void **buf, size_t *len)
{
    return blob_whole(s, ST_WTS_DATA, "weights", id, 0, "weights", buf, len, NULL);
}

store_rc store_weights_delete(store *s, const char *id)
{
    store_weights_meta m;
    store_rc rc = run_id(s, ST_WTS_DELETE, id, "delete weights");
    if (rc != STORE_OK || sqlite3_changes(s->db) != 0) return rc;
    /* Nothing deleted: absent, or in use (the statement checked under its lock). */
    if ((rc = store_weights_get(s, id, &m)) != STORE_OK) return rc;
    store_weights_meta_free(&m);
    return set_err(s, STORE_CONFLICT, "weights %s are used by a queued or running job", id);
}

/* ---------------------------------------------------------------- operations */

#define BACKUP_PAGES_PER_STEP 256 /* 1 MiB at 4 KiB pages: one copy step */
#define BACKUP_BUSY_RETRIES 500   /* x 10 ms on a locked destination */

/* fsync a file (or, with dir = 1, the folder holding `path`). 0 or -1. */
static int sync_path(const char *path, int dir)
{
    char buf[4096];
    const char *target = path;
    if (dir) {
        snprintf(buf, sizeof buf, "%s", path);
        char *slash = strrchr(buf, '/');
        if (!slash) snprintf(buf, sizeof buf, ".");
        else if (slash == buf) buf[1] = '\0';
        else *slash = '\0';
        target = buf;
    }
    int fd = open(target, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

store_rc store_backup(store *s, const char *dest_path, int64_t *bytes)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *bk = NULL;
    char *tmp = NULL;
    int in_tx = 0, code = SQLITE_OK, retries = 0, hold = -1;
    struct stat sb;
    store_rc rc = STORE_OK;

    if (bytes) *bytes = 0;
    if (!dest_path || !dest_path[0]) return set_err(s, STORE_INVALID, "backup: no destination");
    if (stat(dest_path, &sb) == 0)
        return set_err(s, STORE_CONFLICT, "%s: already exists (a backup never overwrites)",
                       dest_path);
    size_t n = strlen(dest_path) + 13;
    if (!(tmp = malloc(n))) return set_err(s, STORE_NOMEM, "backup: out of memory");
    snprintf(tmp, n, "%s.tmp-journal", dest_path);
    remove(tmp); /* left by a backup that died half-way: its journal, then the file */
    snprintf(tmp, n, "%s.tmp", dest_path);
    remove(tmp);
    /* Held while the copy runs: ops_backup_leftovers deletes only unheld ones. */
    hold = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (hold >= 0) flock(hold, LOCK_EX);
    code = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX, NULL);
    if (code != SQLITE_OK) {
        rc = set_err(s, map_sqlite(code) == STORE_FULL ? STORE_FULL : STORE_ERROR,
                     "%s: cannot create: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(code));
        goto out;
    }
    /* One snapshot for the whole copy: inside an explicit transaction the read
     * transaction the first step opens lasts until COMMIT, so writes by other
     * connections (WAL: they are not blocked) never restart the copy and the
     * backup is exactly the database as of its first step. */
    if ((rc = tx_begin(s, 0)) != STORE_OK) goto out;
    in_tx = 1;
    bk = sqlite3_backup_init(dst, "main", s->db, "main");
    if (!bk) {
        rc = set_err(s, STORE_ERROR, "backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    for (;;) {
        code = sqlite3_backup_step(bk, BACKUP_PAGES_PER_STEP);
        if (code == SQLITE_OK) continue;
        if ((code == SQLITE_BUSY || code == SQLITE_LOCKED) && retries++ < BACKUP_BUSY_RETRIES) {
            sqlite3_sleep(10);
            continue;
        }
        break;
    }
    int fin = sqlite3_backup_finish(bk);
    bk = NULL;
    if (code != SQLITE_DONE) {
        rc = sql_fail(s, code, "backup");
        goto out;
    }
    if (fin != SQLITE_OK) {
        rc = sql_fail(s, fin, "backup");
        goto out;
    }
    tx_rollback(s); /* read-only: ends the snapshot */
    in_tx = 0;
    code = sqlite3_close(dst);
    dst = NULL;
    if (code != SQLITE_OK) {
        rc = set_err(s, STORE_ERROR, "%s: close: %s", tmp, sqlite3_errstr(code));
        goto out;
    }
    if (sync_path(tmp, 0) != 0 || rename(tmp, dest_path) != 0) {
        rc = set_err(s, errno == ENOSPC ? STORE_FULL : STORE_ERROR, "%s: %s", dest_path,
                     strerror(errno));
        goto out;
    }
    sync_path(dest_path, 1); /* best effort: the rename itself reaches the disk */
    if (bytes && stat(dest_path, &sb) == 0) *bytes = (int64_t)sb.st_size;
    s->errmsg[0] = '\0';
out:
    if (bk) sqlite3_backup_finish(bk);
    if (in_tx) tx_rollback(s);
    if (dst) sqlite3_close(dst);
    if (rc != STORE_OK && tmp) remove(tmp);
    if (hold >= 0) close(hold);
    free(tmp);
    return rc;
}

store_rc store_jobs_prune(store *s, double before_unix_s, int64_t *n_deleted)
{
    sqlite3_stmt *st = NULL;
    int in_tx = 0;
    int64_t n = 0;
    if (n_deleted) *n_deleted = 0;
    store_rc rc = tx_begin(s, 1);
    if (rc != STORE_OK) goto out;
    in_tx = 1;
    if ((rc = prep(s, ST_JOBS_PRUNE, &st)) != STORE_OK) goto out;
    BIND(sqlite3_bind_double(st, 1, before_unix_s));
    if ((rc = run_done(s, st, "prune jobs")) != STORE_OK) goto out;
    n = sqlite3_changes(s->db);
    /* A sweep whose trials are all gone would stay an empty shell. */
    if ((rc = run_plain(s, ST_SWEEPS_PRUNE, "prune sweeps")) != STORE_OK) goto out;
    if ((rc = tx_commit(s)) != STORE_OK) goto out;
    in_tx = 0;
    if (n_deleted) *n_deleted = n;
out:
    done(st);
    if (in_tx) tx_rollback(s);
    return rc;
}

/* ---------------------------------------------------------------- fault injection */

store_rc store_test_set_max_pages(store *s, int64_t n_pages)
{
    char sql[64];
    sqlite3_stmt *st = NULL;
    /* A PRAGMA takes no bound parameters; the value is an integer from our caller. */
    if (s->default_max_pages == 0) {
        if (sqlite3_prepare_v2(s->db, "PRAGMA max_page_count", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            s->default_max_pages = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (s->default_max_pages == 0) return set_err(s, STORE_ERROR, "cannot read max_page_count");
    }
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             (long long)(n_pages > 0 ? n_pages : s->default_max_pages));
    return pragma_exec(s, sql);
}

void store_test_fail_after(store *s, int n, store_rc rc)
{
    s->fail_after = n > 0 ? n : 0;
    switch (rc) {
    case STORE_FULL: s->fail_code = SQLITE_FULL; break;
    case STORE_BUSY: s->fail_code = SQLITE_BUSY; break;
    case STORE_CORRUPT: s->fail_code = SQLITE_CORRUPT; break;
    default: s->fail_code = SQLITE_IOERR; break;
    }
}

void store_test_set_chunk_bytes(store *s, size_t n_bytes)
{
    n_bytes &= ~(size_t)3;
    s->chunk_bytes = n_bytes ? n_bytes : CHUNK_BYTES_DEFAULT;
}
