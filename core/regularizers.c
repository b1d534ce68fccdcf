/*
 * regularizers.c — Keras' L1, L2 and L1L2 weight penalties and their gradients.
 *
 * Keras (keras/src/regularizers/regularizers.py): L1 = l1 * sum|w|,
 * L2 = l2 * sum w^2 with no 0.5 factor, L1L2 both. The penalty is summed in
 * double because it is reported next to the loss and a float sum over a large
 * kernel would lose digits; the gradient is a float loop added to dw.
 */
#include <math.h>

#include "nn_int.h"

int nn_reg_active(nn_regularizer r)
{
    return r.l1 != 0.0 || r.l2 != 0.0;
}

/* The sums vectorize as reductions (-fopenmp-simd): this runs over every kernel on
 * every batch, so it must cost about one pass over memory. */
NN_VEC_KERNEL
static double penalty_loop(const float *restrict w, size_t n, double l1, double l2)
{
    double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
    for (size_t i = 0; i < n; i++) {
        double v = (double)w[i];
        s1 += fabs(v);
        s2 += v * v;
    }
    return l1 * s1 + l2 * s2;
}

/* Both loops use sign(0) = 0, the subgradient TF and PyTorch use for |w| at 0. */

/* dw += a * sign(w) + c * w. */
NN_VEC_KERNEL
static void grad_add_loop(float *restrict dw, const float *restrict w, size_t n, float a, float c)
{
    for (size_t i = 0; i < n; i++) {
        float sgn = (float)((w[i] > 0.0f) - (w[i] < 0.0f));
        dw[i] += a * sgn + c * w[i];
    }
}

/* dw = a * sign(w) + c * w, never reading what dw held (it may be uninitialized
 * memory, where even 0 * NaN would poison the gradient); returns l1 * sum|w| +
 * l2 * sum w^2 from the same pass. */
NN_VEC_KERNEL
static double grad_fill_loop(float *restrict dw, const float *restrict w, size_t n, float a, float c,
                             double l1, double l2)
{
    double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
    for (size_t i = 0; i < n; i++) {
        float sgn = (float)((w[i] > 0.0f) - (w[i] < 0.0f));
        dw[i] = a * sgn + c * w[i];
        double v = (double)w[i];
        s1 += fabs(v);
        s2 += v * v;
    }
    return l1 * s1 + l2 * s2;
}

double nn_reg_penalty(const float *w, size_t n, nn_regularizer r)
{
    return nn_reg_active(r) ? penalty_loop(w, n, r.l1, r.l2) : 0.0;
}

void nn_reg_grad(float *dw, const float *w, size_t n, nn_regularizer r, float scale)
{
    if (!nn_reg_active(r)) return;
    grad_add_loop(dw, w, n, (float)((double)scale * r.l1), (float)(2.0 * (double)scale * r.l2));
}

/* dw = c * w and l2 * sum w^2: the pure-L2 case of grad_fill_loop (the common
 * one) without the sign and |w| work, which made that loop compute-bound at about
 * twice this one's time over a 535k-parameter model. dw is the same value (a * sgn
 * with a = 0 adds nothing). */
NN_VEC_KERNEL
static double l2_fill_loop(float *restrict dw, const float *restrict w, size_t n, float c, double l2)
{
    double s2 = 0.0;
#pragma omp simd reduction(+ : s2)
    for (size_t i = 0; i < n; i++) {
        float v = w[i];
        dw[i] = c * v;
        s2 += (double)v * (double)v;
    }
    return l2 * s2;
}

double nn_reg_fill(float *dw, const float *w, size_t n, nn_regularizer r)
{
    if (r.l1 == 0.0) return l2_fill_loop(dw, w, n, (float)(2.0 * r.l2), r.l2);
    return grad_fill_loop(dw, w, n, (float)r.l1, (float)(2.0 * r.l2), r.l1, r.l2);
}
