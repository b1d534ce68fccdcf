/*
 * pool.c — worker threads that claim queued jobs from the store and train them on
 * the core. See pool.h for the contract.
 *
 * Locking: `mu` guards the wake-up counter and the table of running jobs (slot
 * ids); a running job's progress and cancel flag are atomics read without the
 * lock. `cache_mu` guards the dataset cache. No lock is held while training, while
 * loading a dataset or while talking to the store.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sys/prctl.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "nn.h"
#include "par.h"
#include "pool.h"
#include "record.h"
#include "spec.h"
#include "store.h"
#include "sweep.h"
#include "warmstart.h"

/* How often a running job writes its batch progress to the store and looks for a
 * cancel requested in the database (by another process, or a lost pool_cancel). */
#define POOL_PROGRESS_INTERVAL_S 1.0
/* A sleeping worker also looks at the queue this often: a safety net for jobs
 * queued by another process sharing the database. */
#define POOL_IDLE_POLL_S 2
/* After a job paused on a full disk: seconds before this worker claims again. */
#define POOL_FULL_PAUSE_S 1
/* A store call that met another connection's write lock past SQLite's busy
 * timeout is tried again after this long, while the pool runs (retry_busy). */
#define POOL_BUSY_RETRY_MS 1000

/* One loaded dataset, shared read-only by the jobs that use it. */
typedef struct ds_entry {
    char id[STORE_ID_MAX];
    int refs;
    int loading; /* a worker is loading it; others wait on cache_cv */
    nn_dataset ds;
    struct ds_entry *next;
} ds_entry;

/* What a worker is running: visible to pool_cancel and pool_progress_get. The
 * epoch in progress and the batches done in it are one word, so a reader never
 * pairs a new epoch with the last one's batch count (progress seen going back). */
typedef struct slot {
    char job_id[STORE_ID_MAX]; /* "" when idle; written under pool.mu */
    atomic_int cancel;
    atomic_int epochs, batches;
    _Atomic uint64_t at; /* epoch << 32 | batch */
} slot;

static void slot_set_at(slot *s, int epoch, int batch)
{
    atomic_store(&s->at, (uint64_t)(uint32_t)epoch << 32 | (uint32_t)batch);
}

static void slot_get_at(const slot *s, int *epoch, int *batch)
{
    uint64_t at = atomic_load(&s->at);
    *epoch = (int)(uint32_t)(at >> 32);
    *batch = (int)(uint32_t)at;
}

typedef struct worker {
    struct pool *p;
    int index;
    pthread_t thread;
    int started;
    int full_pause; /* the last job paused on a full disk: wait before claiming */
    par_pool *par;  /* the threads a job's math is split over (NULL: this one only) */
    slot slot;
} worker;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wakeups;          /* notifications not yet consumed; under mu */
    atomic_int stopping;
    char *db_path;
    int n_workers;
    int threads_per_job; /* parts of each job's math: cores / workers */
    worker *workers;
    metrics *metrics; /* borrowed, may be NULL */
    void (*news_fn)(void *ctx); /* pool_on_news; under mu */
    void *news_ctx;

    pthread_mutex_t cache_mu;
    pthread_cond_t cache_cv;
    ds_entry *cache;
};

/* A job committed an epoch or ended: tell whoever asked (pool_on_news). */
static void tell_news(pool *p)
{
    pthread_mutex_lock(&p->mu);
    void (*fn)(void *) = p->news_fn;
    void *ctx = p->news_ctx;
    pthread_mutex_unlock(&p->mu);
    if (fn) fn(ctx);
}

/* ---------------------------------------------------------------- dataset cache */

/* Whether to try a store call again: it met a lock that another connection (a
 * long upload, a backup, another process) held past the busy timeout. That is no
 * failure of the job, and giving up would fail it or, for its final write, leave
 * it running with no worker; so it is retried while the pool runs. After a stop
 * the job is left as it is: the next start's recovery requeues it. */
