/*
 * dropout.c — inverted dropout (Keras Dropout in training): each value is zeroed
 * with probability `rate` and the survivors are scaled by 1/(1-rate), so the
 * expected output equals the input and evaluation needs no rescaling.
 *
 * Why this shape: one 64-bit draw yields two 32-bit uniforms, each compared with
 * an integer threshold (no float conversion per element), which keeps the mask
 * cheap next to the GEMMs. The mask is stored as the multiplier itself (0 or
 * 1/(1-rate)) so the backward is a single multiply. Draw order is fixed (element
 * i uses the low half for even i, the high half for odd i), so a seed fixes the
 * mask.
 */
#include <string.h>

#include "nn_int.h"

/* mask[i] = 0 with probability thr / 2^32 (thr = floor(rate * 2^32)), else
 * 1/(1-rate); y = x * mask. y == x allowed. rate <= 0 copies x, fills mask with 1
 * (when mask is non-NULL) and draws nothing. */
void nn_dropout_forward(float *y, float *mask, const float *x, size_t n, float rate, nn_rng *r)
{
    if (!(rate > 0.0f)) {
        if (y != x) memmove(y, x, n * sizeof *y);
        if (mask)
            for (size_t i = 0; i < n; i++) mask[i] = 1.0f;
        return;
    }
    const uint64_t thr = (uint64_t)((double)rate * 4294967296.0); /* rate < 1: thr < 2^32 */
    const float keep_scale = 1.0f / (1.0f - rate);
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t bits = nn_rng_next(r);
        float m0 = (bits & 0xffffffffu) < thr ? 0.0f : keep_scale;
        float m1 = (bits >> 32) < thr ? 0.0f : keep_scale;
        mask[i] = m0;
        mask[i + 1] = m1;
        y[i] = x[i] * m0;
        y[i + 1] = x[i + 1] * m1;
    }
    if (i < n) {
        float m0 = (nn_rng_next(r) & 0xffffffffu) < thr ? 0.0f : keep_scale;
        mask[i] = m0;
        y[i] = x[i] * m0;
    }
}

/* dx = dy * mask; dx == dy allowed. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}
