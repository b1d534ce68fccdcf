/*
 * dropout.c — inverted dropout (Keras Dropout in training): each value is zeroed
 * with probability `rate` and the survivors are scaled by 1/(1-rate), so the
 * expected output equals the input and evaluation needs no rescaling.
 *
 * Why this shape: the mask costs as much memory traffic as the activations, so the
 * random bits must be nearly free. Each call takes one draw from the model's RNG;
 * each chunk of CHUNK * BLOCK values seeds eight xoshiro256** lanes from that draw
 * and the chunk's index, and the lanes run side by side (a loop the compiler turns
 * into vector code), every 64-bit output giving two 32-bit uniforms, each
 * compared with an integer threshold. Chunks depend on nothing but (draw, index),
 * so any split of them over threads gives the same mask. The mask is stored as the
 * multiplier itself (0 or 1/(1-rate)) so the backward is a single multiply. The
 * model's RNG advances by exactly one draw per call, so a seed fixes every mask.
 */
#include <string.h>

#include "nn_int.h"

#define LANES 8
#define BLOCK 1024 /* 32-bit uniforms per refill: 4 KiB on the stack */
#define CHUNK 8    /* blocks drawn from one seeding of the lanes (a unit of a split) */

typedef struct lanes {
    uint64_t s0[LANES], s1[LANES], s2[LANES], s3[LANES];
} lanes;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void lanes_seed(lanes *L, uint64_t seed)
{
    for (int l = 0; l < LANES; l++) {
        L->s0[l] = splitmix(&seed);
        L->s1[l] = splitmix(&seed);
        L->s2[l] = splitmix(&seed);
        L->s3[l] = splitmix(&seed);
    }
}

/* BLOCK 32-bit uniforms: xoshiro256** in each lane (Blackman & Vigna). The state
 * is copied into local arrays and the lane loop is marked simd: working on L's
 * fields through the pointer, gcc unrolled the lanes into scalar code with the
 * state spilled to the stack (2% of a Fashion-MNIST epoch); this way each state
 * word is one vector register. */
NN_VEC_KERNEL
static void lanes_fill(lanes *restrict L, uint32_t *restrict out)
{
    uint64_t s0[LANES], s1[LANES], s2[LANES], s3[LANES];
    memcpy(s0, L->s0, sizeof s0);
    memcpy(s1, L->s1, sizeof s1);
    memcpy(s2, L->s2, sizeof s2);
    memcpy(s3, L->s3, sizeof s3);
    for (int i = 0; i < BLOCK; i += 2 * LANES) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            uint64_t a = s1[l] * 5;
            uint64_t r = ((a << 7) | (a >> 57)) * 9;
            uint64_t t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = (s3[l] << 45) | (s3[l] >> 19);
            out[i + l] = (uint32_t)r;
            out[i + LANES + l] = (uint32_t)(r >> 32);
        }
    }
    memcpy(L->s0, s0, sizeof s0);
    memcpy(L->s1, s1, sizeof s1);
    memcpy(L->s2, s2, sizeof s2);
    memcpy(L->s3, s3, sizeof s3);
}

/* mask[i] = 0 when u32 < thr, else keep; y = x * mask. */
NN_VEC_KERNEL
static void apply(float *restrict y, float *restrict mask, const float *restrict x, const uint32_t *restrict u,
                  size_t n, uint32_t thr, float keep)
{
    for (size_t i = 0; i < n; i++) {
        float m = u[i] < thr ? 0.0f : keep;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

typedef struct drop_job {
    float *y, *mask;
    const float *x;
    size_t n;
    uint64_t seed;
    uint32_t thr;
    float keep;
} drop_job;

/* Chunks [c0, c1) of the forward. */
static void drop_chunks(void *arg, size_t c0, size_t c1)
{
    const drop_job *j = arg;
    lanes L;
    uint32_t u[BLOCK];
    for (size_t b = c0 * CHUNK; b < c1 * CHUNK && b * BLOCK < j->n; b++) {
        size_t i = b * BLOCK, k = j->n - i < BLOCK ? j->n - i : BLOCK;
        if (b % CHUNK == 0) lanes_seed(&L, nn_seed_mix(j->seed, b / CHUNK));
        lanes_fill(&L, u);
        /* y may alias x (in place), so the aliasing-free kernel gets a copy when needed. */
        if (j->y == j->x) {
            float tmp[BLOCK];
            memcpy(tmp, j->x + i, k * sizeof *tmp);
            apply(j->y + i, j->mask + i, tmp, u, k, j->thr, j->keep);
        } else {
            apply(j->y + i, j->mask + i, j->x + i, u, k, j->thr, j->keep);
        }
    }
}

/* mask[i] = 0 with probability thr / 2^32 (thr = floor(rate * 2^32)), else
 * 1/(1-rate); y = x * mask. y == x allowed. rate <= 0 copies x, fills mask with 1
 * (when mask is non-NULL) and draws nothing. */
void nn_dropout_forward(float *y, float *mask, const float *x, size_t n, float rate, nn_rng *r,
                        const nn_parallel *par)
{
    if (!(rate > 0.0f)) {
        if (y != x) memmove(y, x, n * sizeof *y);
        if (mask)
            for (size_t i = 0; i < n; i++) mask[i] = 1.0f;
        return;
    }
    drop_job j = {y, mask, x, n, nn_rng_next(r),
                  (uint32_t)((double)rate * 4294967296.0), /* rate < 1: thr < 2^32 */
                  1.0f / (1.0f - rate)};
    nn_par_for(par, (n + CHUNK * BLOCK - 1) / (CHUNK * BLOCK), 4 * n, 1, drop_chunks, &j);
}

typedef struct drop_back_job {
    float *dx;
    const float *dy, *mask;
} drop_back_job;

static void drop_back_range(void *arg, size_t lo, size_t hi)
{
    const drop_back_job *j = arg;
    for (size_t i = lo; i < hi; i++) j->dx[i] = j->dy[i] * j->mask[i];
}

/* dx = dy * mask; dx == dy allowed. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n,
                         const nn_parallel *par)
{
    drop_back_job j = {dx, dy, mask};
    nn_par_for(par, n, 4 * n, 16, drop_back_range, &j);
}