static int retry_busy(pool *p, const char *what, const char *id)
{
    if (atomic_load(&p->stopping)) return 0;
    LOG(LOG_WARN, "database busy: retrying", "\"what\":\"%s\",\"id\":\"%s\"", what, id);
    for (int ms = 0; ms < POOL_BUSY_RETRY_MS && !atomic_load(&p->stopping); ms += 50) {
        struct timespec nap = {0, 50 * 1000000L};
        nanosleep(&nap, NULL);
    }
    return !atomic_load(&p->stopping);
}

/* rc = call, made again while it meets a busy database and retry_busy allows. */
#define RETRY_BUSY(p, what, id, rc, call) \
    while (((rc) = (call)) == STORE_BUSY && retry_busy((p), (what), (id))) { \
    }

/* Get a shared, read-only dataset: load it from the store on first use, otherwise
 * take another reference. Returns NULL with a message in err on failure. Release
 * with cache_release. */
static const nn_dataset *cache_acquire(pool *p, store *st, const char *id, char *err,
                                       size_t err_len)
{
    ds_entry *e = NULL;
    pthread_mutex_lock(&p->cache_mu);
    for (;;) {
        for (e = p->cache; e; e = e->next)
            if (strcmp(e->id, id) == 0) break;
        if (!e || !e->loading) break;
        pthread_cond_wait(&p->cache_cv, &p->cache_mu);
    }
    if (e) {
        e->refs++;
        pthread_mutex_unlock(&p->cache_mu);
        return &e->ds;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&p->cache_mu);
        snprintf(err, err_len, "out of memory loading dataset %s", id);
        return NULL;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->refs = 1;
    e->loading = 1;
    e->next = p->cache;
    p->cache = e;
    pthread_mutex_unlock(&p->cache_mu);

    store_rc rc;
    RETRY_BUSY(p, "dataset load", id, rc, store_dataset_load(st, id, NULL, &e->ds));
    if (rc != STORE_OK)
        snprintf(err, err_len, "dataset %s could not be loaded: %s (%s)", id, store_errmsg(st),
                 store_rc_name(rc));

    pthread_mutex_lock(&p->cache_mu);
    e->loading = 0;
    if (rc != STORE_OK) {
        ds_entry **pp = &p->cache;
        while (*pp != e) pp = &(*pp)->next;
        *pp = e->next;
        free(e);
        e = NULL;
    }
    pthread_cond_broadcast(&p->cache_cv);
    pthread_mutex_unlock(&p->cache_mu);
    return e ? &e->ds : NULL;
}

/* Drop a reference taken by cache_acquire; the last one frees the data. NULL ok. */
static void cache_release(pool *p, const nn_dataset *ds)
{
    if (!ds) return;
    ds_entry *gone = NULL;
    pthread_mutex_lock(&p->cache_mu);
    for (ds_entry **pp = &p->cache; *pp; pp = &(*pp)->next) {
        if (&(*pp)->ds == ds) {
            if (--(*pp)->refs == 0) {
                gone = *pp;
                *pp = gone->next;
            }
            break;
        }
    }
    pthread_mutex_unlock(&p->cache_mu);
    if (gone) {
        nn_dataset_free(&gone->ds);
        free(gone);
    }
}

/* ---------------------------------------------------------------- one job */

typedef struct run_ctx {
    pool *p;
    worker *w;
    store *st;
    const char *job_id;
    double last_progress_s;
    int db_cancel; /* a cancel was seen in the database */
    int disk_full; /* an epoch commit failed with STORE_FULL: pause the job */
    int64_t train_samples; /* samples one epoch trains on (for metrics) */
    char commit_err[400];
    int db_busy;           /* an epoch commit still met a lock when the pool stopped */
    store_job_sweep sweep; /* a trial's sweep; halving_min_epochs 0 = no halving */
    int epochs;            /* planned epochs (halving rungs lie below) */
    char halted[300];      /* why successive halving stopped the trial; "" = it did not */
} run_ctx;

/* Serialize a record built by record.c (consumed) to compact text; malloc'ed,
 * NULL on out of memory. */
static char *dump_record(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
                   : NULL;
    json_decref(o);
    return text;
}

/* Check the database's cancel flag; sets ctx->db_cancel. */
static void poll_db_cancel(run_ctx *ctx)
{
    int requested = 0;
    if (store_job_cancel_requested(ctx->st, ctx->job_id, &requested) == STORE_OK && requested)
        ctx->db_cancel = 1;
}

