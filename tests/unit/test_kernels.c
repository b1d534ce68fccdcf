/*
 * test_kernels.c — the core's numeric kernels: rng, activations, dense, dropout,
 * regularizers, losses, metrics, initializers.
 *
 * Gradients are checked against central finite differences of a scalar function
 * of the kernel's output, evaluated in double. The kernels take float inputs, so
 * the step actually taken is measured ((float)(v+h) - (float)(v-h)) rather than
 * assumed; that removes the input rounding from the difference quotient. Values
 * are checked against hand-computed cases and statistics against their binomial
 * or sampling bounds.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_int.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static void fill_uniform(float *v, size_t n, double lo, double hi, nn_rng *r)
{
    for (size_t i = 0; i < n; i++) v[i] = (float)(lo + (hi - lo) * nn_rng_uniform(r));
}

/* Values in [lo, hi] kept at least `gap` away from every point in avoid[]. */
static void fill_avoiding(float *v, size_t n, double lo, double hi, const double *avoid,
                          int n_avoid, double gap, nn_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double x;
        int ok;
        do {
            x = lo + (hi - lo) * nn_rng_uniform(r);
            ok = 1;
            for (int k = 0; k < n_avoid; k++)
                if (fabs(x - avoid[k]) < gap) ok = 0;
        } while (!ok);
        v[i] = (float)x;
    }
}

static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* Central difference of f at v[i], with the step actually representable. */
typedef double (*scalar_fn)(void *ctx);
static float fd_at(float *v, size_t i, double h, scalar_fn f, void *ctx)
{
    float keep = v[i];
    float vp = (float)((double)keep + h), vm = (float)((double)keep - h);
    v[i] = vp;
    double fp = f(ctx);
    v[i] = vm;
    double fm = f(ctx);
    v[i] = keep;
    return (float)((fp - fm) / ((double)vp - (double)vm));
}

/* ------------------------------------------------------------ rng */

static void test_rng_reference_and_determinism(void **state)
{
    (void)state;
    /* Vigna's xoshiro256** from state {1, 2, 3, 4}: outputs computed with an
     * independent big-integer implementation of the published algorithm. */
    nn_rng r = {{1, 2, 3, 4}};
    assert_true(nn_rng_next(&r) == UINT64_C(11520));
    assert_true(nn_rng_next(&r) == UINT64_C(0));
    assert_true(nn_rng_next(&r) == UINT64_C(1509978240));
    assert_true(nn_rng_next(&r) == UINT64_C(1215971899390074240));

    nn_rng a, b, c;
    nn_rng_seed(&a, 42);
    nn_rng_seed(&b, 42);
    nn_rng_seed(&c, 43);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = nn_rng_next(&a), y = nn_rng_next(&b), z = nn_rng_next(&c);
        assert_true(x == y);
        same_c += x == z;
    }
    assert_true(same_c == 0);
    nn_rng zero;
    nn_rng_seed(&zero, 0);
    assert_true(zero.s[0] | zero.s[1] | zero.s[2] | zero.s[3]);
}

static void test_rng_distributions(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 7);
    const int n = 200000;
    double s = 0.0, s2 = 0.0, umin = 1.0, umax = 0.0;
    for (int i = 0; i < n; i++) {
        double u = nn_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        umin = fmin(umin, u);
        umax = fmax(umax, u);
        s += u;
    }
    assert_true(fabs(s / n - 0.5) < 5.0 * sqrt(1.0 / 12.0 / n));
    assert_true(umin < 1e-3 && umax > 1.0 - 1e-3);

    s = 0.0;
    for (int i = 0; i < n; i++) {
        double z = nn_rng_normal(&r);
        assert_true(isfinite(z));
        s += z;
        s2 += z * z;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(fabs(mean) < 5.0 / sqrt(n));
    assert_true(fabs(var - 1.0) < 5.0 * sqrt(2.0 / n));

    s = 0.0;
    s2 = 0.0;
    for (int i = 0; i < n; i++) {
        double z = nn_rng_truncated_normal(&r);
        assert_true(z >= -2.0 && z <= 2.0);
        s += z;
        s2 += z * z;
    }
    /* variance of N(0,1) truncated at +-2 is 0.87962566103423978^2 */
    var = s2 / n - (s / n) * (s / n);
    assert_true(fabs(sqrt(var) - 0.87962566103423978) < 0.01);
}

static void test_rng_below_and_shuffle(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 99);
    for (int i = 0; i < 1000; i++) assert_true(nn_rng_below(&r, 1) == 0);
    const uint64_t big = (UINT64_C(1) << 63) + 12345;
    for (int i = 0; i < 1000; i++) assert_true(nn_rng_below(&r, big) < big);

    /* n = 6: each face within 5 sigma of n/6 */
    int counts[6] = {0};
    const int draws = 60000;
    for (int i = 0; i < draws; i++) {
        uint64_t v = nn_rng_below(&r, 6);
        assert_true(v < 6);
        counts[v]++;
    }
    double sd = sqrt(draws * (1.0 / 6) * (5.0 / 6));
    for (int k = 0; k < 6; k++) assert_true(fabs(counts[k] - draws / 6.0) < 5.0 * sd);

    uint32_t idx[100];
    int seen[100] = {0};
    for (uint32_t i = 0; i < 100; i++) idx[i] = i;
    nn_rng_shuffle(&r, idx, 100);
    int moved = 0;
    for (uint32_t i = 0; i < 100; i++) {
        assert_true(idx[i] < 100);
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 50);
}

static void test_seed_mix(void **state)
{
    (void)state;
    assert_true(nn_seed_mix(1, 2) == nn_seed_mix(1, 2));
    assert_true(nn_seed_mix(1, 2) != nn_seed_mix(2, 1));
    assert_true(nn_seed_mix(1, 2) != nn_seed_mix(1, 3));
    assert_true(nn_seed_mix(0, 0) != 0);
    /* neighbouring streams differ in about half their bits */
    int bits = __builtin_popcountll(nn_seed_mix(5, 0) ^ nn_seed_mix(5, 1));
    assert_true(bits > 12 && bits < 52);
}

