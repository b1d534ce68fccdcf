/*
 * pool.h — the training worker pool.
 *
 * pool_start launches `workers` threads. Each sleeps on a condition variable until
 * pool_notify (a submit) wakes it, then claims the oldest queued job through the
 * store (one atomic UPDATE ... RETURNING inside store.c), loads the job's datasets
 * (each dataset is loaded once and shared read-only between concurrent jobs through
 * a refcounted cache), builds the model and trainer from the stored spec, resumes
 * from the job's latest checkpoint when one exists (at an epoch end, or mid-epoch
 * after a graceful stop), and trains. Every epoch commits its metrics record, a
 * checkpoint and the progress in one store transaction, so a crash at any moment
 * resumes from the last committed epoch with no epoch lost or counted twice.
 * Success stores the weights (safetensors) and the test metrics; NaN/Inf, bad data
 * or out of memory mark the job failed with the core's message (it names the epoch
 * and batch), keeping its metrics and last good checkpoint; a cancel marks it
 * cancelled with the finished epochs kept.
 *
 * The pool does not parse HTTP or know routes. Each worker owns its own store
 * connection. Worker threads run at nice 10 so request handling stays responsive,
 * and the process-wide BLAS thread count is set once at start so that
 * workers x BLAS threads <= cores.
 *
 * Thread-safety: pool_notify, pool_cancel, pool_progress_get and pool_busy may be
 * called from any thread at any time between pool_start and pool_free, also after
 * pool_stop (requests still in flight while the server drains). pool_stop and
 * pool_free are called from the thread that started the pool.
 */
#ifndef FITD_POOL_H
#define FITD_POOL_H

#include <stddef.h>

typedef struct pool pool;

typedef struct pool_options {
    int workers;         /* <= 0: the number of online cores */
    const char *db_path; /* each worker opens its own store connection on it */
    int threads_per_job; /* a job's math split over so many threads; <= 0: max(1, cores / workers) */
    struct metrics *metrics; /* optional: counts each committed epoch (metrics.h) */
} pool_options;

/* Set OpenBLAS to one thread (each worker splits its jobs' math over its own
 * threads, par.h) and start the workers; they immediately
 * look for queued jobs (so jobs queued before a restart run). Each worker opens its
 * store connection itself and retries while it cannot. Returns NULL on failure (out
 * of memory, thread creation) with a reason in err (may be NULL) of size err_len.
 * Free with pool_free. */
pool *pool_start(const pool_options *opt, char *err, size_t err_len);

/* Wake one sleeping worker: a job was queued. */
void pool_notify(pool *p);

/* Call fn(ctx) on a worker thread after each committed epoch and when a job ends
 * (main wakes the event streams with it). Set before or while workers run; fn
 * must not block. NULL fn: no calls. */
void pool_on_news(pool *p, void (*fn)(void *ctx), void *ctx);

/* Ask the worker running `job_id` to stop at its next batch boundary; the job ends
 * `cancelled` with its finished epochs kept. Returns 1 if a worker of this pool is
 * running the job, 0 otherwise. Call it after store_job_cancel: a worker that claims
 * the job in between finds the cancel in the store (workers poll it at start and
 * about once a second). */
int pool_cancel(pool *p, const char *job_id);

/* Live progress of a running job, fresher than the store's copy (the store is
 * written at most about once a second). Returns 1 and fills the fields if a worker
 * of this pool is running the job, 0 otherwise. */
typedef struct pool_progress {
    int epoch;   /* the epoch in progress, 1-based (epochs completed + 1) */
    int epochs;
    int batch;   /* batches done in that epoch */
    int batches;
} pool_progress;
int pool_progress_get(pool *p, const char *job_id, pool_progress *out);

/* Workers running a job now (*busy) and in total (*total); both may be NULL.
 * NULL p gives 0 and 0. */
void pool_busy(pool *p, int *busy, int *total);

/* Graceful shutdown: set the stopping flag, wake every worker and join them. A
 * running job stops at its next batch boundary, stores the trainer's state there
 * as its checkpoint (mid-epoch, without a metrics row) and goes back to `queued`
 * in the same store transaction, so a restart continues from that very batch and
 * ends with the weights an uninterrupted run gives. Returns after at most about
 * one batch per running job (plus a dataset load or a validation pass in
 * progress); bounding the whole shutdown is main's job. The pool stays valid (the
 * calls above do nothing harmful) until pool_free. Accepts NULL; a second call
 * does nothing. */
void pool_stop(pool *p);
/* pool_stop, then free the pool: after the last caller is gone (the HTTP server
 * stopped). Accepts NULL. */
void pool_free(pool *p);

#endif