static int cb_on_epoch(void *user, nn_trainer *t, const nn_epoch_record *rec)
{
    run_ctx *ctx = user;
    void *ckpt = NULL;
    size_t ckpt_len = 0;
    char *text = NULL;
    nn_error err = {0};
    int rc = 1;

    text = dump_record(record_epoch_json(rec));
    if (!text) {
        snprintf(ctx->commit_err, sizeof ctx->commit_err,
                 "out of memory writing the record of epoch %d", rec->epoch);
        goto out;
    }
    if (nn_trainer_checkpoint(t, &ckpt, &ckpt_len, &err) != NN_OK) {
        snprintf(ctx->commit_err, sizeof ctx->commit_err, "checkpoint after epoch %d: %s",
                 rec->epoch, err.message);
        goto out;
    }
    /* A sweep trial behind the others at a rung stops here (server/sweep.h): the
     * verdict is committed with the epoch, so a crash cannot keep one without the
     * other (the next start's recovery cancels the trial). */
    int halt = ctx->sweep.halving_min_epochs > 0 &&
               sweep_halving_stop(ctx->st, &ctx->sweep, ctx->job_id, rec->epoch, ctx->epochs, text,
                                  ctx->halted, sizeof ctx->halted);
    store_epoch e = {
        .epoch = rec->epoch,
        .record_json = text,
        .checkpoint = ckpt,
        .checkpoint_len = ckpt_len,
        .best_epoch = nn_trainer_best_epoch(t),
        .batches = nn_trainer_batches_per_epoch(t),
        .halted = halt ? ctx->halted : NULL,
    };
    store_rc src;
    RETRY_BUSY(ctx->p, "epoch commit", ctx->job_id, src,
               store_epoch_commit(ctx->st, ctx->job_id, &e));
    if (src == STORE_CONFLICT) {
        /* No longer running (cancelled in the database by another process). */
        ctx->db_cancel = 1;
        rc = 0;
        goto out;
    }
    if (src != STORE_OK) {
        ctx->disk_full = src == STORE_FULL;
        ctx->db_busy = src == STORE_BUSY; /* still, and the pool stops */
        snprintf(ctx->commit_err, sizeof ctx->commit_err, "storing epoch %d: %s (%s)", rec->epoch,
                 store_errmsg(ctx->st), store_rc_name(src));
        goto out;
    }
    /* The epoch in progress is the next one; after the last, the finished last one
     * (progress read while the job saves its weights said epoch 11 of 10). */
    if (rec->epoch < ctx->epochs)
        slot_set_at(&ctx->w->slot, rec->epoch + 1, 0);
    else
        slot_set_at(&ctx->w->slot, rec->epoch, atomic_load(&ctx->w->slot.batches));
    metrics_on_epoch(ctx->p->metrics, rec->seconds, ctx->train_samples);
    tell_news(ctx->p);
    poll_db_cancel(ctx);
    if (halt) ctx->db_cancel = 1;
    rc = 0;
out:
    free(ckpt);
    free(text);
    return rc;
}

static int cb_should_cancel(void *user)
{
    run_ctx *ctx = user;
    return atomic_load(&ctx->w->slot.cancel) || ctx->db_cancel || atomic_load(&ctx->p->stopping);
}

static void cb_on_batch(void *user, int epoch, int batch, int n_batches)
{
    run_ctx *ctx = user;
    slot_set_at(&ctx->w->slot, epoch, batch); /* batches: set once, before training */
    if (clock_mono_s() - ctx->last_progress_s >= POOL_PROGRESS_INTERVAL_S) {
        (void)store_job_progress(ctx->st, ctx->job_id, epoch, batch, n_batches);
        poll_db_cancel(ctx);
        ctx->last_progress_s = clock_mono_s(); /* a second of training, however long these took */
    }
}

/* Make an error message that says where: the core's messages name the epoch and
 * batch for numeric failures; others get the progress appended. */