/* ------------------------------------------------------------ activations */

#define AB 3
#define AC 7

typedef struct act_ctx {
    float *x, *y;
    const float *w;
    nn_activation act;
} act_ctx;

static double act_objective(void *p)
{
    act_ctx *c = p;
    nn_act_forward(c->y, c->x, AB, AC, c->act);
    return dot_d(c->y, c->w, AB * AC);
}

/* Local names so this test does not depend on spec.c's tables. */
static const char *const act_names[NN_ACT_COUNT] = {
    "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "leaky_relu",
    "softplus", "swish"};

static int act_reads_only_y(nn_activation a)
{
    return a == NN_ACT_LINEAR || a == NN_ACT_RELU || a == NN_ACT_SIGMOID || a == NN_ACT_TANH ||
           a == NN_ACT_SOFTMAX || a == NN_ACT_ELU;
}

static void test_activation_gradients(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 1234);
    const double kinks[] = {0.0};
    for (int a = 0; a < NN_ACT_COUNT; a++) {
        float x[AB * AC], y[AB * AC], w[AB * AC], dx[AB * AC], fd[AB * AC], buf[AB * AC];
        fill_avoiding(x, AB * AC, -3.0, 3.0, kinks, 1, 0.1, &r);
        fill_uniform(w, AB * AC, -1.0, 1.0, &r);
        act_ctx c = {x, y, w, (nn_activation)a};
        for (size_t i = 0; i < AB * AC; i++) fd[i] = fd_at(x, i, 1e-2, act_objective, &c);
        nn_act_forward(y, x, AB, AC, (nn_activation)a);
        nn_act_backward(dx, w, x, y, AB, AC, (nn_activation)a);
        char label[64];
        snprintf(label, sizeof label, "d %s", act_names[a]);
        assert_close(dx, fd, AB * AC, 2e-4, 2e-3, label);

        /* dx == dy */
        memcpy(buf, w, sizeof buf);
        nn_act_backward(buf, buf, x, y, AB, AC, (nn_activation)a);
        assert_close(buf, dx, AB * AC, 0, 0, label);

        /* in-place forward, then backward with x == y for the output-only kinds */
        memcpy(buf, x, sizeof buf);
        nn_act_forward(buf, buf, AB, AC, (nn_activation)a);
        assert_close(buf, y, AB * AC, 0, 0, label);
        if (act_reads_only_y((nn_activation)a)) {
            float dx2[AB * AC];
            nn_act_backward(dx2, w, buf, buf, AB, AC, (nn_activation)a);
            assert_close(dx2, dx, AB * AC, 1e-6, 1e-5, label);
        }
    }
}

static void test_activation_values(void **state)
{
    (void)state;
    float x[8] = {-100.0f, -20.0f, -1.0f, 0.0f, 0.5f, 1.0f, 20.0f, 100.0f}, y[8];

    nn_act_forward(y, x, 1, 8, NN_ACT_SIGMOID);
    for (int i = 0; i < 8; i++) assert_true(isfinite(y[i]) && y[i] >= 0.0f && y[i] <= 1.0f);
    assert_true(y[0] > 0.0f && y[0] < 1e-40f); /* e^-100, subnormal but not 0 */
    assert_float_equal(y[3], 0.5f, 0.0f);
    assert_float_equal(y[5], 1.0 / (1.0 + exp(-1.0)), 1e-7);

    nn_act_forward(y, x, 1, 8, NN_ACT_SOFTPLUS);
    assert_float_equal(y[7], 100.0f, 1e-5);
    assert_float_equal(y[3], log(2.0), 1e-7);
    assert_float_equal(y[0], exp(-100.0), 1e-45);

    nn_act_forward(y, x, 1, 8, NN_ACT_SELU);
    /* Keras: scale * alpha * (e^x - 1) for x <= 0 */
    assert_float_equal(y[2], 1.0507009873554805 * 1.6732632423543772 * (exp(-1.0) - 1.0), 1e-6);
    assert_float_equal(y[5], 1.0507009873554805, 1e-6);

    nn_act_forward(y, x, 1, 8, NN_ACT_GELU);
    assert_float_equal(y[5], 0.8413447460685429, 1e-6);
    assert_float_equal(y[2], -0.15865525393145707, 1e-6);
    float far[1] = {-5.0f};
    nn_act_forward(far, far, 1, 1, NN_ACT_GELU); /* -5 Phi(-5): no cancellation */
    assert_float_equal(far[0], -1.4332578593959696e-06, 1e-5 * 1.4332578593959696e-06);

    nn_act_forward(y, x, 1, 8, NN_ACT_LEAKY_RELU);
    assert_float_equal(y[2], -0.2f, 1e-7);
    assert_float_equal(y[6], 20.0f, 0.0f);

    nn_act_forward(y, x, 1, 8, NN_ACT_ELU);
    assert_float_equal(y[2], expm1(-1.0), 1e-7);

    nn_act_forward(y, x, 1, 8, NN_ACT_SWISH);
    assert_float_equal(y[5], 1.0 / (1.0 + exp(-1.0)), 1e-7);
    assert_float_equal(y[0], 0.0f, 1e-30);

    /* softmax: stable for huge logits, rows sum to 1 */
    float z[6] = {1000.0f, 1001.0f, 1002.0f, -5.0f, 0.0f, 5.0f}, p[6];
    nn_act_forward(p, z, 2, 3, NN_ACT_SOFTMAX);
    double e0 = exp(-2.0), e1 = exp(-1.0), sum = e0 + e1 + 1.0;
    assert_float_equal(p[0], e0 / sum, 1e-7);
    assert_float_equal(p[2], 1.0 / sum, 1e-7);
    assert_float_equal(p[3] + p[4] + p[5], 1.0f, 1e-6);
    assert_float_equal(p[5], exp(5.0) / (exp(-5.0) + 1.0 + exp(5.0)), 1e-7);
}

