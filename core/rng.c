/*
 * rng.c — the core's random numbers: xoshiro256** (Blackman & Vigna, 2018) seeded
 * through splitmix64, plus the few distributions the trainer needs.
 *
 * Why this shape: the state is four plain 64-bit words in a value struct, so a
 * model or trainer owns its own generator (no globals, STYLE rule 12) and a
 * checkpoint can store it byte for byte. Every draw is a pure function of the
 * state, so a seed reproduces a run exactly on any platform: the distributions
 * use only IEEE double arithmetic and libm's log/sqrt/cos, never a cached value
 * outside the state.
 */
#include <math.h>

#include "nn_int.h"

/* splitmix64's output function (Steele, Lea & Flood 2014; constants from Vigna's
 * reference): a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15u

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The state is filled by four steps of splitmix64 from `seed`, as xoshiro's
 * authors recommend; it can never be all zero (mix64 is a bijection and the four
 * inputs differ), but we guard anyway. */
void nn_rng_seed(nn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x += GOLDEN_GAMMA;
        r->s[i] = mix64(x);
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = GOLDEN_GAMMA;
}

/* xoshiro256**: Vigna's reference algorithm. */
uint64_t nn_rng_next(nn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top 53 bits as a multiple of 2^-53: exactly representable, in [0, 1). */
double nn_rng_uniform(nn_rng *r)
{
    return (double)(nn_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Box-Muller, one value per call (the second is discarded so that the state alone
 * determines the stream). u1 is taken from (0, 1] so log() is finite. */
double nn_rng_normal(nn_rng *r)
{
    double u1 = 1.0 - nn_rng_uniform(r);
    double u2 = nn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* TF/Keras truncated_normal: values more than two standard deviations from the
 * mean are dropped and re-drawn (about 4.6% of draws). */
double nn_rng_truncated_normal(nn_rng *r)
{
    for (;;) {
        double z = nn_rng_normal(r);
        if (z >= -2.0 && z <= 2.0) return z;
    }
}

/* Unbiased by rejection: values below 2^64 mod n are refused, leaving a multiple
 * of n equally likely outcomes (the OpenBSD arc4random_uniform argument). The
 * loop runs more than once with probability < n / 2^64. n == 0 returns 0. */
uint64_t nn_rng_below(nn_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t threshold = (0 - n) % n; /* == 2^64 mod n */
    for (;;) {
        uint64_t x = nn_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

/* Fisher-Yates (Durstenfeld), from the end. */
void nn_rng_shuffle(nn_rng *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)nn_rng_below(r, (uint64_t)i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* Both inputs go through the splitmix mixer before and after combining, so
 * neighbouring seeds or streams give unrelated outputs and (seed, stream) pairs
 * do not collide in any simple pattern (unlike seed + stream). */
uint64_t nn_seed_mix(uint64_t seed, uint64_t stream)
{
    uint64_t a = mix64(seed + GOLDEN_GAMMA);
    uint64_t b = mix64((stream + 1) * GOLDEN_GAMMA);
    return mix64(a ^ rotl(b, 23)) ^ mix64(b + a);
}
