/* test_golden.c — the core against golden values from an independent implementation
 * (tests/fixtures/golden/golden.json, written by gen_golden.py with PyTorch from the
 * Keras formulas).
 *
 * Model cases: the model built from the case's layers, its weights overwritten with
 * the case's, one nn_model_grad: outputs, loss (data + penalties), penalties and every
 * gradient. Optimizer cases: 5 full-batch steps of nn_model_grad + nn_optim_step:
 * the loss and learning rate at each step and the final weights.
 * One cmocka test per case, so every mismatching case is reported. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "nn_int.h"
#include "support.h"

/* float32 results against float32 references: relative 1e-5 with a small floor. */
#define RTOL 1e-5
#define ATOL_OUT 1e-6
#define ATOL_GRAD 2e-6
#define ATOL_WEIGHT 2e-6

static json_t *golden; /* the parsed fixture, read-only while the tests run */

/* What the running test owns, released by teardown even when an assertion jumps
 * out of the test. */
static struct {
    void *mem[64];
    int n_mem;
    nn_model *model;
    nn_optim *optim;
} owned;

static void *keep(void *p)
{
    assert_non_null(p);
    if (owned.n_mem == (int)(sizeof owned.mem / sizeof owned.mem[0])) {
        free(p);
        fail_msg("too many allocations in one test");
    }
    owned.mem[owned.n_mem++] = p;
    return p;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < owned.n_mem; i++) free(owned.mem[i]);
    nn_optim_free(owned.optim);
    nn_model_free(owned.model);
    memset(&owned, 0, sizeof owned);
    return 0;
}

/* ---------------------------------------------------------------- JSON helpers */

static double num(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) fail_msg("golden.json: \"%s\" is not a number", key);
    return json_number_value(v);
}

static int flag(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_true(v);
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) fail_msg("golden.json: \"%s\" is not a string", key);
    return s;
}

/* Append the numbers of a (nested) array, row-major, to out[*n], up to cap. */
static void flatten_into(const json_t *v, float *out, size_t *n, size_t cap)
{
    if (json_is_number(v)) {
        if (*n >= cap) fail_msg("golden.json: array larger than expected");
        out[(*n)++] = (float)json_number_value(v);
        return;
    }
    if (!json_is_array(v)) fail_msg("golden.json: expected a number or an array");
    for (size_t i = 0; i < json_array_size(v); i++) flatten_into(json_array_get(v, i), out, n, cap);
}

/* A malloc'ed flat copy of the array under key; *n receives the count. */
static float *flat(const json_t *obj, const char *key, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    size_t cap = 4096;
    float *out = keep(malloc(cap * sizeof *out));
    if (!v) fail_msg("golden.json: no \"%s\"", key);
    *n = 0;
    flatten_into(v, out, n, cap);
    return out;
}

/* ---------------------------------------------------------------- names */

static nn_activation act_from(const char *name)
{
    static const char *const names[NN_ACT_COUNT] = {
        "linear", "relu", "sigmoid", "tanh", "softmax", "elu",
        "selu",   "gelu", "leaky_relu", "softplus", "swish"};
    for (int i = 0; i < NN_ACT_COUNT; i++)
        if (strcmp(names[i], name) == 0) return (nn_activation)i;
    fail_msg("unknown activation %s", name);
    return NN_ACT_COUNT;
}

static nn_loss_spec loss_from(const json_t *j)
{
    static const char *const names[NN_LOSS_COUNT] = {
        "mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
        "sparse_categorical_crossentropy"};
    nn_loss_spec l;
    memset(&l, 0, sizeof l);
    l.kind = NN_LOSS_COUNT;
    for (int i = 0; i < NN_LOSS_COUNT; i++)
        if (strcmp(names[i], str(j, "name")) == 0) l.kind = (nn_loss_kind)i;
    if (l.kind == NN_LOSS_COUNT) fail_msg("unknown loss %s", str(j, "name"));
    l.from_logits = flag(j, "from_logits");
    l.label_smoothing = num(j, "label_smoothing");
    l.delta = num(j, "delta");
    return l;
}