/* ------------------------------------------------------------ dense */

#define DB 4
#define DI 5
#define DO 3

typedef struct dense_ctx {
    float *x, *w, *b;
    const float *g; /* weights of the scalar objective */
    nn_activation act;
} dense_ctx;

static double dense_objective(void *p)
{
    dense_ctx *c = p;
    float z[DB * DO], a[DB * DO];
    nn_dense_forward(a, z, c->x, c->w, c->b, DB, DI, DO, c->act);
    return dot_d(a, c->g, DB * DO);
}

static void test_dense_forward_matches_naive(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 5);
    float x[DB * DI], w[DI * DO], b[DO], z[DB * DO], a[DB * DO], want_z[DB * DO], want_a[DB * DO];
    fill_uniform(x, DB * DI, -1, 1, &r);
    fill_uniform(w, DI * DO, -1, 1, &r);
    fill_uniform(b, DO, -1, 1, &r);
    for (int i = 0; i < DB; i++)
        for (int j = 0; j < DO; j++) {
            double s = b[j];
            for (int k = 0; k < DI; k++) s += (double)x[i * DI + k] * w[k * DO + j];
            want_z[i * DO + j] = (float)s;
            want_a[i * DO + j] = (float)tanh(s);
        }
    nn_dense_forward(a, z, x, w, b, DB, DI, DO, NN_ACT_TANH);
    assert_close(z, want_z, DB * DO, 1e-6, 1e-5, "z");
    assert_close(a, want_a, DB * DO, 1e-6, 1e-5, "a");
    /* no bias, a == z */
    nn_dense_forward(z, z, x, w, NULL, DB, DI, DO, NN_ACT_LINEAR);
    for (int i = 0; i < DB; i++)
        for (int j = 0; j < DO; j++) want_z[i * DO + j] -= b[j];
    assert_close(z, want_z, DB * DO, 1e-6, 1e-5, "z no bias");
}

static void test_dense_gradients(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 11);
    const nn_activation acts[] = {NN_ACT_LINEAR, NN_ACT_TANH, NN_ACT_SOFTMAX, NN_ACT_GELU};
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
        float x[DB * DI], w[DI * DO], b[DO], g[DB * DO];
        float z[DB * DO], a[DB * DO], dz[DB * DO];
        float dw[DI * DO] = {0}, db[DO] = {0}, dx[DB * DI];
        float fd_w[DI * DO], fd_b[DO], fd_x[DB * DI];
        fill_uniform(x, DB * DI, -1, 1, &r);
        fill_uniform(w, DI * DO, -1, 1, &r);
        fill_uniform(b, DO, -0.5, 0.5, &r);
        fill_uniform(g, DB * DO, -1, 1, &r);
        dense_ctx c = {x, w, b, g, acts[ai]};

        for (size_t i = 0; i < DI * DO; i++) fd_w[i] = fd_at(w, i, 1e-2, dense_objective, &c);
        for (size_t i = 0; i < DO; i++) fd_b[i] = fd_at(b, i, 1e-2, dense_objective, &c);
        for (size_t i = 0; i < DB * DI; i++) fd_x[i] = fd_at(x, i, 1e-2, dense_objective, &c);

        nn_dense_forward(a, z, x, w, b, DB, DI, DO, acts[ai]);
        nn_act_backward(dz, g, z, a, DB, DO, acts[ai]);
        nn_dense_backward(dx, dw, db, dz, x, w, DB, DI, DO, 0);
        const char *name = act_names[acts[ai]];
        assert_close(dw, fd_w, DI * DO, 5e-4, 2e-3, name);
        assert_close(db, fd_b, DO, 5e-4, 2e-3, name);
        assert_close(dx, fd_x, DB * DI, 5e-4, 2e-3, name);

        /* Without accumulate dw, db and dx are overwritten whatever they held (dx
         * and db may be NULL); with it, dw and db add to what they hold. */
        float dw1[DI * DO], db1[DO], dx1[DB * DI];
        memcpy(dw1, dw, sizeof dw);
        memcpy(db1, db, sizeof db);
        memcpy(dx1, dx, sizeof dx);
        for (size_t i = 0; i < DI * DO; i++) dw[i] = 1e6f;
        for (size_t i = 0; i < DO; i++) db[i] = -1e6f;
        nn_dense_backward(dx, dw, db, dz, x, w, DB, DI, DO, 0);
        nn_dense_backward(NULL, dw, NULL, dz, x, w, DB, DI, DO, 0);
        assert_close(dw, dw1, DI * DO, 0, 0, "dw overwritten");
        assert_close(db, db1, DO, 0, 0, "db overwritten");
        assert_close(dx, dx1, DB * DI, 0, 0, "dx overwritten");
        nn_dense_backward(NULL, dw, db, dz, x, w, DB, DI, DO, 1);
        for (size_t i = 0; i < DI * DO; i++) dw1[i] *= 2.0f;
        for (size_t i = 0; i < DO; i++) db1[i] *= 2.0f;
        assert_close(dw, dw1, DI * DO, 1e-6, 1e-5, "dw accumulates");
        assert_close(db, db1, DO, 1e-6, 1e-5, "db accumulates");
    }
}

/* ------------------------------------------------------------ dropout */

