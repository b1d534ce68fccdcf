/*
 * dense.c — the fully connected layer, y = act(x W + b), forward and backward.
 *
 * Why this shape: the matrix products are the only O(B*in*out) work in a step,
 * so they go to CBLAS sgemm (row-major, Keras' (in, out) kernel layout needs no
 * transpose copies); everything else is O(B*out) and done in one pass per row
 * while the row is in cache. Backward accumulates parameter gradients with
 * beta = 1 so a caller can sum several contributions; it never allocates. Every
 * pass is written for a range (forward columns, rows of dw and dx), so the
 * *_par variants hand the ranges to the caller's threads and the serial entry
 * points are the whole range: one code path either way.
 */
#include <cblas.h>

#include <string.h>

#include "nn_int.h"

/* Leading dimensions must be >= 1 even for empty matrices (BLAS argument checks). */
static int ld(int n)
{
    return n > 0 ? n : 1;
}

/* Columns [c0, c1) of the forward: z[:, c0:c1] = x W[:, c0:c1] (+ b), and
 * a[:, c0:c1] = act of it, row by row while the row is in cache (act must be
 * element-wise unless the range is whole rows). */
static void dense_forward_cols(float *a, float *z, const float *x, const float *w,
                               const float *b, int B, int in, int out, int c0, int c1,
                               nn_activation act)
{
    int n = c1 - c0;
    if (B <= 0 || n <= 0) return;
    if (in > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n, in, 1.0f, x, ld(in), w + c0,
                    ld(out), 0.0f, z + c0, ld(out));
    } else {
        for (int r = 0; r < B; r++)
            for (int j = c0; j < c1; j++) z[(size_t)r * (size_t)out + (size_t)j] = 0.0f;
    }
    for (int r = 0; r < B; r++) {
        float *zr = z + (size_t)r * (size_t)out + c0;
        if (b) {
            for (int j = 0; j < n; j++) zr[j] += b[c0 + j];
        }
        nn_act_forward(a + (size_t)r * (size_t)out + c0, zr, 1, n, act);
    }
}

/* x (B, in), w (in, out), b (out) or NULL -> z (B, out) pre-activation,
 * a (B, out) = act(z). a == z allowed for linear, relu, sigmoid, tanh, softmax. */
void nn_dense_forward(float *a, float *z, const float *x, const float *w, const float *b, int B,
                      int in, int out, nn_activation act)
{
    dense_forward_cols(a, z, x, w, b, B, in, out, 0, out, act);
}

typedef struct fwd_job {
    float *a, *z;
    const float *x, *w, *b;
    int B, in, out, n;
    nn_activation act;
} fwd_job;

static void fwd_task(void *arg, int i)
{
    const fwd_job *j = arg;
    size_t lo, hi;
    nn_par_range((size_t)j->out, j->n, i, 16, &lo, &hi);
    dense_forward_cols(j->a, j->z, j->x, j->w, j->b, j->B, j->in, j->out, (int)lo, (int)hi, j->act);
}

void nn_dense_forward_par(float *a, float *z, const float *x, const float *w, const float *b,
                          int B, int in, int out, nn_activation act, const nn_parallel *par)
{
    int n = B > 0 && in > 0 ? nn_par_parts(par, (size_t)B * (size_t)in * (size_t)out / 16) : 1;
    if (n == 1 || out < 16 * n) {
        nn_dense_forward(a, z, x, w, b, B, in, out, act);
        return;
    }
    /* Softmax needs whole rows: the parts leave z (+ b), the join normalizes. */
    fwd_job j = {a, z, x, w, b, B, in, out, n, act == NN_ACT_SOFTMAX ? NN_ACT_LINEAR : act};
    if (act == NN_ACT_SOFTMAX) j.a = z;
    nn_par_run(par, n, fwd_task, &j);
    if (act == NN_ACT_SOFTMAX) nn_act_forward(a, z, B, out, act);
}

/* db (out) += column sums of dz (B, out); row by row so the inner loop is unit
 * stride and vectorizes. */
static void colsum_add(float *restrict db, const float *restrict dz, int B, int out)
{
    for (int r = 0; r < B; r++) {
        const float *restrict dzr = dz + (size_t)r * (size_t)out;
        for (int j = 0; j < out; j++) db[j] += dzr[j];
    }
}

/* wt (out, in) = w^T for w (in, out). */
static void transpose(float *restrict wt, const float *restrict w, int in, int out)
{
    for (int i = 0; i < in; i++)
        for (int j = 0; j < out; j++) wt[(size_t)j * (size_t)in + (size_t)i] = w[(size_t)i * (size_t)out + (size_t)j];
}