static nn_regularizer reg_from(const json_t *layer, const char *key)
{
    nn_regularizer r = {0, 0};
    json_t *j = json_object_get(layer, key);
    if (j) {
        r.l1 = num(j, "l1");
        r.l2 = num(j, "l2");
    }
    return r;
}

static nn_optimizer_spec optimizer_from(const json_t *j)
{
    static const char *const names[NN_OPT_COUNT] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    nn_optimizer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = NN_OPT_COUNT;
    for (int i = 0; i < NN_OPT_COUNT; i++)
        if (strcmp(names[i], str(j, "name")) == 0) s.kind = (nn_optimizer_kind)i;
    if (s.kind == NN_OPT_COUNT) fail_msg("unknown optimizer %s", str(j, "name"));
    s.learning_rate = num(j, "learning_rate");
    s.beta_1 = num(j, "beta_1");
    s.beta_2 = num(j, "beta_2");
    s.epsilon = num(j, "epsilon");
    s.amsgrad = flag(j, "amsgrad");
    s.weight_decay = num(j, "weight_decay");
    s.momentum = num(j, "momentum");
    s.nesterov = flag(j, "nesterov");
    s.rho = num(j, "rho");
    s.centered = flag(j, "centered");
    s.initial_accumulator = num(j, "initial_accumulator");
    s.clipnorm = num(j, "clipnorm");
    s.clipvalue = num(j, "clipvalue");
    s.global_clipnorm = num(j, "global_clipnorm");
    json_t *sch = json_object_get(j, "schedule");
    const char *kind = str(sch, "name");
    if (strcmp(kind, "constant") == 0) {
        s.schedule.kind = NN_SCHED_CONSTANT;
    } else if (strcmp(kind, "exponential_decay") == 0) {
        s.schedule.kind = NN_SCHED_EXPONENTIAL_DECAY;
        s.schedule.decay_steps = (int64_t)num(sch, "decay_steps");
        s.schedule.decay_rate = num(sch, "decay_rate");
        s.schedule.staircase = flag(sch, "staircase");
    } else if (strcmp(kind, "cosine_decay") == 0) {
        s.schedule.kind = NN_SCHED_COSINE_DECAY;
        s.schedule.decay_steps = (int64_t)num(sch, "decay_steps");
        s.schedule.alpha = num(sch, "alpha");
    } else {
        fail_msg("unknown schedule %s", kind);
    }
    return s;
}

/* ---------------------------------------------------------------- model setup */

/* The model of a case ("input_dim", "layers"), with the case's weights loaded. */
static nn_model *model_from(const json_t *c)
{
    const json_t *layers = json_object_get(c, "layers");
    int n_layers = (int)json_array_size(layers);
    nn_layer_spec specs[8];
    assert_true(n_layers > 0 && n_layers <= 8);
    for (int i = 0; i < n_layers; i++) {
        const json_t *l = json_array_get(layers, (size_t)i);
        nn_layer_spec *s = &specs[i];
        memset(s, 0, sizeof *s);
        s->kind = NN_LAYER_DENSE;
        s->units = (int)num(l, "units");
        s->activation = act_from(str(l, "activation"));
        s->use_bias = flag(l, "use_bias");
        s->kernel_init.kind = NN_INIT_GLOROT_UNIFORM;
        s->bias_init.kind = NN_INIT_ZEROS;
        s->kernel_reg = reg_from(l, "kernel_regularizer");
        s->bias_reg = reg_from(l, "bias_regularizer");
        s->activity_reg = reg_from(l, "activity_regularizer");
    }
    nn_model_spec ms = {(int)num(c, "input_dim"), n_layers, specs};
    nn_error err = {0};
    nn_model *m = nn_model_new(&ms, 1, &err);
    if (!m) fail_msg("nn_model_new: %s", err.message);
    owned.model = m;

    /* Weights by tensor name: "<layer>/kernel" [in, out] and "<layer>/bias". */
    float *params = nn_model_params(m);
    int n_set = 0;
    for (int i = 0; i < n_layers; i++) {
        const json_t *l = json_array_get(layers, (size_t)i);
        for (int t = 0; t < nn_model_tensor_count(m); t++) {
            const nn_tensor_info *ti = nn_model_tensor(m, t);
            char want[NN_NAME_MAX + 16];
            for (int b = 0; b < 2; b++) {
                snprintf(want, sizeof want, "%s/%s", nn_model_layer(m, i)->name,
                         b ? "bias" : "kernel");
                if (strcmp(ti->name, want) != 0) continue;
                size_t n = 0;
                float *v = flat(l, b ? "bias" : "kernel", &n);
                if (n != ti->count)
                    fail_msg("%s: %zu values in golden.json, %zu in the model", want, n,
                             ti->count);
                if (!b) assert_int_equal(json_array_size(json_object_get(l, "kernel")),
                                         (size_t)ti->shape[0]);
                memcpy(params + ti->offset, v, n * sizeof *v);
                n_set++;
            }
        }
    }
    assert_int_equal(n_set, nn_model_tensor_count(m));
    return m;
}