static void test_dropout_statistics(void **state)
{
    (void)state;
    const size_t n = 100000;
    const float rate = 0.3f;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *mask = malloc(n * sizeof *mask);
    float *mask2 = malloc(n * sizeof *mask2), *y2 = malloc(n * sizeof *y2);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(mask);
    assert_non_null(mask2);
    assert_non_null(y2);
    nn_rng r;
    nn_rng_seed(&r, 2024);
    fill_uniform(x, n, -2, 2, &r);

    nn_rng r1, r2;
    nn_rng_seed(&r1, 77);
    nn_rng_seed(&r2, 77);
    nn_dropout_forward(y, mask, x, n, rate, &r1, NULL);
    const float scale = 1.0f / (1.0f - rate);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(mask[i] == 0.0f || mask[i] == scale);
        assert_true(y[i] == x[i] * mask[i]);
        kept += mask[i] != 0.0f;
    }
    double p = 1.0 - rate, sd = sqrt((double)n * p * (1.0 - p));
    assert_true(fabs((double)kept - n * p) < 5.0 * sd);

    /* same seed, same mask; in place (y == x) gives the same values */
    memcpy(y2, x, n * sizeof *y2);
    nn_dropout_forward(y2, mask2, y2, n, rate, &r2, NULL);
    assert_memory_equal(mask, mask2, n * sizeof *mask);
    assert_memory_equal(y, y2, n * sizeof *y);
    assert_memory_equal(&r1, &r2, sizeof r1);

    /* another seed, another mask */
    nn_rng r3;
    nn_rng_seed(&r3, 78);
    nn_dropout_forward(y2, mask2, x, n, rate, &r3, NULL);
    assert_true(memcmp(mask, mask2, n * sizeof *mask) != 0);

    /* rate 0: identity, mask of ones, no draws */
    nn_rng before = r1;
    nn_dropout_forward(y, mask, x, n, 0.0f, &r1, NULL);
    assert_memory_equal(&before, &r1, sizeof r1);
    assert_memory_equal(y, x, n * sizeof *y);
    for (size_t i = 0; i < n; i++) assert_true(mask[i] == 1.0f);

    /* odd length uses a final half draw and stays in bounds */
    nn_dropout_forward(y, mask, x, 7, 0.5f, &r1, NULL);
    for (size_t i = 0; i < 7; i++) assert_true(mask[i] == 0.0f || mask[i] == 2.0f);

    free(x);
    free(y);
    free(mask);
    free(mask2);
    free(y2);
}

typedef struct drop_ctx {
    float *x;
    const float *mask, *g;
    size_t n;
} drop_ctx;

static double drop_objective(void *p)
{
    drop_ctx *c = p;
    float y[16];
    for (size_t i = 0; i < c->n; i++) y[i] = c->x[i] * c->mask[i]; /* the fixed-mask forward */
    return dot_d(y, c->g, c->n);
}

static void test_dropout_backward(void **state)
{
    (void)state;
    nn_rng r;
    nn_rng_seed(&r, 3);
    float x[16], y[16], mask[16], g[16], dx[16], fd[16];
    fill_uniform(x, 16, -1, 1, &r);
    fill_uniform(g, 16, -1, 1, &r);
    nn_dropout_forward(y, mask, x, 16, 0.5f, &r, NULL);
    drop_ctx c = {x, mask, g, 16};
    for (size_t i = 0; i < 16; i++) fd[i] = fd_at(x, i, 1e-2, drop_objective, &c);
    nn_dropout_backward(dx, g, mask, 16, NULL);
    assert_close(dx, fd, 16, 1e-5, 1e-4, "dropout dx");
    nn_dropout_backward(g, g, mask, 16, NULL); /* dx == dy */
    assert_close(g, dx, 16, 0, 0, "dropout in place");
}

/* ------------------------------------------------------------ regularizers */

typedef struct reg_ctx {
    float *w;
    size_t n;
    nn_regularizer reg;
} reg_ctx;

static double reg_objective(void *p)
{
    reg_ctx *c = p;
    return nn_reg_penalty(c->w, c->n, c->reg);
}

static void test_regularizers(void **state)
{
    (void)state;
    float w2[2] = {1.0f, -2.0f};
    nn_regularizer l1 = {0.01, 0.0}, l2 = {0.0, 0.01}, l1l2 = {0.01, 0.01}, none = {0.0, 0.0};
    assert_false(nn_reg_active(none));
    assert_true(nn_reg_active(l1) && nn_reg_active(l2) && nn_reg_active(l1l2));
    assert_float_equal(nn_reg_penalty(w2, 2, l1), 0.03, 1e-12);
    assert_float_equal(nn_reg_penalty(w2, 2, l2), 0.05, 1e-12); /* no 0.5 factor */
    assert_float_equal(nn_reg_penalty(w2, 2, l1l2), 0.08, 1e-12);
    assert_float_equal(nn_reg_penalty(w2, 2, none), 0.0, 0.0);

    /* sign(0) = 0 */
    float w0[1] = {0.0f}, d0[1] = {0.0f};
    nn_reg_grad(d0, w0, 1, l1l2, 1.0f);
    assert_float_equal(d0[0], 0.0f, 0.0f);

    nn_rng r;
    nn_rng_seed(&r, 8);
    const double avoid[] = {0.0};
    const nn_regularizer regs[] = {l1, l2, l1l2, {0.3, 0.7}};
    for (size_t k = 0; k < sizeof regs / sizeof regs[0]; k++) {
        float w[20], dw[20], fd[20], base[20];
        fill_avoiding(w, 20, -2, 2, avoid, 1, 0.1, &r);
        fill_uniform(base, 20, -1, 1, &r);
        reg_ctx c = {w, 20, regs[k]};
        for (size_t i = 0; i < 20; i++) fd[i] = fd_at(w, i, 1e-2, reg_objective, &c);
        /* accumulates: dw = base + 0.5 * grad */
        memcpy(dw, base, sizeof dw);
        nn_reg_grad(dw, w, 20, regs[k], 0.5f);
        for (size_t i = 0; i < 20; i++) dw[i] = (dw[i] - base[i]) * 2.0f;
        assert_close(dw, fd, 20, 1e-5, 1e-4, "regularizer gradient");
    }
}

/* ------------------------------------------------------------ losses */

typedef struct loss_ctx {
    float *pred;
    const float *y;
    int B, C;
    const nn_loss_spec *spec;
} loss_ctx;

static double loss_objective(void *p)
{
    loss_ctx *c = p;
    return nn_loss_forward(NULL, c->pred, c->y, c->B, c->C, c->spec);
}

