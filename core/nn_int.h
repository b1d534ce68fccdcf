/*
 * nn_int.h — the core's internal kernels and helpers, shared between core files
 * and the unit tests. Not part of the public API (nn.h).
 *
 * Kernels follow llm.c's shape: outputs first, dimensions last, a shape comment.
 * Backward kernels OVERWRITE their outputs unless the comment says otherwise. No
 * kernel allocates.
 */
#ifndef NN_INT_H
#define NN_INT_H

#include "nn.h"

/* Hot per-element loops (optimizer updates, dropout masks) are marked
 * NN_VEC_KERNEL: on x86-64 Linux they are cloned for AVX-512 and AVX2 and the
 * best clone is picked at load time (Adam over 500k parameters: about 1.9x faster
 * with AVX-512 than the SSE2 baseline), and gcc is asked for its "cheap" vector
 * cost model, without which gcc 12 at -O2 refuses loops of unknown length. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute) && \
    !defined(__SANITIZE_THREAD__) /* gcc's clone resolvers run before TSan is set up */
#if __has_attribute(target_clones)
#define NN_VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NN_VEC_CLONES
#define NN_VEC_CLONES
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define NN_VEC_KERNEL NN_VEC_CLONES __attribute__((optimize("tree-vectorize", "vect-cost-model=cheap")))
#else
#define NN_VEC_KERNEL NN_VEC_CLONES
#endif

/* ---------------------------------------------------------------- rng.c */

/* xoshiro256** seeded by splitmix64: fast, 256-bit state, serializable. */
typedef struct nn_rng {
    uint64_t s[4];
} nn_rng;
void nn_rng_seed(nn_rng *r, uint64_t seed);
uint64_t nn_rng_next(nn_rng *r);
double nn_rng_uniform(nn_rng *r);            /* [0, 1), 53 bits */
double nn_rng_normal(nn_rng *r);             /* N(0, 1) */
double nn_rng_truncated_normal(nn_rng *r);   /* N(0, 1) redrawn outside [-2, 2] */
uint64_t nn_rng_below(nn_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
void nn_rng_shuffle(nn_rng *r, uint32_t *idx, size_t n); /* Fisher-Yates */
/* A seed for a sub-stream, so that streams derived from one seed don't overlap. */
uint64_t nn_seed_mix(uint64_t seed, uint64_t stream);

/* ---------------------------------------------------------------- activations.c */

/* y = act(x) row-wise: (B, C). y == x allowed. Softmax is stable (max-shifted). */
void nn_act_forward(float *y, const float *x, int B, int C, nn_activation act);
/* dx = dy * act'(x): (B, C). x is the pre-activation, y = act(x). dx == dy allowed.
 * Softmax: dx_i = y_i * (dy_i - sum_j dy_j y_j). */
void nn_act_backward(float *dx, const float *dy, const float *x, const float *y, int B, int C,
                     nn_activation act);
/* The same split by rows over par (NULL: serial; every activation works on rows). */
void nn_act_backward_par(float *dx, const float *dy, const float *x, const float *y, int B, int C,
                         nn_activation act, const nn_parallel *par);

/* ---------------------------------------------------------------- parallel.c */

/* Splits past this many parts run serially where a part keeps a partial sum. */
#define NN_MAX_PARALLEL 64
/* The parts a split makes (1 without a runner), running them, and part i's
 * [lo, hi) of `total` items with boundaries on multiples of `align`. */
int nn_par_n(const nn_parallel *par);
/* The parts for `work` (about the element passes it makes; a product counts its
 * multiply-adds / 16): 1 below NN_PAR_MIN_WORK, where handing parts to other
 * threads costs more than it saves, else nn_par_n. */
#define NN_PAR_MIN_WORK ((size_t)1 << 16)
int nn_par_parts(const nn_parallel *par, size_t work);
/* task(arg, i) for i < parts: on the calling thread when parts is 1, else through
 * par (parts must then be nn_par_n(par)). */
void nn_par_run(const nn_parallel *par, int parts, void (*task)(void *arg, int i), void *arg);
void nn_par_range(size_t total, int n, int i, size_t align, size_t *lo, size_t *hi);
/* fn(arg, lo, hi) over [0, n) split into nn_par_parts(par, work) ranges with
 * boundaries on multiples of align: for passes whose items are independent. */
void nn_par_for(const nn_parallel *par, size_t n, size_t work, size_t align,
                void (*fn)(void *arg, size_t lo, size_t hi), void *arg);
/* The model's runner (NULL when it has none). */
const nn_parallel *nn_model_parallel(const nn_model *m);
/* The training step the next nn_model_grad computes (the optimizer's iteration
 * count): a dropout layer with its own seed draws that step's mask from (seed,
 * step) alone, as Keras' Dropout(seed=...) does from its own seed generator. */
void nn_model_set_step(nn_model *m, uint64_t step);

/* ---------------------------------------------------------------- dense.c */

/* z = x W + b, a = act(z).
 * x (B, in), W (in, out), b (out) or NULL, z (B, out), a (B, out); a == z allowed
 * for activations whose backward needs only the output (linear, relu, sigmoid,
 * tanh, softmax). */
void nn_dense_forward(float *a, float *z, const float *x, const float *w, const float *b, int B,
                      int in, int out, nn_activation act);
/* Given dz (B, out) = dL/dz: dw = x^T dz (in, out) and db = colsum(dz) (out) when
 * db, both added to what dw and db hold when `accumulate` (a regularizer's
 * gradient), else overwritten; dx = dz W^T (B, in) when dx, overwritten. The
 * model never zeroes its gradient buffer: every gradient is written once. */
void nn_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x,
                       const float *w, int B, int in, int out, int accumulate);