/* Rows [r0, r1) of dw (+)= x^T dz and rows [b0, b1) of dx = dz W^T (with wt =
 * W^T when the layer is narrow, see nn_dense_backward_ws). */
static void dense_backward_rows(float *dx, float *dw, const float *dz, const float *x,
                                const float *w, const float *wt, int B, int in, int out,
                                int accumulate, int r0, int r1, int b0, int b1)
{
    if (in > 0 && dw && r1 > r0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, out, B, 1.0f, x + r0, ld(in),
                    dz, ld(out), accumulate ? 1.0f : 0.0f, dw + (size_t)r0 * (size_t)out, ld(out));
    }
    if (dx && in > 0 && b1 > b0) {
        const float *dzb = dz + (size_t)b0 * (size_t)out;
        float *dxb = dx + (size_t)b0 * (size_t)in;
        if (wt)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b1 - b0, in, out, 1.0f, dzb,
                        ld(out), wt, ld(in), 0.0f, dxb, ld(in));
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b1 - b0, in, out, 1.0f, dzb,
                        ld(out), w, ld(out), 0.0f, dxb, ld(in));
    }
}

/* The parts before and after the products: whether this is a no-op (no samples or
 * no units: dx is still defined, zero), W^T for a narrow layer, and db. */
static int backward_empty(float *dx, int B, int in, int out)
{
    if (B > 0 && out > 0) return 0;
    if (dx && B > 0 && in > 0)
        for (size_t i = 0; i < (size_t)B * (size_t)in; i++) dx[i] = 0.0f;
    return 1;
}

static const float *narrow_wt(float *ws, const float *dx, const float *w, int in, int out)
{
    if (!ws || !dx || in <= 0 || out > NN_DENSE_NARROW) return NULL;
    transpose(ws, w, in, out);
    return ws;
}

static void backward_db(float *db, const float *dz, int B, int out, int accumulate)
{
    if (!db) return;
    if (!accumulate) memset(db, 0, (size_t)out * sizeof *db);
    colsum_add(db, dz, B, out);
}

/* dz (B, out), x (B, in), w (in, out):
 *   dw (in, out) (+)= x^T dz;  db (out) (+)= colsum(dz) when db;
 *   dx (B, in) = dz W^T when dx (overwritten). */
void nn_dense_backward_ws(float *dx, float *dw, float *db, const float *dz, const float *x,
                          const float *w, int B, int in, int out, int accumulate, float *ws)
{
    if (backward_empty(dx, B, in, out)) return;
    const float *wt = narrow_wt(ws, dx, w, in, out);
    dense_backward_rows(dx, dw, dz, x, w, wt, B, in, out, accumulate, 0, in, 0, B);
    backward_db(db, dz, B, out, accumulate);
}

typedef struct bwd_job {
    float *dx, *dw;
    const float *dz, *x, *w, *wt;
    int B, in, out, accumulate, n;
} bwd_job;

static void bwd_task(void *arg, int i)
{
    const bwd_job *j = arg;
    size_t r0, r1, b0, b1;
    nn_par_range((size_t)j->in, j->n, i, 1, &r0, &r1);
    nn_par_range((size_t)j->B, j->n, i, 1, &b0, &b1);
    dense_backward_rows(j->dx, j->dw, j->dz, j->x, j->w, j->wt, j->B, j->in, j->out,
                        j->accumulate, (int)r0, (int)r1, (int)b0, (int)b1);
}

void nn_dense_backward_par(float *dx, float *dw, float *db, const float *dz, const float *x,
                           const float *w, int B, int in, int out, int accumulate, float *ws,
                           const nn_parallel *par)
{
    /* Split only real work: n > 1 means B, in and out are all positive. */
    int n = B > 0 && in > 0 && out > 0
                ? nn_par_parts(par, (size_t)B * (size_t)in * (size_t)out / 16)
                : 1;
    if (n == 1) {
        nn_dense_backward_ws(dx, dw, db, dz, x, w, B, in, out, accumulate, ws);
        return;
    }
    bwd_job j = {dx, dw, dz, x, w, narrow_wt(ws, dx, w, in, out), B, in, out, accumulate, n};
    nn_par_run(par, n, bwd_task, &j);
    backward_db(db, dz, B, out, accumulate);
}

void nn_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x,
                       const float *w, int B, int in, int out, int accumulate)
{
    nn_dense_backward_ws(dx, dw, db, dz, x, w, B, in, out, accumulate, NULL);
}
