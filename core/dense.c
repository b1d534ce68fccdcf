/*
 * dense.c — the fully connected layer, y = act(x W + b), forward and backward.
 *
 * Why this shape: the matrix products are the only O(B*in*out) work in a step,
 * so they go to CBLAS sgemm (row-major, Keras' (in, out) kernel layout needs no
 * transpose copies); everything else is O(B*out) and done in one pass per row
 * while the row is in cache. Backward accumulates parameter gradients with
 * beta = 1 so a caller can sum several contributions; it never allocates.
 */
#include <cblas.h>

#include <string.h>

#include "nn_int.h"

/* Leading dimensions must be >= 1 even for empty matrices (BLAS argument checks). */
static int ld(int n)
{
    return n > 0 ? n : 1;
}

/* x (B, in), w (in, out), b (out) or NULL -> z (B, out) pre-activation,
 * a (B, out) = act(z). a == z allowed for linear, relu, sigmoid, tanh, softmax. */
void nn_dense_forward(float *a, float *z, const float *x, const float *w, const float *b, int B,
                      int in, int out, nn_activation act)
{
    if (B <= 0 || out <= 0) return;
    if (in > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, out, in, 1.0f, x, ld(in), w,
                    ld(out), 0.0f, z, ld(out));
    } else {
        for (size_t i = 0; i < (size_t)B * (size_t)out; i++) z[i] = 0.0f;
    }
    for (int r = 0; r < B; r++) {
        float *zr = z + (size_t)r * (size_t)out;
        if (b) {
            for (int j = 0; j < out; j++) zr[j] += b[j];
        }
        nn_act_forward(a + (size_t)r * (size_t)out, zr, 1, out, act);
    }
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

/* dz (B, out), x (B, in), w (in, out):
 *   dw (in, out) (+)= x^T dz;  db (out) (+)= colsum(dz) when db;
 *   dx (B, in) = dz W^T when dx (overwritten). */
void nn_dense_backward_ws(float *dx, float *dw, float *db, const float *dz, const float *x,
                          const float *w, int B, int in, int out, int accumulate, float *ws)
{
    if (B <= 0 || out <= 0) {
        /* No samples or no units: dx is still defined (zero). */
        if (dx && B > 0 && in > 0)
            for (size_t i = 0; i < (size_t)B * (size_t)in; i++) dx[i] = 0.0f;
        return;
    }
    if (in > 0 && dw) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, B, 1.0f, x, ld(in), dz,
                    ld(out), accumulate ? 1.0f : 0.0f, dw, ld(out));
    }
    if (db) {
        if (!accumulate) memset(db, 0, (size_t)out * sizeof *db);
        colsum_add(db, dz, B, out);
    }
    if (dx && in > 0) {
        if (ws && out <= NN_DENSE_NARROW) {
            transpose(ws, w, in, out);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, dz, ld(out), ws,
                        ld(in), 0.0f, dx, ld(in));
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, in, out, 1.0f, dz, ld(out), w,
                        ld(out), 0.0f, dx, ld(in));
        }
    }
}

void nn_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x,
                       const float *w, int B, int in, int out, int accumulate)
{
    nn_dense_backward_ws(dx, dw, db, dz, x, w, B, in, out, accumulate, NULL);
}
