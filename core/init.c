/*
 * init.c — Keras' weight initializers: the VarianceScaling family (glorot, he,
 * lecun; uniform and truncated normal), zeros, ones, random_normal and
 * random_uniform.
 *
 * Keras VarianceScaling (keras/src/initializers/random_initializers.py):
 *   n = fan_in, or (fan_in + fan_out) / 2 for glorot (fan_avg), at least 1;
 *   uniform: U[-L, L) with L = sqrt(3 * scale / n);
 *   normal:  truncated normal (re-drawn beyond 2 stddev) with
 *            stddev = sqrt(scale / n) / 0.87962566103423978, the stddev of a unit
 *            normal truncated at +-2, so the result has variance scale / n.
 *   glorot: scale 1, fan_avg; he: scale 2, fan_in; lecun: scale 1, fan_in.
 * Values are computed in double and rounded once to float. The initializer's own
 * seed is the caller's business (model.c seeds `r`); this file only draws from it.
 */
#include <math.h>

#include "nn_int.h"

#define TRUNC_NORMAL_STD 0.87962566103423978

static void fill_uniform(float *w, size_t n, double lo, double hi, nn_rng *r)
{
    for (size_t i = 0; i < n; i++) w[i] = (float)(lo + (hi - lo) * nn_rng_uniform(r));
}

static void fill_const(float *w, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) w[i] = v;
}

void nn_init_fill(float *w, size_t n, int fan_in, int fan_out, const nn_init_spec *init, nn_rng *r)
{
    double scale = 1.0, fan = fan_in;
    int uniform = 0;
    switch (init->kind) {
    case NN_INIT_GLOROT_UNIFORM: uniform = 1; /* fall through */
    case NN_INIT_GLOROT_NORMAL: fan = 0.5 * ((double)fan_in + (double)fan_out); break;
    case NN_INIT_HE_UNIFORM: uniform = 1; /* fall through */
    case NN_INIT_HE_NORMAL: scale = 2.0; break;
    case NN_INIT_LECUN_UNIFORM: uniform = 1; break;
    case NN_INIT_LECUN_NORMAL: break;
    case NN_INIT_ZEROS: fill_const(w, n, 0.0f); return;
    case NN_INIT_ONES: fill_const(w, n, 1.0f); return;
    case NN_INIT_RANDOM_NORMAL:
        for (size_t i = 0; i < n; i++) w[i] = (float)(init->a + init->b * nn_rng_normal(r));
        return;
    case NN_INIT_RANDOM_UNIFORM: fill_uniform(w, n, init->a, init->b, r); return;
    case NN_INIT_COUNT: fill_const(w, n, 0.0f); return;
    }
    if (fan < 1.0) fan = 1.0;
    if (uniform) {
        double limit = sqrt(3.0 * scale / fan);
        fill_uniform(w, n, -limit, limit, r);
    } else {
        double stddev = sqrt(scale / fan) / TRUNC_NORMAL_STD;
        for (size_t i = 0; i < n; i++) w[i] = (float)(stddev * nn_rng_truncated_normal(r));
    }
}
