/*
 * test_model.c — the whole model's gradient against finite differences of its own
 * loss: every layer, every regularizer slot (kernel, bias, activity) and dropout
 * with a fixed mask (the same RNG state replayed for every evaluation), plus
 * predict and default layer naming.
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

#define B 6
#define IN 5

static void fill(float *v, size_t n, uint64_t seed, double scale)
{
    nn_rng r;
    nn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = (float)((nn_rng_uniform(&r) * 2 - 1) * scale);
}

static double loss_at(nn_model *m, const nn_loss_spec *loss, const float *x, const float *y, float *g,
                      const nn_rng *rng0)
{
    nn_rng r = *rng0; /* the same dropout mask every time */
    return nn_model_grad(m, loss, x, y, B, g, &r, NULL, NULL, NULL);
}

static void check_model(nn_layer_spec *layers, int n_layers, nn_loss_kind lk, int y_width)
{
    nn_model_spec spec = {.input_dim = IN, .n_layers = n_layers, .layers = layers};
    nn_error err = {0};
    nn_model *m = nn_model_new(&spec, 11, &err);
    assert_non_null(m);
    size_t np = nn_model_param_count(m);
    float x[B * IN], y[B * 4], *g = calloc(np, sizeof(float)), *g2 = calloc(np, sizeof(float));
    fill(x, B * IN, 1, 1.0);
    nn_loss_spec loss = nn_loss_default(lk);
    if (lk == NN_LOSS_SPARSE_CATEGORICAL_CE)
        for (int i = 0; i < B; i++) y[i] = (float)(i % 3);
    else
        fill(y, (size_t)B * (size_t)y_width, 2, 1.0);
    nn_rng rng0;
    nn_rng_seed(&rng0, 5);
    loss_at(m, &loss, x, y, g, &rng0);

    float *p = nn_model_params(m);
    const float h = 1e-2f;
    int checked = 0;
    for (size_t i = 0; i < np; i++) {
        if (fabsf(p[i]) < 3 * h) continue; /* L1's kink at 0 */
        float keep = p[i];
        p[i] = keep + h;
        double lp = loss_at(m, &loss, x, y, g2, &rng0);
        p[i] = keep - h;
        double lm = loss_at(m, &loss, x, y, g2, &rng0);
        p[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd))
            fail_msg("param %zu: analytic %.6g, finite difference %.6g", i, (double)g[i], fd);
        checked++;
    }
    assert_true(checked > (int)np / 2);
    free(g);
    free(g2);
    nn_model_free(m);
}

static void test_grad_all_regularizers_and_dropout(void **state)
{
    (void)state;
    nn_layer_spec l[4];
    l[0] = nn_layer_dense(4, NN_ACT_TANH);
    l[0].kernel_reg = (nn_regularizer){.l1 = 0.01, .l2 = 0.02};
    l[0].bias_reg = (nn_regularizer){.l2 = 0.05};
    l[0].activity_reg = (nn_regularizer){.l2 = 0.03};
    l[0].bias_init = nn_init_default(NN_INIT_RANDOM_UNIFORM);
    l[0].bias_init.a = -0.5;
    l[0].bias_init.b = 0.5;
    l[1] = nn_layer_dropout(0.4);
    l[2] = nn_layer_dense(4, NN_ACT_SOFTPLUS);
    l[2].kernel_reg = (nn_regularizer){.l1 = 0.02};
    l[3] = nn_layer_dense(3, NN_ACT_SOFTMAX);
    check_model(l, 4, NN_LOSS_SPARSE_CATEGORICAL_CE, 1);
}

static void test_grad_regression_no_bias(void **state)
{
    (void)state;
    nn_layer_spec l[3];
    l[0] = nn_layer_dense(4, NN_ACT_GELU);
    l[0].use_bias = 0;
    l[1] = nn_layer_dense(4, NN_ACT_SWISH);
    l[1].activity_reg = (nn_regularizer){.l2 = 0.01};
    l[2] = nn_layer_dense(2, NN_ACT_LINEAR);
    check_model(l, 3, NN_LOSS_HUBER, 2);
}

/* Every gradient is written, never added to what the buffer held: a buffer full
 * of NaN (reused heap memory can be) gives the same gradients as a zeroed one.
 * Covers each combination of kernel and bias regularizers. */
static void test_grad_ignores_buffer_contents(void **state)
{
    (void)state;
    nn_layer_spec l[3] = {nn_layer_dense(4, NN_ACT_RELU), nn_layer_dense(4, NN_ACT_TANH), nn_layer_dense(3, NN_ACT_SOFTMAX)};
    l[0].kernel_reg.l2 = 0.01;               /* kernel only */
    l[1].bias_reg.l1 = 0.01;                 /* bias only */
    l[2].kernel_reg.l1 = l[2].bias_reg.l2 = 0.01; /* both */
    nn_model_spec spec = {.input_dim = IN, .n_layers = 3, .layers = l};
    nn_error err = {0};
    nn_model *m = nn_model_new(&spec, 4, &err);
    size_t np = nn_model_param_count(m);
    float x[B * IN], y[B], *g0 = calloc(np, sizeof(float)), *g1 = malloc(np * sizeof(float));
    fill(x, B * IN, 3, 1.0);
    for (int i = 0; i < B; i++) y[i] = (float)(i % 3);
    for (size_t i = 0; i < np; i++) g1[i] = NAN;
    nn_loss_spec loss = nn_loss_default(NN_LOSS_SPARSE_CATEGORICAL_CE);
    nn_model_grad(m, &loss, x, y, B, g0, NULL, NULL, NULL, NULL);
    nn_model_grad(m, &loss, x, y, B, g1, NULL, NULL, NULL, NULL);
    assert_memory_equal(g0, g1, np * sizeof(float));
    free(g0);
    free(g1);
    nn_model_free(m);
}