/* Compare dpred with central differences; elements with skip[i] set (a clip is
 * active there and any step would cross the boundary, e.g. p == 0 or p == 1) are
 * checked to be exactly 0 instead. Steps are relative (1% of |v|), so a tiny
 * clipped probability gets a step that stays on its side of the clip. */
static void check_loss_grad(float *pred, const float *y, int B, int C, const nn_loss_spec *spec,
                            const unsigned char *skip, const char *label)
{
    size_t n = (size_t)B * (size_t)C;
    float *d = malloc(n * sizeof *d), *fd = malloc(n * sizeof *fd);
    assert_non_null(d);
    assert_non_null(fd);
    double v0 = nn_loss_forward(d, pred, y, B, C, spec);
    assert_true(isfinite(v0));
    /* the gradient call and the value-only call agree */
    assert_float_equal(v0, nn_loss_forward(NULL, pred, y, B, C, spec), 0.0);
    loss_ctx c = {pred, y, B, C, spec};
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) {
            fd[i] = 0.0f;
            continue;
        }
        double h = pred[i] != 0.0f ? 1e-2 * fabs(pred[i]) : 1e-5;
        fd[i] = fd_at(pred, i, h, loss_objective, &c);
    }
    assert_close(d, fd, n, 1e-6, 2e-3, label);
    free(d);
    free(fd);
}

static nn_loss_spec loss_spec(nn_loss_kind k, int from_logits, double smoothing, double delta)
{
    nn_loss_spec s = {k, from_logits, smoothing, delta};
    return s;
}

static void test_loss_regression_gradients(void **state)
{
    (void)state;
    enum { B = 4, C = 3 };
    nn_rng r;
    nn_rng_seed(&r, 21);
    float y[B * C], pred[B * C];
    fill_uniform(y, B * C, -2, 2, &r);
    /* keep pred - y away from 0 (mae kink) and +-delta (huber joins) */
    const double kinks[] = {0.0, 1.0, -1.0, 0.7, -0.7};
    float e[B * C];
    fill_avoiding(e, B * C, -3, 3, kinks, 5, 0.05, &r);
    for (int i = 0; i < B * C; i++) pred[i] = y[i] + e[i];
    nn_loss_spec mse = loss_spec(NN_LOSS_MSE, 0, 0, 1), mae = loss_spec(NN_LOSS_MAE, 0, 0, 1);
    nn_loss_spec hub = loss_spec(NN_LOSS_HUBER, 0, 0, 1.0);
    nn_loss_spec hub2 = loss_spec(NN_LOSS_HUBER, 0, 0, 0.7);
    check_loss_grad(pred, y, B, C, &mse, NULL, "mse");
    check_loss_grad(pred, y, B, C, &mae, NULL, "mae");
    check_loss_grad(pred, y, B, C, &hub, NULL, "huber 1");
    check_loss_grad(pred, y, B, C, &hub2, NULL, "huber 0.7");
}