static void describe_failure(char *buf, size_t len, const nn_error *err, nn_status rc,
                             const slot *s)
{
    const char *msg = err->message[0] ? err->message : nn_status_name(rc);
    int epoch, batch;
    slot_get_at(s, &epoch, &batch);
    if (strstr(msg, "epoch"))
        snprintf(buf, len, "%s: %s", nn_status_name(rc), msg);
    else
        snprintf(buf, len, "%s: %s (at epoch %d, batch %d of %d)", nn_status_name(rc), msg, epoch,
                 batch, atomic_load(&s->batches));
}

/* A graceful stop of a running job: store its mid-epoch checkpoint and put it back
 * to queued (store_job_suspend), or plainly requeue it when it rests at an epoch
 * boundary or the checkpoint cannot be made (then it resumes from its last epoch,
 * still exactly). */
static void requeue_stopped(store *st, const char *job_id, const nn_trainer *trainer)
{
    void *ckpt = NULL;
    size_t len = 0;
    nn_error err = {0};
    int epoch = nn_trainer_epoch(trainer), batch = nn_trainer_batch(trainer);
    store_rc src = STORE_ERROR;
    if (batch > 0) {
        if (nn_trainer_checkpoint(trainer, &ckpt, &len, &err) == NN_OK) {
            src = store_job_suspend(st, job_id, ckpt, len, epoch, batch,
                                    nn_trainer_batches_per_epoch(trainer));
            if (src != STORE_OK)
                LOG(LOG_WARN, "mid-epoch checkpoint not stored",
                    "\"job_id\":\"%s\",\"rc\":\"%s\"", job_id, store_rc_name(src));
        } else {
            char q[300];
            LOG(LOG_WARN, "mid-epoch checkpoint failed", "\"job_id\":\"%s\",\"error\":%s", job_id,
                log_quote(q, sizeof q, err.message));
        }
        free(ckpt);
    }
    if (src != STORE_OK) {
        batch = 0;
        src = store_job_requeue(st, job_id);
    }
    if (src != STORE_OK)
        LOG(LOG_ERROR, "job requeue failed", "\"job_id\":\"%s\",\"rc\":\"%s\"", job_id,
            store_rc_name(src));
    else
        LOG(LOG_INFO, "job requeued", "\"job_id\":\"%s\",\"epoch\":%d,\"batch\":%d", job_id,
            epoch, batch);
}

