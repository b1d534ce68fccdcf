/*
 * losses.c — Keras' losses with their exact gradients: mse, mae, huber,
 * binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy.
 *
 * Every loss is "per-sample value, then mean over the batch" (Keras'
 * sum_over_batch_size reduction). Arithmetic is in double per element: the cost
 * is O(B*C), negligible next to the GEMMs, and it keeps the reported loss and the
 * gradient accurate when probabilities approach the 1e-7 clip. The gradient is
 * the derivative of exactly what the forward computes: where a clip is active it
 * is zero (a clamp passes gradient only inside [lo, hi], inclusive, as PyTorch's
 * clamp does), and the categorical renormalization p / sum(p) is differentiated
 * through, not assumed to be the identity.
 *
 * Sources (Keras 3, keras/src/losses/losses.py and backend/{jax,torch,tensorflow}/nn.py):
 *   bce  = -(y ln p + (1-y) ln(1-p)), p clipped to [eps, 1-eps], mean over the
 *          last axis; from_logits: max(z,0) - z y + log1p(e^-|z|); smoothing
 *          y (1-s) + s/2.
 *   cce  = -sum y ln clip(p / sum p); from_logits: -sum y log_softmax(z);
 *          smoothing y (1-s) + s/C.
 *   scce = cce with a one-hot target built from the integer label (the Keras 3
 *          JAX/PyTorch/NumPy form: renormalize, clip, log). Keras'
 *          SparseCategoricalCrossentropy has no label smoothing, so none here.
 *          A label that is not an integer in [0, C) is the caller's error (callers
 *          check first); such a row contributes zero loss and zero gradient.
 */
#include <math.h>

#include "nn_int.h"

/* keras.config.epsilon(), and the clip bounds as Keras computes them: in float32,
 * where 1 - 1e-7 rounds to 0.99999988 (a double bound changes log(1 - p) at the
 * clip from -15.94 to -16.12). */
#define LOSS_EPS ((double)1e-7f)
#define LOSS_HI ((double)(1.0f - 1e-7f))

static double clip_prob(double p)
{
    /* NaN passes through (both tests fail) so the caller's NaN check sees it. */
    return p < LOSS_EPS ? LOSS_EPS : (p > LOSS_HI ? LOSS_HI : p);
}

static int in_clip_range(double p)
{
    return p >= LOSS_EPS && p <= LOSS_HI;
}

static double sign(double v)
{
    return (double)((v > 0.0) - (v < 0.0));
}

/* mse, mae, huber: element-wise on err = pred - y, mean over the last axis. */
static double loss_regression(float *dpred, const float *pred, const float *y, int B, int C,
                              const nn_loss_spec *loss)
{
    const double inv_c = 1.0 / C, g_scale = 1.0 / ((double)B * C);
    const double delta = loss->delta;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double row = 0.0;
        for (int j = 0; j < C; j++) {
            size_t i = (size_t)b * (size_t)C + (size_t)j;
            double err = (double)pred[i] - (double)y[i], l, g;
            switch (loss->kind) {
            case NN_LOSS_MSE:
                l = err * err;
                g = 2.0 * err;
                break;
            case NN_LOSS_MAE:
                l = fabs(err);
                g = sign(err);
                break;
            default: /* huber (Keras): quadratic inside delta, linear outside */
                if (fabs(err) <= delta) {
                    l = 0.5 * err * err;
                    g = err;
                } else {
                    l = delta * fabs(err) - 0.5 * delta * delta;
                    g = delta * sign(err);
                }
                break;
            }
            row += l;
            if (dpred) dpred[i] = (float)(g * g_scale);
        }
        total += row * inv_c;
    }
    return total / B;
}

static double loss_binary_ce(float *dpred, const float *pred, const float *y, int B, int C,
                             const nn_loss_spec *loss)
{
    const double s = loss->label_smoothing;
    const double inv_c = 1.0 / C, g_scale = 1.0 / ((double)B * C);
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double row = 0.0;
        for (int j = 0; j < C; j++) {
            size_t i = (size_t)b * (size_t)C + (size_t)j;
            double t = (double)y[i] * (1.0 - s) + 0.5 * s;
            double v = pred[i], l, g;
            if (loss->from_logits) {
                /* TF sigmoid_cross_entropy_with_logits; d/dz = sigmoid(z) - t. */
                double e = exp(-fabs(v));
                l = fmax(v, 0.0) - v * t + log1p(e);
                double sig = v >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
                g = sig - t;
            } else {
                double p = clip_prob(v);
                l = -(t * log(p) + (1.0 - t) * log(1.0 - p));
                g = in_clip_range(v) ? (1.0 - t) / (1.0 - p) - t / p : 0.0;
            }
            row += l;
            if (dpred) dpred[i] = (float)(g * g_scale);
        }
        total += row * inv_c;
    }
    return total / B;
}

