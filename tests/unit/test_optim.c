/* test_optim.c — optimizers, clipping, schedules and optimizer state (core/optim.c).
 * Expected values are worked out by hand from the Keras 3 update rules (in double;
 * the core computes in float32, hence the tolerances). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_int.h"
#include "support.h"

/* A spec with Keras' defaults for kind, built here so the test depends on optim.c only. */
static nn_optimizer_spec spec_for(nn_optimizer_kind kind, double lr)
{
    nn_optimizer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.learning_rate = lr;
    s.schedule.kind = NN_SCHED_CONSTANT;
    s.beta_1 = 0.9;
    s.beta_2 = 0.999;
    s.epsilon = 1e-7;
    s.weight_decay = kind == NN_OPT_ADAMW ? 0.004 : 0;
    s.rho = 0.9;
    s.initial_accumulator = 0.1;
    return s;
}

/* Runs one scalar parameter w = 1 through the gradients g[0..n), recording w after
 * each step in out. */
static void run_scalar(const nn_optimizer_spec *s, const float *g, int n, float *out)
{
    nn_var var = {0, 1};
    nn_error err = {0};
    nn_optim *o = nn_optim_new(s, &var, 1, 1, &err);
    assert_non_null(o);
    float w = 1.0f;
    for (int i = 0; i < n; i++) {
        float gi = g[i];
        nn_optim_step(o, &w, &gi, NULL);
        out[i] = w;
    }
    assert_int_equal(nn_optim_iterations(o), n);
    nn_optim_free(o);
}

static void check_scalar(const nn_optimizer_spec *s, const float *g, const float *expect, int n,
                         const char *label)
{
    float got[8];
    assert_true(n <= 8);
    run_scalar(s, g, n, got);
    assert_close(got, expect, (size_t)n, 1e-7, 2e-6, label);
}

static void test_sgd(void **state)
{
    (void)state;
    float g[2] = {0.5f, 0.5f};
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 0.1);
    /* w -= lr*g */
    check_scalar(&s, g, (const float[]){0.95f, 0.90f}, 2, "sgd");
    /* m = 0.9m - 0.05: -0.05, -0.095; w += m */
    s.momentum = 0.9;
    check_scalar(&s, g, (const float[]){0.95f, 0.855f}, 2, "sgd momentum");
    /* nesterov: w += 0.9m - 0.05: -0.095, then -0.1355 */
    s.nesterov = 1;
    check_scalar(&s, g, (const float[]){0.905f, 0.7695f}, 2, "sgd nesterov");
}

static void test_adam(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_ADAM, 0.1);
    /* Step 1: m = 0.05, v = 2.5e-4, alpha = 0.1*sqrt(1e-3)/0.1;
     * w = 1 - 0.05*alpha/(sqrt(2.5e-4) + 1e-7) = 0.900000632 (epsilon outside the
     * bias correction: PyTorch's placement would give 0.900000063). */
    check_scalar(&s, (const float[]){0.5f, -0.25f}, (const float[]){0.900000632f, 0.873367079f}, 2,
                 "adam");
}

static void test_adam_amsgrad(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_ADAM, 0.1);
    s.beta_1 = 0.5;
    s.beta_2 = 0.5;
    float g[3] = {1.0f, 0.0f, 0.0f};
    /* With g = 1, 0, 0 v halves each step; amsgrad keeps vhat = 0.5 instead. */
    check_scalar(&s, g, (const float[]){0.900000014f, 0.842264999f, 0.804468562f}, 3,
                 "adam without amsgrad");
    s.amsgrad = 1;
    check_scalar(&s, g, (const float[]){0.900000014f, 0.859175191f, 0.84027697f}, 3,
                 "adam amsgrad");
}

/* Decoupled weight decay is every optimizer's in Keras 3 (BaseOptimizer); AdamW
 * only has it on by default. */