/* Train one claimed job to its end (or to a stop) and record the outcome. */
static void run_job(pool *p, worker *w, store *st, store_job *job)
{
    spec_job spec = {0};
    spec_problems *probs = NULL;
    const nn_dataset *train = NULL, *val = NULL, *test = NULL;
    nn_model *model = NULL;
    nn_trainer *trainer = NULL;
    void *ckpt = NULL, *weights = NULL;
    size_t ckpt_len = 0, weights_len = 0;
    char *test_json = NULL;
    nn_error err = {0};
    char msg[512] = "";
    store_job_status final = STORE_JOB_FAILED;
    store_rc src;
    run_ctx ctx = {.p = p, .w = w, .st = st, .job_id = job->id};

    LOG(LOG_INFO, "job started", "\"job_id\":\"%s\",\"worker\":%d,\"attempt\":%d", job->id,
        w->index, job->attempts);

    probs = calloc(1, sizeof *probs);
    if (!probs) {
        snprintf(msg, sizeof msg, "out of memory before training");
        goto finish;
    }
    int prc = spec_job_parse_stored(job->spec_json, &spec, probs);
    if (prc != SPEC_OK) {
        snprintf(msg, sizeof msg, "stored spec is invalid: %s: %s",
                 probs->n ? probs->items[0].pointer : "", probs->n ? probs->items[0].message : "");
        goto finish;
    }
    atomic_store(&w->slot.epochs, spec.fit.epochs);
    ctx.epochs = spec.fit.epochs;
    if (store_job_sweep_get(st, job->id, &ctx.sweep) != STORE_OK)
        memset(&ctx.sweep, 0, sizeof ctx.sweep); /* not a trial (or unreadable): no halving */
    slot_set_at(&w->slot, job->epochs_done + 1, 0);

    const char *train_id = job->train_dataset_id[0] ? job->train_dataset_id : spec.train;
    if (!train_id[0]) {
        snprintf(msg, sizeof msg, "the training dataset no longer exists");
        goto finish;
    }
    train = cache_acquire(p, st, train_id, msg, sizeof msg);
    if (!train) goto finish;
    if (spec.validation[0]) {
        val = cache_acquire(p, st, spec.validation, msg, sizeof msg);
        if (!val) goto finish;
    }
    if (spec.test[0]) {
        test = cache_acquire(p, st, spec.test, msg, sizeof msg);
        if (!test) goto finish;
    }

    model = nn_model_new(&spec.model, spec.fit.seed, &err);
    if (!model) goto core_error;
    nn_parallel runner = par_runner(w->par);
    nn_model_set_parallel(model, &runner);
    if (nn_check_data(model, &spec.compile, train, "data.train", &err) != NN_OK) goto core_error;
    if (val && nn_check_data(model, &spec.compile, val, "data.validation", &err) != NN_OK)
        goto core_error;
    if (test && nn_check_data(model, &spec.compile, test, "data.test", &err) != NN_OK)
        goto core_error;
    trainer = nn_trainer_new(model, &spec.compile, &spec.fit, train, val, &err);
    if (!trainer) goto core_error;
    atomic_store(&w->slot.batches, nn_trainer_batches_per_epoch(trainer));
    ctx.train_samples = (int64_t)nn_trainer_train_samples(trainer);

    /* Resume after a crash or a graceful stop. */
    RETRY_BUSY(p, "checkpoint load", job->id, src,
               store_job_checkpoint_load(st, job->id, &ckpt, &ckpt_len, NULL));
    if (src == STORE_OK) {
        if (nn_trainer_restore(trainer, ckpt, ckpt_len, &err) != NN_OK) goto core_error;
        slot_set_at(&w->slot, nn_trainer_epoch(trainer) + 1, nn_trainer_batch(trainer));
        LOG(LOG_INFO, "job resumed", "\"job_id\":\"%s\",\"epoch\":%d,\"batch\":%d", job->id,
            nn_trainer_epoch(trainer), nn_trainer_batch(trainer));
    } else if (src != STORE_NOT_FOUND) {
        snprintf(msg, sizeof msg, "loading the checkpoint: %s (%s)", store_errmsg(st),
                 store_rc_name(src));
        goto finish;
    } else if (spec.init.kind != SPEC_INIT_NONE) { /* a first start: "init" (warmstart.h) */
        if (warmstart_apply(st, &spec, model, trainer, msg, sizeof msg) != 0) goto finish;
        slot_set_at(&w->slot, nn_trainer_epoch(trainer) + 1, 0);
    }
    free(ckpt);
    ckpt = NULL;

    poll_db_cancel(&ctx);
    ctx.last_progress_s = clock_mono_s();
    nn_callbacks cb = {
        .user = &ctx,
        .on_epoch = cb_on_epoch,
        .should_cancel = cb_should_cancel,
        .on_batch = cb_on_batch,
    };
    nn_status rc = nn_trainer_run(trainer, &cb, &err);
    if (rc == NN_ERR_CANCELLED) {
        if (atomic_load(&w->slot.cancel) || ctx.db_cancel) {
            final = STORE_JOB_CANCELLED;
            if (ctx.halted[0])
                snprintf(msg, sizeof msg, "%s", ctx.halted);
            else
                snprintf(msg, sizeof msg, "cancelled after %d completed epochs",
                         nn_trainer_epoch(trainer));
            goto finish;
        }
        /* Shutting down: back to the queue. Stopped mid-epoch, the trainer's state
         * at this batch boundary becomes the checkpoint in the same transaction, so
         * the restart continues from this very batch; at an epoch boundary the
         * epoch's own checkpoint already says the same. */
        requeue_stopped(st, job->id, trainer);
        goto out;
    }
    if (rc == NN_ERR_CALLBACK && ctx.disk_full) {
        /* Disk full: nothing of this epoch was stored. Pause: back to the queue, to
         * resume from its last stored checkpoint once space returns (the worker
         * waits POOL_FULL_PAUSE_S before claiming again). Never failed for this. */
        char q[600];
        RETRY_BUSY(p, "requeue", job->id, src, store_job_requeue(st, job->id));
        LOG(LOG_WARN, "disk full: job paused and requeued", "\"job_id\":\"%s\",\"rc\":\"%s\",\"error\":%s",
            job->id, store_rc_name(src), log_quote(q, sizeof q, ctx.commit_err));
        w->full_pause = 1;
        goto out;
    }
    if (rc == NN_ERR_CALLBACK && ctx.db_busy) { /* stopping: retry_busy */
        LOG(LOG_WARN, "database busy at stop: job left running for the next start to requeue",
            "\"job_id\":\"%s\"", job->id);
        goto out;
    }
    if (rc == NN_ERR_CALLBACK && ctx.commit_err[0]) {
        snprintf(msg, sizeof msg, "%s", ctx.commit_err);
        goto finish;
    }
    if (rc != NN_OK) goto core_error;

    /* Success: weights (the best ones when restore_best_weights; the core restored
     * them), with the spec as metadata, and the test metrics. */
    nn_kv meta[2] = {{"job_id", job->id}, {"spec", job->spec_json ? job->spec_json : ""}};
    if (nn_model_save_safetensors(model, meta, 2, &weights, &weights_len, &err) != NN_OK)
        goto core_error;
    if (test) {
        nn_eval_result r;
        if (nn_model_evaluate(model, &spec.compile, test, spec.fit.batch_size, &r, &err) != NN_OK)
            goto core_error;
        test_json = dump_record(record_eval_json(&spec.compile, &r));
        if (!test_json) {
            snprintf(msg, sizeof msg, "out of memory storing the test metrics");
            goto finish;
        }
    }
    final = STORE_JOB_SUCCEEDED;
    msg[0] = 0;
    goto finish;

core_error:
    describe_failure(msg, sizeof msg, &err, err.code ? err.code : NN_ERR_INVALID, &w->slot);
finish:
    /* Only a success stores weights: never the diverged (or unevaluated) ones; a
     * failed job's last good ones are its checkpoint's (GET /v1/jobs/{id}/checkpoint).
     * The buffer itself is freed at out. */
    RETRY_BUSY(p, "finish", job->id, src,
               store_job_finish(st, job->id, final, msg[0] ? msg : NULL,
                                final == STORE_JOB_SUCCEEDED ? weights : NULL, weights_len,
                                test_json));
    if (src == STORE_FULL) {
        /* No room for the weights (or the outcome): pause as for an epoch; the rerun
         * restores the last checkpoint and finishes again once space returns. */
        store_rc rq;
        RETRY_BUSY(p, "requeue", job->id, rq, store_job_requeue(st, job->id));
        LOG(LOG_WARN, "disk full: job finish deferred, job requeued",
            "\"job_id\":\"%s\",\"rc\":\"%s\"", job->id, store_rc_name(rq));
        w->full_pause = 1;
    } else if (src != STORE_OK) {
        LOG(LOG_ERROR, "job finish failed", "\"job_id\":\"%s\",\"rc\":\"%s\"", job->id,
            store_rc_name(src));
    } else {
        char q[600];
        LOG(LOG_INFO, "job finished", "\"job_id\":\"%s\",\"status\":\"%s\",\"error\":%s", job->id,
            store_job_status_name(final), msg[0] ? log_quote(q, sizeof q, msg) : "null");
        tell_news(p);
    }
out:
    free(test_json);
    free(weights);
    free(ckpt);
    nn_trainer_free(trainer);
    nn_model_free(model);
    cache_release(p, test);
    cache_release(p, val);
    cache_release(p, train);
    spec_job_free(&spec);
    free(probs);
}