/* log(sum_j e^z_j), max-shifted. */
static double log_sum_exp(const float *z, int C)
{
    double m = z[0];
    for (int j = 1; j < C; j++) m = z[j] > m ? z[j] : m;
    double sum = 0.0;
    for (int j = 0; j < C; j++) sum += exp((double)z[j] - m);
    return m + log(sum);
}

/* One row of categorical CE from probabilities against target t(j) (t_dense when
 * non-NULL, else one-hot at `label`). q = p / S, c = clip(q), l = -sum t ln c.
 * dl/dq_j = -t_j / c_j inside the clip range, 0 outside; through q = p / S:
 * dl/dp_k = (dl/dq_k - sum_j dl/dq_j q_j) / S. Writes g_scale * dl/dp to drow. */
static double cce_prob_row(float *drow, const float *p, const float *t_dense, double smooth,
                           int label, int C, double g_scale)
{
    double S = 0.0;
    for (int j = 0; j < C; j++) S += p[j];
    double l = 0.0, dot = 0.0;
    for (int j = 0; j < C; j++) {
        double t = t_dense ? (double)t_dense[j] * (1.0 - smooth) + smooth / C : (j == label);
        if (t == 0.0) continue;
        double q = p[j] / S;
        double c = clip_prob(q);
        l -= t * log(c);
        if (in_clip_range(q)) dot += (-t / c) * q;
    }
    if (drow) {
        for (int k = 0; k < C; k++) {
            double t = t_dense ? (double)t_dense[k] * (1.0 - smooth) + smooth / C : (k == label);
            double q = p[k] / S;
            double gq = (t != 0.0 && in_clip_range(q)) ? -t / clip_prob(q) : 0.0;
            drow[k] = (float)((gq - dot) / S * g_scale);
        }
    }
    return l;
}

/* One row of categorical CE from logits: l = sum_j t_j (lse - z_j);
 * dl/dz_k = (sum_j t_j) softmax_k - t_k. */
static double cce_logit_row(float *drow, const float *z, const float *t_dense, double smooth,
                            int label, int C, double g_scale)
{
    double lse = log_sum_exp(z, C);
    double l = 0.0, sum_t = 0.0;
    for (int j = 0; j < C; j++) {
        double t = t_dense ? (double)t_dense[j] * (1.0 - smooth) + smooth / C : (j == label);
        sum_t += t;
        if (t != 0.0) l += t * (lse - (double)z[j]);
    }
    if (drow) {
        for (int k = 0; k < C; k++) {
            double t = t_dense ? (double)t_dense[k] * (1.0 - smooth) + smooth / C : (k == label);
            drow[k] = (float)((sum_t * exp((double)z[k] - lse) - t) * g_scale);
        }
    }
    return l;
}

static double loss_categorical_ce(float *dpred, const float *pred, const float *y, int B, int C,
                                  const nn_loss_spec *loss)
{
    const int sparse = loss->kind == NN_LOSS_SPARSE_CATEGORICAL_CE;
    const double smooth = sparse ? 0.0 : loss->label_smoothing;
    const double g_scale = 1.0 / B;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *p = pred + (size_t)b * (size_t)C;
        float *drow = dpred ? dpred + (size_t)b * (size_t)C : NULL;
        const float *t_dense = NULL;
        int label = -1;
        if (sparse) {
            double v = y[b];
            if (!(v >= 0.0 && v < C) || v != floor(v)) { /* caller's error: skip the row */
                if (drow)
                    for (int k = 0; k < C; k++) drow[k] = 0.0f;
                continue;
            }
            label = (int)v;
        } else {
            t_dense = y + (size_t)b * (size_t)C;
        }
        total += loss->from_logits ? cce_logit_row(drow, p, t_dense, smooth, label, C, g_scale)
                                   : cce_prob_row(drow, p, t_dense, smooth, label, C, g_scale);
    }
    return total / B;
}

double nn_loss_forward(float *dpred, const float *pred, const float *y, int B, int C,
                       const nn_loss_spec *loss)
{
    if (B <= 0 || C <= 0) return 0.0;
    switch (loss->kind) {
    case NN_LOSS_MSE:
    case NN_LOSS_MAE:
    case NN_LOSS_HUBER: return loss_regression(dpred, pred, y, B, C, loss);
    case NN_LOSS_BINARY_CE: return loss_binary_ce(dpred, pred, y, B, C, loss);
    case NN_LOSS_CATEGORICAL_CE:
    case NN_LOSS_SPARSE_CATEGORICAL_CE: return loss_categorical_ce(dpred, pred, y, B, C, loss);
    case NN_LOSS_COUNT: break;
    }
    return NAN;
}