static void test_weight_decay(void **state)
{
    (void)state;
    /* A zero gradient leaves only the decay: w -= w*wd*lr. */
    float g[2] = {0.0f, 0.0f};
    nn_optimizer_spec s = spec_for(NN_OPT_ADAMW, 0.01);
    s.weight_decay = 0.1;
    check_scalar(&s, g, (const float[]){0.999f, 0.998001f}, 2, "adamw decay");
    for (int k = 0; k < NN_OPT_COUNT; k++) {
        s = spec_for((nn_optimizer_kind)k, 0.01);
        s.weight_decay = 0.1;
        check_scalar(&s, g, (const float[]){0.999f, 0.998001f}, 2, nn_optimizer_name(s.kind));
    }
    /* Before the update, with the step's learning rate: SGD from w = 1 with
     * g = 0.5, lr 0.1, wd 0.2: 1 - 0.02 = 0.98, then - 0.05. */
    s = spec_for(NN_OPT_SGD, 0.1);
    s.weight_decay = 0.2;
    check_scalar(&s, (const float[]){0.5f, 0.0f}, (const float[]){0.93f, 0.93f * 0.98f}, 2,
                 "sgd decay then step");
    /* Without it, Adam never decays. */
    s = spec_for(NN_OPT_ADAM, 0.01);
    check_scalar(&s, g, (const float[]){1.0f, 1.0f}, 2, "adam no decay");
}

static void test_rmsprop(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_RMSPROP, 0.01);
    /* v = 0.025; w -= 0.005/sqrt(0.025 + 1e-7) */
    check_scalar(&s, (const float[]){0.5f, 0.5f}, (const float[]){0.968377287f, 0.945435737f}, 2,
                 "rmsprop");
    /* centered: mg = 0.05, denominator 0.0225 + eps; momentum 0.5 carries the first
     * increment (0.0333) into the second step. */
    s.centered = 1;
    s.momentum = 0.5;
    check_scalar(&s, (const float[]){0.5f, -0.5f}, (const float[]){0.966666741f, 0.9729477f}, 2,
                 "rmsprop centered momentum");
}

static void test_adagrad(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_ADAGRAD, 0.1);
    /* acc = 0.1 + 0.25; w -= 0.05/sqrt(0.35 + 1e-7) */
    check_scalar(&s, (const float[]){0.5f, 0.5f}, (const float[]){0.915484587f, 0.85093487f}, 2,
                 "adagrad");
}

/* Two variables: A = [3, 4] (norm 5) and B = [0.3, 0.4] (norm 0.5); SGD with lr 1 from
 * zero weights, so the weights become minus the clipped gradients. */
static void clip_case(nn_optimizer_spec *s, const float *expect, const char *label)
{
    nn_var vars[2] = {{0, 2}, {2, 2}};
    nn_error err = {0};
    nn_optim *o = nn_optim_new(s, vars, 2, 4, &err);
    assert_non_null(o);
    float w[4] = {0, 0, 0, 0};
    float g[4] = {3.0f, -4.0f, 0.3f, 0.4f};
    nn_optim_step(o, w, g, NULL);
    float neg[4] = {-w[0], -w[1], -w[2], -w[3]};
    assert_close(neg, expect, 4, 1e-7, 1e-6, label);
    nn_optim_free(o);
}

static void test_clipping(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 1.0);
    clip_case(&s, (const float[]){3.0f, -4.0f, 0.3f, 0.4f}, "no clipping");
    /* Per variable: A is scaled to norm 1, B (norm 0.5) is left alone. */
    s.clipnorm = 1.0;
    clip_case(&s, (const float[]){0.6f, -0.8f, 0.3f, 0.4f}, "clipnorm");
    /* Global: everything scaled by 1/sqrt(25.25). */
    s.clipnorm = 0;
    s.global_clipnorm = 1.0;
    float k = 0.19900743804199783f;
    clip_case(&s, (const float[]){3 * k, -4 * k, 0.3f * k, 0.4f * k}, "global_clipnorm");
    /* A global norm under the threshold changes nothing. */
    s.global_clipnorm = 10.0;
    clip_case(&s, (const float[]){3.0f, -4.0f, 0.3f, 0.4f}, "global_clipnorm inactive");
    s.global_clipnorm = 0;
    s.clipvalue = 0.35;
    clip_case(&s, (const float[]){0.35f, -0.35f, 0.3f, 0.35f}, "clipvalue");
}

