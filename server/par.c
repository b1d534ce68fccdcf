/*
 * par.c — a small fork-join pool for nn_parallel (see par.h). One dispatch at a
 * time per pool: a generation counter publishes the task, a pending counter
 * collects the helpers, and a helper that has spun for a while without news
 * sleeps on a condition variable (the dispatcher wakes sleepers only).
 */
#include "par.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

/* About 100-300 us of spinning before a helper sleeps: longer than the serial
 * stretches between a step's dispatches, far shorter than an epoch's commit. */
#define PAR_SPINS 4000

struct par_pool {
    int n;
    pthread_t *threads;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;     /* bumped once per dispatch */
    atomic_int pending;  /* helpers still running this dispatch */
    atomic_int sleepers; /* helpers waiting on cv */
    atomic_int stop;
    void (*task)(void *arg, int i); /* written before gen is bumped */
    void *arg;
};

typedef struct helper_arg {
    par_pool *p;
    int index;
} helper_arg;

static void relax(int spins)
{
#if defined(__x86_64__) || defined(__i386__)
    if (spins < PAR_SPINS) {
        __builtin_ia32_pause();
        return;
    }
#else
    (void)spins;
#endif
    sched_yield();
}

/* Wait until the generation moves past `seen` (or a stop); returns the new one. */
static unsigned wait_news(par_pool *p, unsigned seen)
{
    for (int spins = 0; spins < PAR_SPINS; spins++) {
        unsigned g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop)) return g;
        relax(spins);
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->gen);
}

static void *helper_main(void *a)
{
    helper_arg *h = a;
    par_pool *p = h->p;
    int index = h->index;
    free(h);
    prctl(PR_SET_NAME, "fitd-par", 0, 0, 0); /* shown by top -H and in /proc */
    unsigned seen = 0; /* the generation at creation: a dispatch may come before this runs */
    for (;;) {
        seen = wait_news(p, seen);
        if (atomic_load(&p->stop)) break;
        p->task(p->arg, index);
        atomic_fetch_sub(&p->pending, 1);
    }
    return NULL;
}

static void par_run(void *ctx, void (*task)(void *arg, int i), void *arg)
{
    par_pool *p = ctx;
    p->task = task;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1); /* publishes task and arg (sequentially consistent) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    task(arg, 0);
    for (int spins = 0; atomic_load(&p->pending) > 0; spins++) relax(spins);
}

int par_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

par_pool *par_start(int n)
{
    if (n < 2) return NULL;
    par_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    p->threads = calloc((size_t)n - 1, sizeof *p->threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!p->threads) goto fail;
    for (int i = 1; i < n; i++) {
        helper_arg *h = malloc(sizeof *h);
        if (!h) goto fail;
        h->p = p;
        h->index = i;
        if (pthread_create(&p->threads[i - 1], NULL, helper_main, h) != 0) {
            free(h);
            goto fail;
        }
        p->started++;
    }
    return p;
fail:
    par_stop(p);
    return NULL;
}

void par_stop(par_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

nn_parallel par_runner(par_pool *p)
{
    nn_parallel r = {1, NULL, NULL};
    if (p) {
        r.n = p->n;
        r.run = par_run;
        r.ctx = p;
    }
    return r;
}