/* Compare the gradient (or weight) buffer against per-layer {"kernel", "bias"}. */
static void check_tensors(nn_model *m, const json_t *per_layer, const float *got, double atol,
                          const char *case_name, const char *what)
{
    for (int i = 0; i < nn_model_layer_count(m); i++) {
        const json_t *l = json_array_get(per_layer, (size_t)i);
        for (int t = 0; t < nn_model_tensor_count(m); t++) {
            const nn_tensor_info *ti = nn_model_tensor(m, t);
            for (int b = 0; b < 2; b++) {
                char want[NN_NAME_MAX + 16], label[256];
                snprintf(want, sizeof want, "%s/%s", nn_model_layer(m, i)->name,
                         b ? "bias" : "kernel");
                if (strcmp(ti->name, want) != 0) continue;
                size_t n = 0;
                float *v = flat(l, b ? "bias" : "kernel", &n);
                assert_int_equal(n, ti->count);
                snprintf(label, sizeof label, "%s: %s of %s", case_name, what, want);
                assert_close(got + ti->offset, v, n, atol, RTOL, label);
            }
        }
    }
}

static void check_scalar(double got, double want, double atol, const char *case_name,
                         const char *what)
{
    float g = (float)got, w = (float)want;
    char label[256];
    snprintf(label, sizeof label, "%s: %s", case_name, what);
    assert_close(&g, &w, 1, atol, RTOL, label);
}

/* ---------------------------------------------------------------- the tests */

static void test_model_case(void **state)
{
    const json_t *c = *state;
    const char *name = str(c, "name");
    nn_model *m = model_from(c);
    nn_loss_spec loss = loss_from(json_object_get(c, "loss"));
    size_t nx = 0, ny = 0, nout = 0;
    float *x = flat(c, "x", &nx);
    float *y = flat(c, "y", &ny);
    float *want_out = flat(c, "outputs", &nout);
    int B = (int)json_array_size(json_object_get(c, "x"));
    assert_int_equal(nx, (size_t)B * (size_t)nn_model_input_dim(m));
    assert_int_equal(nout, (size_t)B * (size_t)nn_model_output_dim(m));

    float *grads = keep(calloc(nn_model_param_count(m), sizeof *grads));
    float *pred = keep(calloc(nout, sizeof *pred));
    double reg = -1;
    nn_status st = NN_OK;
    double l = nn_model_grad(m, &loss, x, y, B, grads, NULL, &reg, pred, &st);
    assert_int_equal(st, NN_OK);

    char label[256];
    snprintf(label, sizeof label, "%s: outputs", name);
    assert_close(pred, want_out, nout, ATOL_OUT, RTOL, label);
    check_scalar(l, num(c, "loss_value"), ATOL_OUT, name, "loss");
    check_scalar(reg, num(c, "reg_loss"), ATOL_OUT, name, "regularization loss");
    check_tensors(m, json_object_get(c, "grads"), grads, ATOL_GRAD, name, "gradient");
}

