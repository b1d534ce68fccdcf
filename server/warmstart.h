/*
 * warmstart.h — a job's "init" (spec.h spec_init): start from uploaded weights,
 * from another job's trained weights, or resume another job's training.
 *
 * At submission, warmstart_check resolves the id against the store (existence,
 * tenant, state) and checks that the weights fit the model: the set of tensor
 * names must equal the model's ("<layer>/kernel", "<layer>/bias") and every shape
 * must match, as nn_model_load_safetensors will require. A resume
 * ({"from_job": id, "resume": true}) must repeat the source job's spec except
 * name, init and fit.epochs, which is the new total and must exceed the epochs
 * the source ran; the source must have succeeded, run all its epochs (not stopped
 * early) without restore_best_weights (its final state would hold the best
 * weights, not the last), and have its final trainer state stored (jobs that
 * succeeded before fitd kept it have none). Problems are 422 items whose pointer
 * names the field: /init/weights, /init/from_job, /init/resume, /fit/epochs, or
 * the first spec field that differs from the source's.
 *
 * In the worker, warmstart_apply loads the weights into the new model, or the
 * source's final trainer state into the trainer (epochs then continue numbering
 * after the source's, and the run equals an uninterrupted one bit for bit).
 *
 * No state; thread-safe on distinct arguments.
 */
#ifndef FITD_WARMSTART_H
#define FITD_WARMSTART_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "nn.h"
#include "spec.h"
#include "store.h"

/* Submission: append every problem of job->init to `errors` (nothing when the job
 * has no init). Returns 0, or -1 after replying to a store failure. */
int warmstart_check(http_req *req, store *st, const spec_job *job, json_t *errors);

/* Worker: apply job->init to a freshly built model and trainer (call it only when
 * the job has no checkpoint of its own, which would be newer). Returns 0 (also
 * without an init), or -1 with a message in msg. */
int warmstart_apply(store *st, const spec_job *job, nn_model *model, nn_trainer *trainer, char *msg,
                    size_t msg_len);

/* ---------------------------------------------------------------- pure helpers (tests) */

typedef struct warmstart_tensor {
    char name[NN_NAME_MAX + 8];
    int ndim;
    int64_t shape[4];
} warmstart_tensor;

/* The tensors a model spec builds, in the core's order and naming (layer names
 * must be resolved, as spec_job_parse leaves them). Returns the count, or -1 when
 * more than `max`. */
int warmstart_model_tensors(const nn_model_spec *m, warmstart_tensor *out, int max);

/* Do `have` (from weights) fit `want` (the model's)? 0 if the names and shapes are
 * the same set; otherwise 1 with a message naming the first offending tensor. */
int warmstart_tensors_match(const warmstart_tensor *want, int n_want, const warmstart_tensor *have,
                            int n_have, char *msg, size_t msg_len);

/* Compare two resolved specs (spec_job_to_json renderings) ignoring "name",
 * "init" and "fit"/"epochs". 0 when equal; otherwise 1 with the JSON Pointer of
 * the first difference in `pointer`. */
int warmstart_spec_diff(const json_t *a, const json_t *b, char *pointer, size_t pointer_len);

#endif