/* The same, given ws (in * out floats) or NULL. With ws, a narrow layer (out <=
 * NN_DENSE_NARROW, e.g. a classifier head) transposes W into ws and computes dx as
 * an untransposed product: OpenBLAS then takes its single-threaded small-matrix
 * path instead of packing (and, with 2+ threads, splitting) a product whose inner
 * dimension is only `out` (about 1.5x faster at 1 thread, and one fork-join fewer
 * per step at 2). Results equal nn_dense_backward's up to summation order. */
#define NN_DENSE_NARROW 16
void nn_dense_backward_ws(float *dx, float *dw, float *db, const float *dz, const float *x,
                          const float *w, int B, int in, int out, int accumulate, float *ws);
/* nn_dense_forward and nn_dense_backward_ws split over par: the forward by output
 * columns (bias and activation with them; softmax after the join), the backward by
 * rows of dw and of dx (db after the join). par NULL or 1 part: the serial ones. */
void nn_dense_forward_par(float *a, float *z, const float *x, const float *w, const float *b,
                          int B, int in, int out, nn_activation act, const nn_parallel *par);
void nn_dense_backward_par(float *dx, float *dw, float *db, const float *dz, const float *x,
                           const float *w, int B, int in, int out, int accumulate, float *ws,
                           const nn_parallel *par);

/* ---------------------------------------------------------------- dropout.c */

/* Inverted dropout over n values: mask[i] = 0 with probability rate, else
 * 1/(1-rate); y = x * mask. rate == 0 draws nothing and copies. y == x allowed. */
void nn_dropout_forward(float *y, float *mask, const float *x, size_t n, float rate, nn_rng *r,
                        const nn_parallel *par);
/* dx = dy * mask. dx == dy allowed. Both split over par (NULL: serial); the mask
 * is the same for any split. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n,
                         const nn_parallel *par);

/* ---------------------------------------------------------------- regularizers.c */

int nn_reg_active(nn_regularizer r);
/* l1 * sum|w| + l2 * sum w^2, accumulated in double. */
double nn_reg_penalty(const float *w, size_t n, nn_regularizer r);
/* dw += scale * (l1 * sign(w) + 2 * l2 * w); sign(0) = 0. */
void nn_reg_grad(float *dw, const float *w, size_t n, nn_regularizer r, float scale);
/* dw = l1 * sign(w) + 2 * l2 * w (overwritten), and the penalty as nn_reg_penalty
 * returns it, in one pass over w. The model fills a kernel's gradient with this
 * before the GEMM adds x^T dz to it: one pass fewer than zeroing and adding. */
double nn_reg_fill(float *dw, const float *w, size_t n, nn_regularizer r);

/* ---------------------------------------------------------------- losses.c */

/* Mean over the B samples of the per-sample loss. pred (B, C) is the model's output
 * (logits when from_logits); y is (B, C), or (B, 1) integer labels for the sparse
 * loss. When dpred is non-NULL it receives d(mean loss)/d(pred), (B, C), overwritten.
 * Keras' clipping (epsilon 1e-7) and renormalization are applied. */
double nn_loss_forward(float *dpred, const float *pred, const float *y, int B, int C,
                       const nn_loss_spec *loss);

/* ---------------------------------------------------------------- metrics.c */

