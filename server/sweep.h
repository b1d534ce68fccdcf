/*
 * sweep.h — hyper-parameter sweeps: the POST /v1/sweeps document, the trials it
 * expands to, their ranking, and the successive-halving rule.
 *
 * A sweep is a base job spec plus "parameters": keys are RFC 6901 JSON Pointers
 * into the base spec, values say what to put there. Grid sweeps take every
 * combination of the listed values (the first parameter varies slowest, as
 * itertools.product); random sweeps draw n_trials settings from a seeded
 * generator, each parameter either a list (uniform choice) or a range
 * {"min", "max", "scale": "linear" | "log"} (integers when min and max both are).
 * Trial i's draw depends only on (seed, i), so a sweep is reproducible.
 *
 * Successive halving ("early_stop": {"method": "halving", "min_epochs": r,
 * "eta": e}): rungs are at epochs r, r*e, r*e^2, ... below the trial's planned
 * epochs. When a trial commits a rung epoch, the objective metric's value at that
 * epoch is compared with the values at the same epoch of every trial of the sweep
 * that reached it (itself included, n of them). Once n >= e, the trial goes on
 * only if its rank (1 + the number of strictly better values) is within the top
 * floor(n / e); otherwise it is stopped (cancelled, with the reason as its error).
 * The first e - 1 trials to reach a rung always go on. With max_parallel 1 the
 * outcome is fully deterministic.
 *
 * This module holds no HTTP routes and no SQL: it reports problems with
 * http.h's http_problem_add, api_sweeps.c validates and expands with it, the
 * store persists, and the pool calls sweep_halving_stop (which reads the rung's
 * values through store.h). No state; thread-safe on distinct arguments. json_t
 * arguments are borrowed unless a function says otherwise.
 */
#ifndef FITD_SWEEP_H
#define FITD_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define SWEEP_MAX_TRIALS 1000
#define SWEEP_MAX_PARAMS 32

enum { SWEEP_OK = 0, SWEEP_INVALID = -1, SWEEP_NOMEM = -2 };

typedef enum sweep_method { SWEEP_GRID = 0, SWEEP_RANDOM } sweep_method;

/* One swept path. */
typedef struct sweep_param {
    char pointer[256];  /* the key as given (an RFC 6901 pointer into the spec) */
    json_t *values;     /* a list: owned reference; NULL for a range */
    double min, max;    /* a range */
    int integer;        /* a range whose bounds are both integers */
    int log_scale;      /* a range drawn log-uniformly */
} sweep_param;

/* A parsed sweep request. Free with sweep_def_free. */
typedef struct sweep_def {
    char name[128];
    json_t *base;       /* owned reference to the base job spec */
    sweep_method method;
    int n_params;
    sweep_param params[SWEEP_MAX_PARAMS];
    char metric[64];    /* objective metric: a key of the epoch records */
    int mode_max;       /* 1: larger is better */
    int max_parallel;   /* 0: no cap */
    int n_trials;       /* grid: the product of the list sizes */
    uint64_t seed;
    int halving;        /* successive halving on */
    int min_epochs, eta;
} sweep_def;

/* Validate a sweep request and fill *out. Every problem goes to `errors` (a JSON
 * array, http_problem_add form {"pointer", "message"}, pointers into the request:
 * a parameter is "/parameters/<key escaped>"). Pointers must resolve in the base
 * spec up to their parent (the last token may name a new object member).
 * Returns SWEEP_OK, SWEEP_INVALID (problems added, *out empty) or SWEEP_NOMEM. */
int sweep_parse(const json_t *root, sweep_def *out, json_t *errors);
void sweep_def_free(sweep_def *d);

/* Trial i's settings as {pointer: value, ...} in parameter order. New reference;
 * NULL when out of memory or i is out of range. */
json_t *sweep_trial_params(const sweep_def *d, int i);

/* A deep copy of d->base with `params` ({pointer: value}) written in. New
 * reference, NULL when out of memory (sweep_parse checked that every pointer
 * resolves). */
json_t *sweep_trial_spec(const sweep_def *d, const json_t *params);

/* Set `value` (borrowed; a copy is stored) at `pointer` in doc. Returns 0, or -1
 * with a reason in err when the pointer is malformed or does not resolve. */
int sweep_pointer_set(json_t *doc, const char *pointer, json_t *value, char *err, size_t errlen);

/* "/parameters/" + key with "~" and "/" escaped, into out ("/parameters" alone
 * when the key does not fit). */
void sweep_param_pointer(const char *key, char *out, size_t len);

/* Order trials best first: those with an objective by value (ascending, or
 * descending when mode_max), ties by index; then those without, by index.
 * Fills order[0..n) with indices into the arrays. */
void sweep_rank(const double *objective, const int *has_objective, size_t n, int mode_max,
                size_t *order);

/* The sweep's status from its trials' counts (indexed by store_job_status:
 * queued, running, succeeded, failed, cancelled): "queued" while nothing has
 * started, "running" while any trial is queued or running, then "cancelled" if
 * the sweep was cancelled, "succeeded" if any trial succeeded, else "failed". */
const char *sweep_status(const int64_t counts[STORE_JOB_STATUS_COUNT], int cancelled);

/* Will the epoch records of `job` hold the objective metric? "loss",
 * "regularization_loss" and the compiled metrics always; their "val_" twins when
 * the job has validation data (data.validation or fit.validation_split > 0).
 * Returns 1, or 0 with a reason in why. */
struct spec_job;
int sweep_objective_valid(const char *metric, const struct spec_job *job, char *why, size_t len);

/* Is `epoch` a halving rung for a trial of `epochs` planned epochs? */
int sweep_halving_is_rung(int epoch, int epochs, int min_epochs, int eta);

/* The halving verdict for `value` among the n values at a rung (value included).
 * Returns 1 to go on, 0 to stop; *rank and *keep (may be NULL) receive its rank
 * and how many go on. */
int sweep_halving_keep(double value, const double *values, int n, int eta, int mode_max,
                       int *rank, int *keep);

/* The worker's hook, called as trial `job_id` is about to commit `epoch` (its
 * record is `record_json`) with its sweep's settings, so that the verdict goes
 * into the same transaction as the epoch (a crash cannot keep the epoch and lose
 * the verdict): its value is ranked among the other trials' committed values at
 * that epoch and its own. 1 = stop the trial (the reason in why), 0 = go on (also
 * when epoch is no rung or on any store error: halving only ever saves time, it
 * never fails a job). */
struct store;
struct store_job_sweep;
int sweep_halving_stop(struct store *st, const struct store_job_sweep *cfg, const char *job_id,
                       int epoch, int epochs, const char *record_json, char *why, size_t len);

#endif
