/*
 * par.h — the threads a job's math is split over (the core's nn_parallel runner).
 *
 * A par_pool of n parts keeps n - 1 helper threads; the caller's thread is part 0.
 * Between dispatches a helper spins briefly (a training step dispatches every few
 * tens of microseconds) and then sleeps, so an idle pool costs nothing. Helpers
 * inherit the creating thread's priority (a worker's: nice 10).
 */
#ifndef FITD_PAR_H
#define FITD_PAR_H

#include "nn.h"

typedef struct par_pool par_pool;

/* The cores online (at least 1): the default split of a job and worker count. */
int par_cores(void);
/* n >= 2 parts; NULL when a thread cannot start or memory is short (then run
 * serially: a NULL pool's runner has n = 1). */
par_pool *par_start(int n);
/* Stop and join the helpers; NULL ok. No dispatch may be running. */
void par_stop(par_pool *p);
/* The runner to give nn_model_set_parallel; valid until par_stop. */
nn_parallel par_runner(par_pool *p);

#endif