/* Dropout is the identity at prediction; predict equals a hand-written forward. */
static void test_predict_matches_manual_forward(void **state)
{
    (void)state;
    nn_layer_spec l[3] = {nn_layer_dense(3, NN_ACT_RELU), nn_layer_dropout(0.5), nn_layer_dense(2, NN_ACT_SIGMOID)};
    nn_model_spec spec = {.input_dim = IN, .n_layers = 3, .layers = l};
    nn_error err = {0};
    nn_model *m = nn_model_new(&spec, 3, &err);
    float x[300 * IN], out[300 * 2], want[300 * 2];
    fill(x, 300 * IN, 9, 2.0);
    assert_int_equal(nn_model_predict(m, x, 300, out, &err), NN_OK);
    const float *p = nn_model_params_const(m);
    const nn_tensor_info *k0 = nn_model_tensor(m, 0), *b0 = nn_model_tensor(m, 1);
    const nn_tensor_info *k1 = nn_model_tensor(m, 2), *b1 = nn_model_tensor(m, 3);
    for (int r = 0; r < 300; r++) {
        float hid[3];
        for (int j = 0; j < 3; j++) {
            double s = p[b0->offset + j];
            for (int i = 0; i < IN; i++) s += x[r * IN + i] * p[k0->offset + i * 3 + j];
            hid[j] = s > 0 ? (float)s : 0;
        }
        for (int j = 0; j < 2; j++) {
            double s = p[b1->offset + j];
            for (int i = 0; i < 3; i++) s += hid[i] * p[k1->offset + i * 2 + j];
            want[r * 2 + j] = (float)(1 / (1 + exp(-s)));
        }
    }
    assert_close(out, want, 600, 1e-6, 1e-5, "predict");
    assert_string_equal(nn_model_layer(m, 0)->name, "dense");
    assert_string_equal(nn_model_layer(m, 1)->name, "dropout");
    assert_string_equal(nn_model_layer(m, 2)->name, "dense_1");
    nn_model_free(m);
}

/* Bad model specs are refused with a message, never built. */
static void test_bad_specs(void **state)
{
    (void)state;
    nn_error err = {0};
    nn_layer_spec l[2] = {nn_layer_dense(0, NN_ACT_RELU), nn_layer_dropout(1.0)};
    nn_model_spec spec = {.input_dim = IN, .n_layers = 1, .layers = l};
    assert_null(nn_model_new(&spec, 1, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);
    nn_error_clear(&err);
    spec.layers = l + 1;
    assert_null(nn_model_new(&spec, 1, &err));
    assert_non_null(strstr(err.message, "rate"));
    nn_error_clear(&err);
    nn_layer_spec same[2] = {nn_layer_dense(2, NN_ACT_RELU), nn_layer_dense(2, NN_ACT_RELU)};
    strcpy(same[0].name, "a");
    strcpy(same[1].name, "a");
    spec.layers = same;
    spec.n_layers = 2;
    assert_null(nn_model_new(&spec, 1, &err));
    assert_non_null(strstr(err.message, "'a'"));
    nn_error_clear(&err);
    /* A rate just below 1 that float32 rounds to 1 (the mask would keep nothing
     * and scale by infinity). */
    nn_layer_spec near_one = nn_layer_dropout(0.99999999);
    spec.layers = &near_one;
    spec.n_layers = 1;
    assert_null(nn_model_new(&spec, 1, &err));
    assert_non_null(strstr(err.message, "rate"));
    nn_error_clear(&err);
    /* Layers each under the per-layer cap whose total is not: refused, where the
     * total's byte count wrapped around to a tiny allocation. */
    nn_layer_spec big[8];
    for (int i = 0; i < 8; i++) {
        big[i] = nn_layer_dense(i % 2 ? 1 << 30 : 1 << 29, NN_ACT_LINEAR);
        big[i].use_bias = 0;
    }
    nn_model_spec huge = {.input_dim = 1 << 30, .n_layers = 8, .layers = big};
    assert_null(nn_model_new(&huge, 1, &err));
    assert_int_equal(err.code, NN_ERR_LIMIT);
}

/* Bias initializers see Keras' fans of a 1-D shape (units,): fan_in = fan_out =
 * units, not the kernel's. he_uniform's bound is then sqrt(6 / units). */
static void test_bias_initializer_fans(void **state)
{
    (void)state;
    nn_error err = {0};
    nn_layer_spec l = nn_layer_dense(100, NN_ACT_LINEAR);
    l.bias_init = nn_init_default(NN_INIT_HE_UNIFORM);
    nn_model_spec spec = {.input_dim = 1, .n_layers = 1, .layers = &l};
    nn_model *m = nn_model_new(&spec, 1, &err);
    assert_non_null(m);
    const float *b = nn_model_params(m) + 100; /* after the (1, 100) kernel */
    float max = 0;
    for (int i = 0; i < 100; i++) max = fabsf(b[i]) > max ? fabsf(b[i]) : max;
    assert_true(max <= sqrtf(6.0f / 100.0f));
    assert_true(max > 0.5f * sqrtf(6.0f / 100.0f)); /* 100 draws reach past half the bound */
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_all_regularizers_and_dropout),
        cmocka_unit_test(test_grad_regression_no_bias),
        cmocka_unit_test(test_grad_ignores_buffer_contents),
        cmocka_unit_test(test_predict_matches_manual_forward),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_bias_initializer_fans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