/* ---------------------------------------------------------------- workers */

static void slot_begin(pool *p, worker *w, const char *job_id)
{
    pthread_mutex_lock(&p->mu);
    snprintf(w->slot.job_id, sizeof w->slot.job_id, "%s", job_id);
    atomic_store(&w->slot.cancel, 0);
    atomic_store(&w->slot.epochs, 0);
    atomic_store(&w->slot.batches, 0);
    slot_set_at(&w->slot, 0, 0);
    pthread_mutex_unlock(&p->mu);
}

static void slot_end(pool *p, worker *w)
{
    pthread_mutex_lock(&p->mu);
    w->slot.job_id[0] = 0;
    pthread_mutex_unlock(&p->mu);
}

/* After a job: hand back what it used. The model, trainer and dataset buffers were
 * freed, but glibc keeps freed memory in this thread's arena (most of it below the
 * arena's top, which free() never trims), and the connection's page cache holds the
 * job's pages; over thousands of jobs both ratchet RSS up (tests/soak). */
static void release_job_memory(store *st)
{
    store_release_memory(st);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* The priority of every thread that trains: a worker and the BLAS threads its
 * products run on. */
#define TRAINING_NICE 10

/* OpenBLAS starts its threads when it is loaded, before main, at the process's
 * priority. Between products they spin, yielding; at a higher priority than the
 * worker feeding them, one that shares the worker's core starves it (through the
 * API, 2-thread epochs took 1.3-2x as long as in `fitd train`). So every thread
 * that exists when the pool starts, other than the caller (main starts the pool
 * before any thread of its own), gets the training priority. */
static void lower_library_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    long self = syscall(SYS_gettid);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *end;
        long tid = strtol(e->d_name, &end, 10);
        if (*end || tid <= 0 || tid == self) continue;
        if (setpriority(PRIO_PROCESS, (id_t)tid, TRAINING_NICE) != 0)
            LOG(LOG_WARN, "library thread priority not lowered", "\"tid\":%ld,\"errno\":%d", tid,
                errno);
    }
    closedir(d);
}

