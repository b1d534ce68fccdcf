/*
 * parallel.c — splitting work over the runner a caller gives (nn_parallel). The
 * core starts no threads of its own; a split is deterministic for a given part
 * count because every part always covers the same range.
 */
#include "nn_int.h"

int nn_par_n(const nn_parallel *par)
{
    return par && par->run && par->n > 1 ? par->n : 1;
}

int nn_par_parts(const nn_parallel *par, size_t work)
{
    return work < NN_PAR_MIN_WORK ? 1 : nn_par_n(par);
}

void nn_par_run(const nn_parallel *par, int parts, void (*task)(void *arg, int i), void *arg)
{
    if (parts <= 1) task(arg, 0);
    else par->run(par->ctx, task, arg);
}

typedef struct for_job {
    void (*fn)(void *arg, size_t lo, size_t hi);
    void *arg;
    size_t n, align;
    int parts;
} for_job;

static void for_task(void *arg, int i)
{
    const for_job *j = arg;
    size_t lo, hi;
    nn_par_range(j->n, j->parts, i, j->align, &lo, &hi);
    if (hi > lo) j->fn(j->arg, lo, hi);
}

void nn_par_for(const nn_parallel *par, size_t n, size_t work, size_t align,
                void (*fn)(void *arg, size_t lo, size_t hi), void *arg)
{
    int parts = nn_par_parts(par, work);
    if (parts == 1) {
        if (n) fn(arg, 0, n);
        return;
    }
    for_job j = {fn, arg, n, align ? align : 1, parts};
    nn_par_run(par, parts, for_task, &j);
}

void nn_par_range(size_t total, int n, int i, size_t align, size_t *lo, size_t *hi)
{
    size_t units = (total + align - 1) / align;
    size_t a = units * (size_t)i / (size_t)n * align, b = units * (size_t)(i + 1) / (size_t)n * align;
    *lo = a < total ? a : total;
    *hi = b < total ? b : total;
}
