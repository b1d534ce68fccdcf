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

double nn_reg_penalty(const float *w, size_t n, nn_regularizer r)
{
    double s1 = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)w[i];
        s1 += fabs(v);
        s2 += v * v;
    }
    double p = 0.0;
    if (r.l1 != 0.0) p += r.l1 * s1;
    if (r.l2 != 0.0) p += r.l2 * s2;
    return p;
}

/* dw += scale * (l1 * sign(w) + 2 * l2 * w), sign(0) = 0 (the subgradient TF and
 * PyTorch use for |w| at 0). */
static void reg_grad_loop(float *restrict dw, const float *restrict w, size_t n, float a, float c)
{
    for (size_t i = 0; i < n; i++) {
        float sgn = (w[i] > 0.0f) - (w[i] < 0.0f);
        dw[i] += a * sgn + c * w[i];
    }
}

void nn_reg_grad(float *dw, const float *w, size_t n, nn_regularizer r, float scale)
{
    if (!nn_reg_active(r)) return;
    float a = (float)((double)scale * r.l1);
    float c = (float)(2.0 * (double)scale * r.l2);
    reg_grad_loop(dw, w, n, a, c);
}