static void *worker_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-worker", 0, 0, 0); /* shown by top -H and in /proc */
    worker *w = arg;
    pool *p = w->p;
    store *st = NULL;
    char err[256] = "";

    /* Linux applies nice per thread: training yields to the HTTP threads. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), TRAINING_NICE) != 0)
        LOG(LOG_WARN, "worker priority not lowered", "\"worker\":%d,\"errno\":%d", w->index, errno);
    /* After the priority: the helpers inherit it. NULL (one part) when they cannot start. */
    if (p->threads_per_job > 1 && !(w->par = par_start(p->threads_per_job)))
        LOG(LOG_WARN, "worker runs its jobs on one thread", "\"worker\":%d", w->index);

    while (!atomic_load(&p->stopping)) {
        if (!st) {
            st = store_open(p->db_path, err, sizeof err);
            if (!st) {
                char q[300];
                LOG(LOG_ERROR, "worker cannot open the store", "\"worker\":%d,\"error\":%s",
                    w->index, log_quote(q, sizeof q, err));
            }
        }
        if (st) {
            store_job job = {0};
            store_rc rc = store_job_claim(st, &job);
            if (rc == STORE_OK) {
                slot_begin(p, w, job.id);
                run_job(p, w, st, &job);
                slot_end(p, w);
                store_job_free(&job);
                release_job_memory(st);
                if (!w->full_pause) continue;
            }
            if (rc != STORE_NOT_FOUND)
                LOG(LOG_WARN, "job claim failed", "\"worker\":%d,\"rc\":\"%s\"", w->index,
                    store_rc_name(rc));
        }
        /* Sleep until a submit, a stop, or the idle poll. */
        pthread_mutex_lock(&p->mu);
        if (w->full_pause) { /* disk full: do not spin on the job just paused */
            w->full_pause = 0;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += POOL_FULL_PAUSE_S;
            while (!atomic_load(&p->stopping) &&
                   pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0) {
            }
            pthread_mutex_unlock(&p->mu);
            continue; /* the pause was the wait: claim again now, not after an idle poll */
        }
        if (p->wakeups == 0 && !atomic_load(&p->stopping)) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += POOL_IDLE_POLL_S;
            pthread_cond_timedwait(&p->cv, &p->mu, &until);
        }
        if (p->wakeups > 0) p->wakeups--;
        pthread_mutex_unlock(&p->mu);
    }
    store_close(st);
    par_stop(w->par);
    w->par = NULL;
    return NULL;
}