static void test_clipping_zero_gradient(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 1.0);
    nn_var var = {0, 3};
    float w[3] = {1, 2, 3}, g[3] = {0, 0, 0};
    s.clipnorm = 1.0;
    nn_optim *o = nn_optim_new(&s, &var, 1, 3, NULL);
    assert_non_null(o);
    nn_optim_step(o, w, g, NULL);
    assert_close(w, ((const float[]){1, 2, 3}), 3, 0, 0, "clipnorm of a zero gradient");
    nn_optim_free(o);
    s.clipnorm = 0;
    s.global_clipnorm = 1.0;
    o = nn_optim_new(&s, &var, 1, 3, NULL);
    assert_non_null(o);
    nn_optim_step(o, w, g, NULL);
    assert_close(w, ((const float[]){1, 2, 3}), 3, 0, 0, "global_clipnorm of a zero gradient");
    nn_optim_free(o);
}

/* Only the listed variables are touched. */
static void test_variables_subset(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_ADAM, 0.1);
    nn_var var = {1, 2};
    nn_optim *o = nn_optim_new(&s, &var, 1, 4, NULL);
    assert_non_null(o);
    float w[4] = {1, 1, 1, 1}, g[4] = {1, 1, 1, 1};
    nn_optim_step(o, w, g, NULL);
    assert_true(w[0] == 1.0f && w[3] == 1.0f);
    assert_true(w[1] < 1.0f && w[2] < 1.0f);
    nn_optim_free(o);
}

/* The learning rate at each iteration count, advanced with zero gradients. */
static void check_schedule(const nn_optimizer_spec *s, const int *at, const double *expect, int n,
                           const char *label)
{
    nn_var var = {0, 1};
    nn_optim *o = nn_optim_new(s, &var, 1, 1, NULL);
    assert_non_null(o);
    float got[8], want[8];
    float w = 0, g = 0;
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        while (nn_optim_iterations(o) < at[i]) {
            g = 0;
            nn_optim_step(o, &w, &g, NULL);
        }
        got[i] = (float)nn_optim_lr(o);
        want[i] = (float)expect[i];
    }
    assert_close(got, want, (size_t)n, 1e-9, 1e-6, label);
    nn_optim_free(o);
}

static void test_schedules(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 0.1);
    check_schedule(&s, (const int[]){0, 7}, (const double[]){0.1, 0.1}, 2, "constant");
    s.schedule.kind = NN_SCHED_EXPONENTIAL_DECAY;
    s.schedule.decay_steps = 2;
    s.schedule.decay_rate = 0.5;
    /* 0.1 * 0.5^(step/2) */
    check_schedule(&s, (const int[]){0, 1, 2, 3},
                   (const double[]){0.1, 0.07071067811865477, 0.05, 0.03535533905932738}, 4,
                   "exponential decay");
    s.schedule.staircase = 1;
    check_schedule(&s, (const int[]){0, 1, 2, 3}, (const double[]){0.1, 0.1, 0.05, 0.05}, 4,
                   "exponential decay staircase");
    s.learning_rate = 1.0;
    s.schedule.kind = NN_SCHED_COSINE_DECAY;
    s.schedule.decay_steps = 10;
    s.schedule.alpha = 0.1;
    /* 0.1 + 0.9 * 0.5 * (1 + cos(pi * min(step, 10) / 10)) */
    check_schedule(&s, (const int[]){0, 3, 5, 10, 20},
                   (const double[]){1.0, 0.8145033635316129, 0.55, 0.1, 0.1}, 5, "cosine decay");
    /* Keras' warmup: linear from lr0 (0 here) to warmup_target over warmup_steps,
     * then the cosine decay from warmup_target, the step counted from the warmup's
     * end and held at decay_steps + warmup_steps. */
    s.learning_rate = 0.0;
    s.schedule.warmup = 1;
    s.schedule.warmup_target = 1.0;
    s.schedule.warmup_steps = 4;
    check_schedule(&s, (const int[]){0, 2, 3, 4, 9, 14, 30},
                   (const double[]){0.0, 0.5, 0.75, 1.0, 0.55, 0.1, 0.1}, 7, "cosine warmup");
    /* From a non-zero lr0: 0.2 + (1 - 0.2) * step / 4 while warming up. */
    s.learning_rate = 0.2;
    check_schedule(&s, (const int[]){0, 1, 2, 4}, (const double[]){0.2, 0.4, 0.6, 1.0}, 4,
                   "cosine warmup from 0.2");
    /* No warmup steps: the decay starts from warmup_target at once. */
    s.schedule.warmup_steps = 0;
    check_schedule(&s, (const int[]){0, 5}, (const double[]){1.0, 0.55}, 2, "cosine warmup 0 steps");
}