static void test_loss_regression_values(void **state)
{
    (void)state;
    float pred[4] = {1.0f, 2.0f, 0.5f, -3.0f}, y[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    nn_loss_spec mse = loss_spec(NN_LOSS_MSE, 0, 0, 1), mae = loss_spec(NN_LOSS_MAE, 0, 0, 1);
    nn_loss_spec hub = loss_spec(NN_LOSS_HUBER, 0, 0, 1.0);
    /* rows (1, 2) and (0.5, -3): per-sample means, then the mean of the two */
    assert_float_equal(nn_loss_forward(NULL, pred, y, 2, 2, &mse), (2.5 + 4.625) / 2, 1e-12);
    assert_float_equal(nn_loss_forward(NULL, pred, y, 2, 2, &mae), (1.5 + 1.75) / 2, 1e-12);
    /* huber: 0.5, 1.5, 0.125, 2.5 */
    assert_float_equal(nn_loss_forward(NULL, pred, y, 2, 2, &hub), (1.0 + 1.3125) / 2, 1e-12);
    float d[4];
    nn_loss_forward(d, pred, y, 2, 2, &mae);
    assert_float_equal(d[3], -0.25f, 0.0f);
    /* mae at err == 0 has zero gradient */
    nn_loss_forward(d, y, y, 2, 2, &mae);
    for (int i = 0; i < 4; i++) assert_float_equal(d[i], 0.0f, 0.0f);
}

static void test_loss_binary_ce(void **state)
{
    (void)state;
    enum { B = 3, C = 4 };
    nn_rng r;
    nn_rng_seed(&r, 31);
    float y[B * C], p[B * C], z[B * C];
    for (int i = 0; i < B * C; i++) y[i] = (float)nn_rng_below(&r, 2);
    y[5] = 0.3f; /* a soft target */
    fill_uniform(p, B * C, 0.05, 0.95, &r);
    fill_uniform(z, B * C, -4, 4, &r);
    const double smooth[] = {0.0, 0.1};
    for (int s = 0; s < 2; s++) {
        nn_loss_spec probs = loss_spec(NN_LOSS_BINARY_CE, 0, smooth[s], 1);
        nn_loss_spec logits = loss_spec(NN_LOSS_BINARY_CE, 1, smooth[s], 1);
        check_loss_grad(p, y, B, C, &probs, NULL, "bce");
        check_loss_grad(z, y, B, C, &logits, NULL, "bce logits");
    }
    /* huge logits stay finite and match the probability form far from the clip */
    float zbig[2] = {60.0f, -60.0f}, ybig[2] = {0.0f, 0.0f};
    nn_loss_spec logits = loss_spec(NN_LOSS_BINARY_CE, 1, 0, 1);
    assert_float_equal(nn_loss_forward(NULL, zbig, ybig, 1, 2, &logits),
                       (60.0 + 2.0 * log1p(exp(-60.0))) / 2, 1e-9);

    /* clipped probabilities: value -ln(1e-7), gradient zero; the bounds are
     * float32 values, as Keras clips in float32 */
    nn_loss_spec probs = loss_spec(NN_LOSS_BINARY_CE, 0, 0, 1);
    float pc[4] = {0.0f, 1.0f, 1e-9f, 0.5f}, yc[4] = {1.0f, 0.0f, 0.0f, 1.0f}, d[4];
    double v = nn_loss_forward(d, pc, yc, 1, 4, &probs);
    const double lo = (double)1e-7f, hi = (double)(1.0f - 1e-7f);
    double want = (-log(lo) - log(1.0 - hi) - log(1.0 - lo) - log(0.5)) / 4;
    assert_float_equal(v, want, 1e-9);
    assert_float_equal(d[0], 0.0f, 0.0f);
    assert_float_equal(d[1], 0.0f, 0.0f);
    assert_float_equal(d[2], 0.0f, 0.0f);
    assert_float_equal(d[3], -2.0f / 4, 1e-7);
    /* label smoothing: y = 1 with s = 0.2 is the target 0.9 */
    nn_loss_spec sm = loss_spec(NN_LOSS_BINARY_CE, 0, 0.2, 1);
    float p1[1] = {0.6f}, y1[1] = {1.0f};
    assert_float_equal(nn_loss_forward(NULL, p1, y1, 1, 1, &sm),
                       -(0.9 * log(0.6f) + 0.1 * log(1.0 - 0.6f)), 1e-9);
    /* BCE mixed with clip: FD elsewhere, exact zero at the clipped points */
    unsigned char skip[4] = {1, 1, 1, 0};
    check_loss_grad(pc, yc, 1, 4, &probs, skip, "bce clipped");
}

static void test_loss_categorical_ce(void **state)
{
    (void)state;
    enum { B = 3, C = 5 };
    nn_rng r;
    nn_rng_seed(&r, 41);
    float y[B * C] = {0}, p[B * C], z[B * C];
    for (int b = 0; b < B; b++) y[b * C + (int)nn_rng_below(&r, C)] = 1.0f;
    /* one soft target row */
    for (int j = 0; j < C; j++) y[2 * C + j] = 0.2f;
    /* probabilities that do not sum to 1: exercises the renormalization */
    fill_uniform(p, B * C, 0.1, 1.0, &r);
    fill_uniform(z, B * C, -3, 3, &r);
    const double smooth[] = {0.0, 0.1};
    for (int s = 0; s < 2; s++) {
        nn_loss_spec probs = loss_spec(NN_LOSS_CATEGORICAL_CE, 0, smooth[s], 1);
        nn_loss_spec logits = loss_spec(NN_LOSS_CATEGORICAL_CE, 1, smooth[s], 1);
        check_loss_grad(p, y, B, C, &probs, NULL, "cce");
        check_loss_grad(z, y, B, C, &logits, NULL, "cce logits");
    }

    /* hand values: a clipped probability gives -ln(1e-7) */
    nn_loss_spec probs = loss_spec(NN_LOSS_CATEGORICAL_CE, 0, 0, 1);
    float pc[3] = {0.0f, 0.5f, 0.5f}, yc[3] = {1.0f, 0.0f, 0.0f}, d[3];
    assert_float_equal(nn_loss_forward(d, pc, yc, 1, 3, &probs), -log(1e-7), 1e-9);
    /* y puts no weight where q is unclipped and the clipped entry passes no
     * gradient: everything is zero */
    for (int j = 0; j < 3; j++) assert_float_equal(d[j], 0.0f, 0.0f);
    /* renormalization: (2, 6) is (0.25, 0.75) */
    float pr[2] = {2.0f, 6.0f}, yr[2] = {0.0f, 1.0f};
    assert_float_equal(nn_loss_forward(d, pr, yr, 1, 2, &probs), -log(0.75), 1e-9);
    /* d/dp of -ln(p1 / (p0 + p1)) = (1/8, 1/8 - 1/6) */
    assert_float_equal(d[0], 1.0 / 8, 1e-7);
    assert_float_equal(d[1], 1.0 / 8 - 1.0 / 6, 1e-7);
    /* smoothing s/C: y = (0, 1), s = 0.2 -> (0.1, 0.9) */
    nn_loss_spec sm = loss_spec(NN_LOSS_CATEGORICAL_CE, 0, 0.2, 1);
    assert_float_equal(nn_loss_forward(NULL, pr, yr, 1, 2, &sm),
                       -(0.1 * log(0.25) + 0.9 * log(0.75)), 1e-9);
    /* logits: -log_softmax, stable for large values */
    nn_loss_spec lg = loss_spec(NN_LOSS_CATEGORICAL_CE, 1, 0, 1);
    float zl[2] = {1000.0f, 1001.0f};
    assert_float_equal(nn_loss_forward(d, zl, yr, 1, 2, &lg), log1p(exp(-1.0)), 1e-9);
    assert_float_equal(d[0], 1.0 / (1.0 + exp(1.0)), 1e-7);
    /* a row with one clipped entry: its own log term passes no gradient, but it
     * still moves the other entries through the renormalization (nonzero);
     * finite differences with a 1e-11 step stay below the clip */
    float pm[4] = {1e-9f, 0.3f, 0.5f, 0.2f}, ym[4] = {0.5f, 0.5f, 0.0f, 0.0f};
    float dm[4];
    nn_loss_forward(dm, pm, ym, 1, 4, &probs);
    assert_true(dm[0] > 0.0f);
    check_loss_grad(pm, ym, 1, 4, &probs, NULL, "cce clipped row");
}

static void test_loss_sparse_ce(void **state)
{
    (void)state;
    enum { B = 4, C = 5 };
    nn_rng r;
    nn_rng_seed(&r, 51);
    float y[B], p[B * C], z[B * C], onehot[B * C] = {0};
    for (int b = 0; b < B; b++) {
        y[b] = (float)nn_rng_below(&r, C);
        onehot[b * C + (int)y[b]] = 1.0f;
    }
    fill_uniform(p, B * C, 0.1, 1.0, &r);
    fill_uniform(z, B * C, -3, 3, &r);
    for (int logits = 0; logits < 2; logits++) {
        nn_loss_spec sp = loss_spec(NN_LOSS_SPARSE_CATEGORICAL_CE, logits, 0, 1);
        nn_loss_spec de = loss_spec(NN_LOSS_CATEGORICAL_CE, logits, 0, 1);
        float *v = logits ? z : p;
        check_loss_grad(v, y, B, C, &sp, NULL, logits ? "scce logits" : "scce");
        /* identical to the categorical loss on the one-hot target */
        float d1[B * C], d2[B * C];
        double l1 = nn_loss_forward(d1, v, y, B, C, &sp);
        double l2 = nn_loss_forward(d2, v, onehot, B, C, &de);
        assert_float_equal(l1, l2, 1e-12);
        assert_close(d1, d2, B * C, 0, 1e-6, "scce == cce one-hot");
    }
    /* an out-of-range label is skipped, never read out of bounds */
    float ybad[B] = {0.0f, (float)C, -1.0f, NAN};
    float d[B * C];
    nn_loss_spec sp = loss_spec(NN_LOSS_SPARSE_CATEGORICAL_CE, 0, 0, 1);
    double v = nn_loss_forward(d, p, ybad, B, C, &sp);
    assert_true(isfinite(v));
    for (int j = C; j < B * C; j++) assert_float_equal(d[j], 0.0f, 0.0f);
    /* clipped: p(label) = 0 */
    float pc[2] = {0.0f, 1.0f}, yc[1] = {0.0f};
    assert_float_equal(nn_loss_forward(NULL, pc, yc, 1, 2, &sp), -log(1e-7), 1e-9);
}

/* ------------------------------------------------------------ metrics */

static void test_metrics(void **state)
{
    (void)state;
    /* binary: strictly greater than 0.5 is class 1 */
    float pb[4] = {0.7f, 0.5f, 0.2f, 0.51f}, yb[4] = {1.0f, 1.0f, 0.0f, 0.0f};
    assert_float_equal(nn_metric_sum(NN_METRIC_BINARY_ACCURACY, pb, yb, 4, 1, 1, 0), 2.0, 0.0);
    /* width 2: per-sample mean over the last axis */
    assert_float_equal(nn_metric_sum(NN_METRIC_BINARY_ACCURACY, pb, yb, 2, 2, 2, 0), 0.5 + 0.5, 0.0);
    /* from_logits does not move the threshold (Keras) */
    float zb[2] = {0.3f, -1.0f}, yz[2] = {1.0f, 0.0f};
    assert_float_equal(nn_metric_sum(NN_METRIC_BINARY_ACCURACY, zb, yz, 2, 1, 1, 1), 1.0, 0.0);

    float pc[6] = {0.1f, 0.7f, 0.2f, 0.5f, 0.4f, 0.1f};
    float yc[6] = {0, 1, 0, 0, 0, 1};
    assert_float_equal(nn_metric_sum(NN_METRIC_CATEGORICAL_ACCURACY, pc, yc, 2, 3, 3, 0), 1.0, 0.0);
    /* ties go to the first index, as in argmax */
    float pt[3] = {0.4f, 0.4f, 0.2f}, yt[3] = {1, 0, 0};
    assert_float_equal(nn_metric_sum(NN_METRIC_CATEGORICAL_ACCURACY, pt, yt, 1, 3, 3, 0), 1.0, 0.0);
    float ys[2] = {1.0f, 0.0f};
    const nn_metric_kind sparse = NN_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    assert_float_equal(nn_metric_sum(sparse, pc, ys, 2, 3, 1, 0), 2.0, 0.0);
    ys[1] = 2.0f;
    assert_float_equal(nn_metric_sum(sparse, pc, ys, 2, 3, 1, 0), 1.0, 0.0);

    float pr[4] = {1.0f, 2.0f, 0.5f, -3.0f}, yr[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    assert_float_equal(nn_metric_sum(NN_METRIC_MAE, pr, yr, 2, 2, 2, 0), 1.5 + 1.75, 1e-12);
    assert_float_equal(nn_metric_sum(NN_METRIC_MSE, pr, yr, 2, 2, 2, 0), 2.5 + 4.625, 1e-12);
    assert_true(isnan(nn_metric_sum(NN_METRIC_ACCURACY, pr, yr, 2, 2, 2, 0)));

    /* One label column against 3 outputs (a sparse crossentropy model's targets):
     * broadcast along the row as Keras does, never read as 3 columns (which read
     * past the labels). Labels 1 and 2 against pc's rows. */
    float yl[2] = {1.0f, 2.0f};
    double mse = ((0.9 * 0.9 + 0.3 * 0.3 + 0.8 * 0.8) + (1.5 * 1.5 + 1.6 * 1.6 + 1.9 * 1.9)) / 3;
    double mae = ((0.9 + 0.3 + 0.8) + (1.5 + 1.6 + 1.9)) / 3;
    assert_float_equal(nn_metric_sum(NN_METRIC_MSE, pc, yl, 2, 3, 1, 0), mse, 1e-6);
    assert_float_equal(nn_metric_sum(NN_METRIC_MAE, pc, yl, 2, 3, 1, 0), mae, 1e-6);
    /* y == (p > 0.5): label 1 matches row 0's 0.7 only; label 2 matches nothing */
    assert_float_equal(nn_metric_sum(NN_METRIC_BINARY_ACCURACY, pc, yl, 2, 3, 1, 0), 1.0 / 3, 1e-12);
    /* argmax of a one-column target is 0: row 1 (argmax 0) counts */
    assert_float_equal(nn_metric_sum(NN_METRIC_CATEGORICAL_ACCURACY, pc, yl, 2, 3, 1, 0), 1.0, 0.0);
    /* sparse accuracy takes labels only (nn_check_data refuses wider targets) */
    float pe[3] = {0.0f, 1.0f, 0.5f}, ye[3] = {0.0f, 1.0f, 0.0f};
    assert_true(isnan(nn_metric_sum(sparse, pe, ye, 1, 3, 3, 0)));
    assert_true(isnan(nn_metric_sum(NN_METRIC_MSE, pc, yl, 1, 3, 2, 0)));
}

/* ------------------------------------------------------------ init */

static nn_init_spec init_spec(nn_init_kind k, double a, double b)
{
    nn_init_spec s = {k, a, b, 0, 0};
    return s;
}

static void moments(const float *w, size_t n, double *mean, double *sd, double *absmax)
{
    double s = 0, s2 = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
        m = fmax(m, fabs(w[i]));
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
    *absmax = m;
}

static void test_init(void **state)
{
    (void)state;
    const size_t n = 200000;
    float *w = malloc(n * sizeof *w);
    assert_non_null(w);
    nn_rng r;
    nn_rng_seed(&r, 61);
    double mean, sd, mx;

    /* glorot_uniform (fan_in 400, fan_out 500): U[-L, L), L = sqrt(6/900) */
    nn_init_spec s = init_spec(NN_INIT_GLOROT_UNIFORM, 0, 0);
    nn_init_fill(w, n, 400, 500, &s, &r);
    double L = sqrt(6.0 / 900.0);
    moments(w, n, &mean, &sd, &mx);
    assert_true(mx <= (float)L);
    assert_true(mx > 0.999 * L);
    assert_true(fabs(sd - L / sqrt(3.0)) < 0.01 * L);
    assert_true(fabs(mean) < 0.01 * L);

    /* he_normal: truncated normal, overall stddev sqrt(2 / fan_in), |w| within 2 raw stddev */
    s = init_spec(NN_INIT_HE_NORMAL, 0, 0);
    nn_init_fill(w, n, 200, 10, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    double want = sqrt(2.0 / 200.0);
    assert_true(fabs(sd - want) < 0.01 * want);
    assert_true(mx <= 2.0 * want / 0.87962566103423978 * (1 + 1e-6));
    assert_true(mx > 1.9 * want / 0.87962566103423978);

    /* glorot_normal, lecun_normal, he_uniform, lecun_uniform: the scale */
    s = init_spec(NN_INIT_GLOROT_NORMAL, 0, 0);
    nn_init_fill(w, n, 30, 70, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    assert_true(fabs(sd - sqrt(2.0 / 100.0)) < 0.01 * sqrt(2.0 / 100.0));
    s = init_spec(NN_INIT_LECUN_NORMAL, 0, 0);
    nn_init_fill(w, n, 50, 7, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    assert_true(fabs(sd - sqrt(1.0 / 50.0)) < 0.01 * sqrt(1.0 / 50.0));
    s = init_spec(NN_INIT_HE_UNIFORM, 0, 0);
    nn_init_fill(w, n, 60, 7, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    assert_true(mx <= (float)sqrt(6.0 / 60.0) && mx > 0.999 * sqrt(6.0 / 60.0));
    s = init_spec(NN_INIT_LECUN_UNIFORM, 0, 0);
    nn_init_fill(w, n, 60, 7, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    assert_true(mx <= (float)sqrt(3.0 / 60.0) && mx > 0.999 * sqrt(3.0 / 60.0));

    /* random_normal(mean, stddev) and random_uniform(min, max) */
    s = init_spec(NN_INIT_RANDOM_NORMAL, 1.5, 0.2);
    nn_init_fill(w, n, 1, 1, &s, &r);
    moments(w, n, &mean, &sd, &mx);
    assert_true(fabs(mean - 1.5) < 5 * 0.2 / sqrt(n));
    assert_true(fabs(sd - 0.2) < 0.005);
    s = init_spec(NN_INIT_RANDOM_UNIFORM, -0.1, 0.3);
    nn_init_fill(w, n, 1, 1, &s, &r);
    float lo = w[0], hi = w[0];
    for (size_t i = 0; i < n; i++) {
        lo = fminf(lo, w[i]);
        hi = fmaxf(hi, w[i]);
    }
    assert_true(lo >= -0.1f && lo < -0.099f && hi <= 0.3f && hi > 0.299f);

    /* constants draw nothing */
    nn_rng before = r;
    s = init_spec(NN_INIT_ZEROS, 0, 0);
    nn_init_fill(w, 10, 3, 3, &s, &r);
    for (int i = 0; i < 10; i++) assert_float_equal(w[i], 0.0f, 0.0f);
    s = init_spec(NN_INIT_ONES, 0, 0);
    nn_init_fill(w, 10, 3, 3, &s, &r);
    for (int i = 0; i < 10; i++) assert_float_equal(w[i], 1.0f, 0.0f);
    assert_memory_equal(&before, &r, sizeof r);

    /* deterministic given the rng state */
    float a[50], b[50];
    nn_rng r1, r2;
    nn_rng_seed(&r1, 5);
    nn_rng_seed(&r2, 5);
    s = init_spec(NN_INIT_GLOROT_NORMAL, 0, 0);
    nn_init_fill(a, 50, 5, 10, &s, &r1);
    nn_init_fill(b, 50, 5, 10, &s, &r2);
    assert_memory_equal(a, b, sizeof a);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference_and_determinism),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_rng_below_and_shuffle),
        cmocka_unit_test(test_seed_mix),
        cmocka_unit_test(test_activation_gradients),
        cmocka_unit_test(test_activation_values),
        cmocka_unit_test(test_dense_forward_matches_naive),
        cmocka_unit_test(test_dense_gradients),
        cmocka_unit_test(test_dropout_statistics),
        cmocka_unit_test(test_dropout_backward),
        cmocka_unit_test(test_regularizers),
        cmocka_unit_test(test_loss_regression_gradients),
        cmocka_unit_test(test_loss_regression_values),
        cmocka_unit_test(test_loss_binary_ce),
        cmocka_unit_test(test_loss_categorical_ce),
        cmocka_unit_test(test_loss_sparse_ce),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
