/*
 * activations.c — element-wise activations and softmax, forward and backward,
 * with Keras 3's definitions and constants.
 *
 * Why this shape: these loops run over whole (batch, units) blocks every step, so
 * each activation is one simple loop over a single buffer with no calls between
 * elements other than libm's float functions. The forward copies x into y when
 * they differ and then works in place, and the backward copies dy into dx and
 * multiplies in place; that gives every loop one written pointer that does not
 * alias the pointer it reads (restrict), which the compiler can vectorize without
 * run-time alias checks (GCC's -O2 cost model refuses those).
 *
 * Backward contract: dx must not overlap x or y (dx == dy is fine). linear, relu,
 * sigmoid, tanh, softmax (and elu) read only y, so callers that ran the forward in
 * place may pass the same buffer as x and y. selu, gelu, leaky_relu, softplus and
 * swish read x, the pre-activation. Reading only y costs precision where y
 * saturates (1 - y^2 for tanh near +-1 has float's absolute, not relative,
 * accuracy), as in PyTorch's float32 backward of the same functions.
 */
#include <math.h>
#include <string.h>

#include "nn_int.h"

/* Keras selu constants (keras/src/activations/activations.py). */
#define SELU_ALPHA 1.67326324235437728481704299f
#define SELU_SCALE 1.05070098735548049341933498f
#define LEAKY_SLOPE 0.2f /* Keras 3 leaky_relu default negative_slope */

/* 1 / (1 + e^-x) without overflow: exp of -|x| only. */
static inline float sigmoidf(float x)
{
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* ---- forward, in place on v[0..n) */

static void fwd_relu(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
}

static void fwd_sigmoid(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = sigmoidf(v[i]);
}

static void fwd_tanh(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
}

/* Row-wise, shifted by the row's maximum so exp never overflows; the sum is kept
 * in double so that wide rows normalize to 1 within float rounding. */
static void fwd_softmax(float *restrict v, int B, int C)
{
    for (int b = 0; b < B; b++) {
        float *restrict row = v + (size_t)b * (size_t)C;
        float m = row[0];
        for (int j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
        double sum = 0.0;
        for (int j = 0; j < C; j++) {
            row[j] = expf(row[j] - m);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < C; j++) row[j] *= inv;
    }
}

static void fwd_elu(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : expm1f(v[i]);
}

static void fwd_selu(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = SELU_SCALE * (v[i] > 0.0f ? v[i] : SELU_ALPHA * expm1f(v[i]));
}

/* Exact GELU (Keras approximate=False): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),
 * written as 0.5 x erfc(-x / sqrt 2): the same value, without the cancellation
 * 1 + erf suffers for negative x. */
static void fwd_gelu(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = 0.5f * v[i] * erfcf(-v[i] * (float)M_SQRT1_2);
}

static void fwd_leaky_relu(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : LEAKY_SLOPE * v[i];
}

/* log(1 + e^x) = log1p(e^-|x|) + max(x, 0): no overflow for large x, no lost
 * digits for very negative x. */
static void fwd_softplus(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = log1pf(expf(-fabsf(v[i]))) + fmaxf(v[i], 0.0f);
}

static void fwd_swish(float *restrict v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = v[i] * sigmoidf(v[i]);
}

void nn_act_forward(float *y, const float *x, int B, int C, nn_activation act)
{
    if (B <= 0 || C <= 0) return;
    size_t n = (size_t)B * (size_t)C;
    if (y != x) memcpy(y, x, n * sizeof *y);
    switch (act) {
    case NN_ACT_LINEAR: break;
    case NN_ACT_RELU: fwd_relu(y, n); break;
    case NN_ACT_SIGMOID: fwd_sigmoid(y, n); break;
    case NN_ACT_TANH: fwd_tanh(y, n); break;
    case NN_ACT_SOFTMAX: fwd_softmax(y, B, C); break;
    case NN_ACT_ELU: fwd_elu(y, n); break;
    case NN_ACT_SELU: fwd_selu(y, n); break;
    case NN_ACT_GELU: fwd_gelu(y, n); break;
    case NN_ACT_LEAKY_RELU: fwd_leaky_relu(y, n); break;
    case NN_ACT_SOFTPLUS: fwd_softplus(y, n); break;
    case NN_ACT_SWISH: fwd_swish(y, n); break;
    case NN_ACT_COUNT: break;
    }
}

/* ---- backward: g holds dy on entry and dx on return */

/* relu'(x) = 1 for x > 0, else 0 (0 at the kink, as TF and PyTorch); x > 0 iff y > 0. */
static void bwd_relu(float *restrict g, const float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

static void bwd_sigmoid(float *restrict g, const float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= y[i] * (1.0f - y[i]);
}

static void bwd_tanh(float *restrict g, const float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= 1.0f - y[i] * y[i];
}

/* dx_i = y_i (dy_i - sum_j dy_j y_j), the softmax Jacobian-vector product. */
static void bwd_softmax(float *restrict g, const float *restrict y, int B, int C)
{
    for (int b = 0; b < B; b++) {
        float *restrict gr = g + (size_t)b * (size_t)C;
        const float *restrict yr = y + (size_t)b * (size_t)C;
        double dot = 0.0;
        for (int j = 0; j < C; j++) dot += (double)gr[j] * (double)yr[j];
        float d = (float)dot;
        for (int j = 0; j < C; j++) gr[j] = yr[j] * (gr[j] - d);
    }
}

/* elu'(x) = 1 for x > 0, e^x = y + 1 otherwise; e^x is recomputed from x when x is
 * distinct from y, which keeps relative precision for very negative x. */
static void bwd_elu(float *restrict g, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= x[i] > 0.0f ? 1.0f : expf(x[i]);
}

static void bwd_elu_from_y(float *restrict g, const float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= y[i] > 0.0f ? 1.0f : y[i] + 1.0f;
}

static void bwd_selu(float *restrict g, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] *= x[i] > 0.0f ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * expf(x[i]);
}

/* gelu'(x) = Phi(x) + x phi(x), phi the standard normal density. */
static void bwd_gelu(float *restrict g, const float *restrict x, size_t n)
{
    const float inv_sqrt_2pi = 0.398942280401432678f;
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * erfcf(-x[i] * (float)M_SQRT1_2);
        float pdf = inv_sqrt_2pi * expf(-0.5f * x[i] * x[i]);
        g[i] *= cdf + x[i] * pdf;
    }
}

static void bwd_leaky_relu(float *restrict g, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= x[i] > 0.0f ? 1.0f : LEAKY_SLOPE;
}

static void bwd_softplus(float *restrict g, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= sigmoidf(x[i]);
}

/* d/dx x s(x) = s + x s (1 - s). */
static void bwd_swish(float *restrict g, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(x[i]);
        g[i] *= s * (1.0f + x[i] * (1.0f - s));
    }
}

