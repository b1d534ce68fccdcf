/*
 * test_par.c — server/par.c, the threads a job's math is split over: every part
 * runs exactly once per dispatch, on distinct threads at once, across many
 * dispatches back to back and after the helpers fell asleep; a pool that is not
 * there (n < 2) runs serially; and a model trained through a pool equals, bit for
 * bit, the same model trained again through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "nn.h"
#include "par.h"

#define MAX_PARTS 4

typedef struct count_job {
    atomic_int calls[MAX_PARTS];
    atomic_int inside, most_inside;
    pthread_t who[MAX_PARTS];
    int spin; /* busy work per part, so parts overlap */
} count_job;

static void count_task(void *arg, int i)
{
    count_job *j = arg;
    int now = atomic_fetch_add(&j->inside, 1) + 1;
    int seen = atomic_load(&j->most_inside);
    while (now > seen && !atomic_compare_exchange_weak(&j->most_inside, &seen, now)) {
    }
    j->who[i] = pthread_self();
    volatile double x = 0;
    for (int k = 0; k < j->spin; k++) x = x + k;
    atomic_fetch_add(&j->calls[i], 1);
    atomic_fetch_sub(&j->inside, 1);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_every_part_once(void **state)
{
    (void)state;
    for (int n = 2; n <= MAX_PARTS; n++) {
        par_pool *p = par_start(n);
        assert_non_null(p);
        nn_parallel r = par_runner(p);
        assert_int_equal(r.n, n);
        count_job j;
        memset(&j, 0, sizeof j);
        const int rounds = 20000;
        for (int k = 0; k < rounds; k++) {
            r.run(r.ctx, count_task, &j);
            if (k == rounds / 2) nap_ms(50); /* the helpers go to sleep, then wake */
        }
        for (int i = 0; i < n; i++) assert_int_equal(atomic_load(&j.calls[i]), rounds);
        /* Distinct threads: part 0 is the caller, the others are not. */
        assert_true(pthread_equal(j.who[0], pthread_self()));
        for (int i = 1; i < n; i++) assert_false(pthread_equal(j.who[i], pthread_self()));
        /* With enough work per part they overlap at least once. */
        memset(&j, 0, sizeof j);
        j.spin = 200000;
        for (int k = 0; k < 200 && atomic_load(&j.most_inside) < 2; k++) r.run(r.ctx, count_task, &j);
        assert_true(atomic_load(&j.most_inside) >= 2);
        par_stop(p);
    }
}

static void test_no_pool_is_serial(void **state)
{
    (void)state;
    assert_null(par_start(1));
    nn_parallel r = par_runner(NULL);
    assert_int_equal(r.n, 1);
    assert_null(r.run);
    par_stop(NULL);
}

/* An MLP wide enough for every split the core makes (nn_par_parts: layers and
 * updates past NN_PAR_MIN_WORK): split forward (relu, tanh), split backward with
 * an L2 kernel fill, Adam's split update; the 5-unit softmax head stays serial. */
static void train_once(par_pool *p, float *out, size_t *n_out)
{
    enum { N = 300, IN = 256, C = 5 };
    static float x[N * IN], y[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < IN; k++) x[i * IN + k] = (float)((i * 31 + k * 17) % 97) / 97.0f;
        y[i] = (float)(i % C);
    }
    nn_dataset ds = {.n = N, .x_width = IN, .y_width = 1, .x = x, .y = y, .y_integer = 1,
                     .n_classes = C};
    nn_layer_spec layers[4] = {nn_layer_dense(512, NN_ACT_RELU), nn_layer_dropout(0.2),
                               nn_layer_dense(256, NN_ACT_TANH), nn_layer_dense(C, NN_ACT_SOFTMAX)};
    layers[0].kernel_reg.l2 = 1e-3;
    layers[2].kernel_reg.l2 = 1e-3;
    nn_model_spec spec = {.input_dim = IN, .n_layers = 4, .layers = layers};
    nn_compile_spec c;
    memset(&c, 0, sizeof c);
    c.optimizer = nn_optimizer_default(NN_OPT_ADAM);
    c.loss = nn_loss_default(NN_LOSS_SPARSE_CATEGORICAL_CE);
    nn_fit_spec fit = nn_fit_default();
    fit.epochs = 3;
    fit.batch_size = 64;
    fit.seed = 7;
    nn_error err = {0};
    nn_model *m = nn_model_new(&spec, 7, &err);
    assert_non_null(m);
    nn_parallel r = par_runner(p);
    nn_model_set_parallel(m, &r);
    nn_trainer *t = nn_trainer_new(m, &c, &fit, &ds, NULL, &err);
    assert_non_null(t);
    assert_int_equal(nn_trainer_run(t, NULL, &err), NN_OK);
    *n_out = nn_model_param_count(m);
    memcpy(out, nn_model_params(m), *n_out * sizeof(float));
    nn_trainer_free(t);
    nn_model_free(m);
}

static void test_training_deterministic(void **state)
{
    (void)state;
    static float a[300000], b[300000], serial[300000];
    size_t na, nb, ns;
    par_pool *p = par_start(2);
    assert_non_null(p);
    train_once(p, a, &na);
    train_once(p, b, &nb);
    par_stop(p);
    train_once(NULL, serial, &ns);
    assert_int_equal(na, nb);
    assert_int_equal(na, ns);
    assert_memory_equal(a, b, na * sizeof(float)); /* the same parts: the same bits */
    double worst = 0;
    for (size_t i = 0; i < na; i++) {
        double d = (double)a[i] - (double)serial[i];
        if (d < 0) d = -d;
        if (d > worst) worst = d;
    }
    /* Split products may add in another order than one product; the model is
     * otherwise the same. */
    assert_true(worst < 1e-4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_part_once),
        cmocka_unit_test(test_no_pool_is_serial),
        cmocka_unit_test(test_training_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