pool *pool_start(const pool_options *opt, char *err, size_t err_len)
{
    pool *p = NULL;
    int cores = par_cores();
    int n = opt && opt->workers > 0 ? opt->workers : cores;
    char tmp[8];
    if (!err) {
        err = tmp;
        err_len = sizeof tmp;
    }
    if (!opt || !opt->db_path) {
        snprintf(err, err_len, "pool_start: no database path");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->cache_mu, NULL);
    pthread_cond_init(&p->cache_cv, NULL);
    atomic_init(&p->stopping, 0);
    p->db_path = strdup(opt->db_path);
    p->metrics = opt->metrics;
    p->workers = calloc((size_t)n, sizeof *p->workers);
    if (!p->db_path || !p->workers) goto nomem;
    p->n_workers = n;

#ifdef __GLIBC__
    /* Before the first thread starts (main starts the pool first): glibc gives
     * each thread that allocates concurrently its own arena, up to 8 per core, and
     * each arena keeps its peak (a worker's last job, an HTTP thread's largest
     * list) as free but resident memory; one arena per core bounds that
     * (tests/soak). */
    mallopt(M_ARENA_MAX, cores > 2 ? cores : 2);
#endif
    /* workers x threads per job <= cores. A job splits its own math (par.h), so
     * each product is a single-threaded OpenBLAS call (the setting is process-wide). */
    int per_job = opt->threads_per_job > 0 ? opt->threads_per_job : cores / n;
    p->threads_per_job = per_job > 0 ? per_job : 1;
    nn_blas_set_threads(1);
    lower_library_threads();

    for (int i = 0; i < n; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->index = i;
        atomic_init(&w->slot.cancel, 0);
        atomic_init(&w->slot.epochs, 0);
        atomic_init(&w->slot.batches, 0);
        atomic_init(&w->slot.at, 0);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, err_len, "pool_start: cannot start worker %d: %s", i, strerror(rc));
            pool_free(p);
            return NULL;
        }
        w->started = 1;
    }
    LOG(LOG_INFO, "pool started", "\"workers\":%d,\"threads_per_job\":%d", n, p->threads_per_job);
    return p;
nomem:
    snprintf(err, err_len, "pool_start: out of memory");
    pool_free(p);
    return NULL;
}

void pool_on_news(pool *p, void (*fn)(void *ctx), void *ctx)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->news_fn = fn;
    p->news_ctx = ctx;
    pthread_mutex_unlock(&p->mu);
}

void pool_notify(pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (p->wakeups < p->n_workers) p->wakeups++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pool_cancel(pool *p, const char *job_id)
{
    int found = 0;
    if (!p || !job_id) return 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) {
        slot *s = &p->workers[i].slot;
        if (s->job_id[0] && strcmp(s->job_id, job_id) == 0) {
            atomic_store(&s->cancel, 1);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

int pool_progress_get(pool *p, const char *job_id, pool_progress *out)
{
    int found = 0;
    if (!p || !job_id) return 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) {
        slot *s = &p->workers[i].slot;
        if (s->job_id[0] && strcmp(s->job_id, job_id) == 0) {
            if (out) {
                slot_get_at(s, &out->epoch, &out->batch);
                out->epochs = atomic_load(&s->epochs);
                out->batches = atomic_load(&s->batches);
            }
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

void pool_busy(pool *p, int *busy, int *total)
{
    int n = 0;
    if (p) {
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < p->n_workers; i++) n += p->workers[i].slot.job_id[0] != 0;
        pthread_mutex_unlock(&p->mu);
    }
    if (busy) *busy = n;
    if (total) *total = p ? p->n_workers : 0;
}

void pool_stop(pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stopping, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->workers && i < p->n_workers; i++) {
        if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
        p->workers[i].started = 0;
    }
}

void pool_free(pool *p)
{
    if (!p) return;
    pool_stop(p);
    /* Every job released its datasets; anything left would be a bug, free anyway. */
    while (p->cache) {
        ds_entry *e = p->cache;
        p->cache = e->next;
        nn_dataset_free(&e->ds);
        free(e);
    }
    pthread_cond_destroy(&p->cache_cv);
    pthread_mutex_destroy(&p->cache_mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p->db_path);
    free(p);
}