static void test_optimizer_case(void **state)
{
    const json_t *c = *state;
    const json_t *mc = json_object_get(golden, "optimizer_model");
    const char *name = str(c, "name");
    nn_model *m = model_from(mc);
    nn_loss_spec loss = loss_from(json_object_get(mc, "loss"));
    nn_optimizer_spec spec = optimizer_from(json_object_get(c, "optimizer"));
    size_t nx = 0, ny = 0, nl = 0, nlr = 0;
    float *x = flat(mc, "x", &nx);
    float *y = flat(mc, "y", &ny);
    float *want_loss = flat(c, "losses", &nl);
    float *want_lr = flat(c, "learning_rates", &nlr);
    int B = (int)json_array_size(json_object_get(mc, "x"));
    int steps = (int)num(c, "steps");
    assert_int_equal(nl, (size_t)steps);
    assert_int_equal(nlr, (size_t)steps);

    int n_vars = nn_model_tensor_count(m);
    nn_var *vars = keep(calloc((size_t)n_vars, sizeof *vars));
    for (int t = 0; t < n_vars; t++) {
        vars[t].offset = nn_model_tensor(m, t)->offset;
        vars[t].count = nn_model_tensor(m, t)->count;
    }
    size_t n_params = nn_model_param_count(m);
    nn_error err = {0};
    nn_optim *o = nn_optim_new(&spec, vars, n_vars, n_params, &err);
    if (!o) fail_msg("%s: nn_optim_new: %s", name, err.message);
    owned.optim = o;
    float *grads = keep(calloc(n_params, sizeof *grads));
    float got_loss[16], got_lr[16];
    assert_true(steps <= 16);
    for (int k = 0; k < steps; k++) {
        nn_status st = NN_OK;
        got_loss[k] = (float)nn_model_grad(m, &loss, x, y, B, grads, NULL, NULL, NULL, &st);
        assert_int_equal(st, NN_OK);
        got_lr[k] = (float)nn_optim_lr(o);
        nn_optim_step(o, nn_model_params(m), grads, NULL);
    }
    assert_int_equal(nn_optim_iterations(o), steps);

    char label[256];
    snprintf(label, sizeof label, "%s: learning rate per step", name);
    assert_close(got_lr, want_lr, (size_t)steps, 1e-9, 1e-6, label);
    snprintf(label, sizeof label, "%s: loss per step", name);
    assert_close(got_loss, want_loss, (size_t)steps, ATOL_OUT, RTOL, label);
    check_tensors(m, json_object_get(c, "final"), nn_model_params(m), ATOL_WEIGHT, name,
                  "weights after the steps");
}

/* Guards against an empty or truncated fixture passing vacuously. */
static void test_fixture_complete(void **state)
{
    (void)state;
    assert_true(json_array_size(json_object_get(golden, "model_cases")) >= 14);
    assert_true(json_array_size(json_object_get(golden, "optimizer_cases")) >= 10);
}

int main(void)
{
    json_error_t jerr;
    golden = json_load_file(fixture_path("golden/golden.json"), 0, &jerr);
    if (!golden) {
        fprintf(stderr, "cannot read %s: %s (line %d)\n", fixture_path("golden/golden.json"),
                jerr.text, jerr.line);
        return 1;
    }
    const json_t *mcases = json_object_get(golden, "model_cases");
    const json_t *ocases = json_object_get(golden, "optimizer_cases");
    size_t n_model = json_array_size(mcases), n_opt = json_array_size(ocases);
    size_t n = 1 + n_model + n_opt;
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    char(*names)[96] = calloc(n, sizeof *names);
    if (!tests || !names) {
        free(tests);
        free(names);
        json_decref(golden);
        return 1;
    }
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_fixture_complete);
    for (size_t i = 0; i < n_model + n_opt; i++) {
        int is_model = i < n_model;
        json_t *c = is_model ? json_array_get(mcases, i) : json_array_get(ocases, i - n_model);
        const char *cname = json_string_value(json_object_get(c, "name"));
        snprintf(names[i + 1], sizeof names[i + 1], "%s %s", is_model ? "model" : "optimizer",
                 cname ? cname : "?");
        tests[i + 1].name = names[i + 1];
        tests[i + 1].test_func = is_model ? test_model_case : test_optimizer_case;
        tests[i + 1].initial_state = c;
        tests[i + 1].teardown_func = teardown;
    }
    int rc = _cmocka_run_group_tests("golden", tests, n, NULL, NULL);
    free(names);
    free(tests);
    json_decref(golden);
    return rc;
}