void nn_act_backward(float *dx, const float *dy, const float *x, const float *y, int B, int C,
                     nn_activation act)
{
    if (B <= 0 || C <= 0) return;
    size_t n = (size_t)B * (size_t)C;
    if (dx != dy) memcpy(dx, dy, n * sizeof *dx);
    switch (act) {
    case NN_ACT_LINEAR: break;
    case NN_ACT_RELU: bwd_relu(dx, y, n); break;
    case NN_ACT_SIGMOID: bwd_sigmoid(dx, y, n); break;
    case NN_ACT_TANH: bwd_tanh(dx, y, n); break;
    case NN_ACT_SOFTMAX: bwd_softmax(dx, y, B, C); break;
    case NN_ACT_ELU:
        if (x != y) bwd_elu(dx, x, n);
        else bwd_elu_from_y(dx, y, n);
        break;
    case NN_ACT_SELU: bwd_selu(dx, x, n); break;
    case NN_ACT_GELU: bwd_gelu(dx, x, n); break;
    case NN_ACT_LEAKY_RELU: bwd_leaky_relu(dx, x, n); break;
    case NN_ACT_SOFTPLUS: bwd_softplus(dx, x, n); break;
    case NN_ACT_SWISH: bwd_swish(dx, x, n); break;
    case NN_ACT_COUNT: break;
    }
}

typedef struct act_job {
    float *dx;
    const float *dy, *x, *y;
    int C;
    nn_activation act;
} act_job;

static void act_rows(void *arg, size_t r0, size_t r1)
{
    const act_job *j = arg;
    size_t off = r0 * (size_t)j->C;
    nn_act_backward(j->dx + off, j->dy + off, j->x + off, j->y + off, (int)(r1 - r0), j->C, j->act);
}

void nn_act_backward_par(float *dx, const float *dy, const float *x, const float *y, int B, int C,
                         nn_activation act, const nn_parallel *par)
{
    if (B <= 0 || C <= 0 || (act == NN_ACT_LINEAR && dx == dy)) return; /* nothing to do */
    act_job j = {dx, dy, x, y, C, act};
    nn_par_for(par, (size_t)B, 4 * (size_t)B * (size_t)C, 1, act_rows, &j);
}
