/*
 * jobmem.h — the memory a training job will need, estimated at submission so that
 * a job too big for the machine is refused (422) instead of failing, or swapping,
 * once it runs (--max-job-memory).
 *
 * Based only on the public core API (core/nn.h) and what the core documents it
 * keeps: the flat parameter buffer, as many gradient floats, the optimizer's
 * slots, a copy of the best weights for early stopping's restore_best_weights,
 * the per-layer activation scratch at the batch size (core/model.c ensure_scratch:
 * each layer's output, a dense layer's pre-activation, a dropout mask, and two
 * gradient buffers of the widest layer), one batch of inputs and targets, and the
 * datasets' float32 matrices (datasets are loaded once per job). Where the core's
 * choice depends on private detail (whether an activation's backward pass needs
 * its pre-activation) the estimate takes the larger figure: it is an upper bound
 * to within the allocator's overhead.
 */
#ifndef FITD_JOBMEM_H
#define FITD_JOBMEM_H

#include <stdint.h>

#include "spec.h"

typedef struct jobmem_estimate {
    double params;      /* parameter count */
    int slots;          /* optimizer slots per parameter */
    double state_bytes; /* weights + gradients + slots + best weights */
    double act_bytes;   /* activations and batch buffers at fit.batch_size */
    double data_bytes;  /* the datasets (as passed in) */
    double total_bytes;
} jobmem_estimate;

/* Optimizer slots (floats per parameter) the core keeps for `opt`: Keras' state
 * variables (SGD momentum 1 when momentum > 0; Adam/AdamW m, v and v_hat with
 * amsgrad; RMSprop velocity, momentum when > 0 and the mean gradient when
 * centered; Adagrad the accumulator). */
int jobmem_optimizer_slots(const nn_optimizer_spec *opt);

/* Estimate for a parsed job whose datasets take `dataset_bytes` (float32 x and y
 * of each distinct dataset it names). Never fails; saturates instead of
 * overflowing (doubles). */
jobmem_estimate jobmem_estimate_job(const spec_job *job, double dataset_bytes);

#endif