/* The schedule is read before the iteration count increments: the first SGD step
 * uses lr0, the second lr0 * rate^(1/decay_steps). */
static void test_schedule_applies_before_increment(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 0.1);
    s.schedule.kind = NN_SCHED_EXPONENTIAL_DECAY;
    s.schedule.decay_steps = 1;
    s.schedule.decay_rate = 0.5;
    check_scalar(&s, (const float[]){1.0f, 1.0f, 1.0f}, (const float[]){0.9f, 0.85f, 0.825f}, 3,
                 "sgd with decay");
}

static nn_optim *stepped(const nn_optimizer_spec *s, size_t n, int steps, float *w)
{
    nn_var vars[2] = {{0, n / 2}, {n / 2, n - n / 2}};
    nn_optim *o = nn_optim_new(s, vars, 2, n, NULL);
    assert_non_null(o);
    float *g = malloc(n * sizeof *g);
    assert_non_null(g);
    for (int k = 0; k < steps; k++) {
        for (size_t i = 0; i < n; i++) g[i] = sinf((float)(i * 7 + (size_t)k * 3)) * 0.5f;
        nn_optim_step(o, w, g, NULL);
    }
    free(g);
    return o;
}

/* Save after some steps, load into a fresh optimizer: the next steps are identical. */
static void test_state_round_trip(void **state)
{
    (void)state;
    const nn_optimizer_kind kinds[5] = {NN_OPT_SGD, NN_OPT_ADAM, NN_OPT_ADAMW, NN_OPT_RMSPROP,
                                        NN_OPT_ADAGRAD};
    for (int k = 0; k < 5; k++) {
        nn_optimizer_spec s = spec_for(kinds[k], 0.05);
        s.momentum = 0.5;
        s.amsgrad = 1;
        s.centered = 1;
        s.schedule.kind = NN_SCHED_EXPONENTIAL_DECAY;
        s.schedule.decay_steps = 3;
        s.schedule.decay_rate = 0.7;
        enum { N = 37 };
        float w1[N], w2[N];
        for (int i = 0; i < N; i++) w1[i] = (float)i / N - 0.5f;
        nn_optim *a = stepped(&s, N, 4, w1);
        memcpy(w2, w1, sizeof w1);

        size_t len = nn_optim_state_bytes(a);
        void *buf = malloc(len);
        assert_non_null(buf);
        nn_optim_state_save(a, buf);
        nn_optim *b = stepped(&s, N, 0, w2); /* fresh */
        nn_error err = {0};
        assert_int_equal(nn_optim_state_load(b, buf, len, &err), NN_OK);
        assert_int_equal(nn_optim_iterations(b), 4);
        assert_true(nn_optim_lr(a) == nn_optim_lr(b));

        float g1[N], g2[N];
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++) g1[i] = g2[i] = cosf((float)(i + step));
            nn_optim_step(a, w1, g1, NULL);
            nn_optim_step(b, w2, g2, NULL);
        }
        assert_memory_equal(w1, w2, sizeof w1);
        free(buf);
        nn_optim_free(a);
        nn_optim_free(b);
    }
}