/* Sum over the B samples of the metric's per-sample value (the caller divides by
 * the sample count): pred is (B, C), y (B, yw) with yw 1 (labels, broadcast) or
 * C; NaN for another yw. Accuracy kinds must be resolved already. */
double nn_metric_sum(nn_metric_kind m, const float *pred, const float *y, int B, int C, int yw,
                     int from_logits);

/* ---------------------------------------------------------------- init.c */

/* Fill n = fan_in * fan_out (kernel) or n = fan_out (bias) values. */
void nn_init_fill(float *w, size_t n, int fan_in, int fan_out, const nn_init_spec *init, nn_rng *r);

/* ---------------------------------------------------------------- optim.c */

/* The optimizer sees the parameters as a list of variables (one per tensor): Keras
 * clips by norm per variable. Slots (moments, accumulators) mirror the parameters
 * in one allocation. */
typedef struct nn_optim nn_optim;
typedef struct nn_var {
    size_t offset, count;
} nn_var;
nn_optim *nn_optim_new(const nn_optimizer_spec *spec, const nn_var *vars, int n_vars,
                       size_t n_params, nn_error *err);
void nn_optim_free(nn_optim *o);
/* The learning rate the next step will use (the schedule at the current step). */
double nn_optim_lr(const nn_optim *o);
int64_t nn_optim_iterations(const nn_optim *o);
/* One update: params -= f(grads). grads may be modified (clipping). The
 * element-wise update is split over par (NULL: serial); the result is the same. */
void nn_optim_step(nn_optim *o, float *params, float *grads, const nn_parallel *par);
/* State (iterations and slots) for checkpoints. */
size_t nn_optim_state_bytes(const nn_optim *o);
void nn_optim_state_save(const nn_optim *o, void *buf);
nn_status nn_optim_state_load(nn_optim *o, const void *buf, size_t len, nn_error *err);

/* ---------------------------------------------------------------- dataset.c */

/* Read a file in chunks and hand each to a streaming parser's feed function: the
 * one way the file loaders read, so files and uploads share a code path. */
typedef nn_status (*nn_feed_fn)(void *parser, const void *buf, size_t len, nn_error *err);
nn_status nn_feed_file(const char *path, nn_feed_fn feed, void *parser, nn_error *err);

/* ---------------------------------------------------------------- safetensors.c */

typedef struct nn_st_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    const void *data; /* F32 little-endian, count = product(shape); may be unaligned */
} nn_st_tensor;
/* Encode F32 tensors (and optional metadata pairs) into a malloc'ed buffer. */
nn_status nn_st_encode(const nn_st_tensor *t, int n, const nn_kv *meta, int n_meta, void **buf,
                       size_t *len, nn_error *err);
/* Decode: validates the header (JSON subset), offsets and dtypes. On NN_OK,
 * *tensors (n entries) point into buf and into a malloc'ed name block; free with
 * nn_st_free_list. Only F32 tensors are accepted. Tensors never overlap; with
 * NN_ST_EXACT they must also tile the data section, as the format requires (a file
 * arriving from outside); without it bytes that belong to no tensor are skipped
 * (files stored before that rule was enforced). */
#define NN_ST_EXACT 1u
nn_status nn_st_decode(const void *buf, size_t len, unsigned flags, nn_st_tensor **tensors, int *n,
                       nn_error *err);
void nn_st_free_list(nn_st_tensor *tensors, int n);

/* ---------------------------------------------------------------- model.c */

/* Forward and backward over one batch of B rows in training mode: dropout is active
 * and draws from rng (rng may be NULL when no dropout layer has rate > 0).
 * grads (nn_model_param_count floats) is overwritten with d(loss)/d(params), where
 * loss = mean data loss over the batch + every penalty (kernel, bias, activity).
 * Returns that loss; *reg_loss receives the penalties' part and pred (B, out) the
 * outputs, when non-NULL. Scratch memory lives in the model and grows to the
 * largest batch seen (the only allocation; NN_ERR_NOMEM is reported as NaN with
 * *status set when status is non-NULL). */
double nn_model_grad(nn_model *m, const nn_loss_spec *loss, const float *x, const float *y, int B,
                     float *grads, nn_rng *rng, double *reg_loss, float *pred, nn_status *status);

/* Forward over one batch in evaluation mode (no dropout). Returns the mean data
 * loss + every penalty (0 + penalties when y is NULL); *reg_loss and pred (B, out)
 * as for nn_model_grad. */
double nn_model_eval_batch(nn_model *m, const nn_loss_spec *loss, const float *x, const float *y,
                           int B, float *pred, double *reg_loss, nn_status *status);

#endif