static void test_state_mismatch(void **state)
{
    (void)state;
    float w[10] = {0};
    nn_optimizer_spec adam = spec_for(NN_OPT_ADAM, 0.01);
    nn_optim *a = stepped(&adam, 10, 2, w);
    size_t len = nn_optim_state_bytes(a);
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    nn_optim_state_save(a, buf);

    nn_error err = {0};
    /* Another kind. */
    nn_optimizer_spec sgd = spec_for(NN_OPT_SGD, 0.01);
    sgd.momentum = 0.9;
    nn_optim *o = stepped(&sgd, 10, 0, w);
    assert_int_equal(nn_optim_state_load(o, buf, len, &err), NN_ERR_MISMATCH);
    assert_non_null(strstr(err.message, "sgd"));
    assert_int_equal(nn_optim_iterations(o), 0);
    nn_optim_free(o);

    /* Same kind, other slots (amsgrad adds one). */
    nn_error_clear(&err);
    nn_optimizer_spec ams = adam;
    ams.amsgrad = 1;
    o = stepped(&ams, 10, 0, w);
    assert_int_equal(nn_optim_state_load(o, buf, len, &err), NN_ERR_MISMATCH);
    assert_non_null(strstr(err.message, "slot"));
    nn_optim_free(o);

    /* Same kind, another parameter count. */
    nn_error_clear(&err);
    o = stepped(&adam, 8, 0, w);
    assert_int_equal(nn_optim_state_load(o, buf, len, &err), NN_ERR_MISMATCH);
    assert_non_null(strstr(err.message, "parameters"));
    nn_optim_free(o);

    /* Truncated, and a bad magic. */
    o = stepped(&adam, 10, 0, w);
    nn_error_clear(&err);
    assert_int_equal(nn_optim_state_load(o, buf, len - 1, &err), NN_ERR_PARSE);
    nn_error_clear(&err);
    assert_int_equal(nn_optim_state_load(o, buf, 10, &err), NN_ERR_PARSE);
    buf[0] ^= 0xff;
    nn_error_clear(&err);
    assert_int_equal(nn_optim_state_load(o, buf, len, &err), NN_ERR_PARSE);
    assert_int_equal(nn_optim_iterations(o), 0);
    buf[0] ^= 0xff;
    nn_error_clear(&err);
    assert_int_equal(nn_optim_state_load(o, buf, len, &err), NN_OK);
    assert_int_equal(nn_optim_iterations(o), 2);
    nn_optim_free(o);

    free(buf);
    nn_optim_free(a);
}

static void test_invalid_specs(void **state)
{
    (void)state;
    nn_var var = {0, 4};
    nn_error err = {0};
    nn_optimizer_spec s = spec_for(NN_OPT_ADAM, 0.01);
    s.clipnorm = 1;
    s.global_clipnorm = 1;
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);
    /* any two of the three clipping options, as Keras 3 refuses them */
    nn_error_clear(&err);
    s.global_clipnorm = 0;
    s.clipvalue = 0.5;
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_non_null(strstr(err.message, "only one of clipnorm, clipvalue and global_clipnorm"));

    nn_error_clear(&err);
    s = spec_for(NN_OPT_ADAM, -1);
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);

    nn_error_clear(&err);
    s = spec_for(NN_OPT_SGD, 0.1);
    s.momentum = 1.5;
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);

    nn_error_clear(&err);
    s = spec_for(NN_OPT_SGD, 0.1);
    s.schedule.kind = NN_SCHED_COSINE_DECAY;
    s.schedule.decay_steps = 0;
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);

    nn_error_clear(&err);
    s = spec_for(NN_OPT_SGD, 0.1);
    nn_var outside = {2, 3};
    assert_null(nn_optim_new(&s, &outside, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);

    nn_error_clear(&err);
    s = spec_for(NN_OPT_RMSPROP, NAN);
    assert_null(nn_optim_new(&s, &var, 1, 4, &err));
    assert_int_equal(err.code, NN_ERR_INVALID);
}

/* A NaN gradient propagates into the weights (the trainer detects it) rather than
 * being clipped away. */
static void test_nan_propagates(void **state)
{
    (void)state;
    nn_optimizer_spec s = spec_for(NN_OPT_SGD, 0.1);
    s.clipvalue = 1.0;
    nn_var var = {0, 2};
    nn_optim *o = nn_optim_new(&s, &var, 1, 2, NULL);
    assert_non_null(o);
    float w[2] = {1, 1}, g[2] = {NAN, 5};
    nn_optim_step(o, w, g, NULL);
    assert_true(isnan(w[0]));
    assert_true(w[1] == 0.9f);
    nn_optim_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_amsgrad),
        cmocka_unit_test(test_weight_decay),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_clipping_zero_gradient),
        cmocka_unit_test(test_variables_subset),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_schedule_applies_before_increment),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_mismatch),
        cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_nan_propagates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
