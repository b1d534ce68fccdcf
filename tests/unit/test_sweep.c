/*
 * test_sweep.c — server/sweep.c (the sweep document, grid expansion, seeded random
 * draws, JSON Pointers, ranking, status, the successive-halving rule) and the
 * sweep half of server/store.c against a real SQLite file: one-transaction
 * insert, the max_parallel cap inside the claim, cancel, trials' objectives and
 * rung values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "http.h"
#include "nn.h"
#include "spec.h"
#include "store.h"
#include "support.h"
#include "sweep.h"

/* ---------------------------------------------------------------- helpers */

static const char *const base_spec =
    "{\"data\": {\"train\": \"ds_x\"},"
    " \"model\": {\"input_shape\": [4], \"layers\": ["
    "   {\"type\": \"dense\", \"units\": 8, \"kernel_regularizer\": {\"l2\": 0}},"
    "   {\"type\": \"dropout\", \"rate\": 0},"
    "   {\"type\": \"dense\", \"units\": 3, \"activation\": \"softmax\"}]},"
    " \"compile\": {\"loss\": \"sparse_categorical_crossentropy\"},"
    " \"fit\": {\"epochs\": 4}}";

/* Parse a sweep whose "base" is base_spec and whose other members are `rest`
 * (JSON object text without braces). *errors receives the problems. */
static int parse(const char *rest, sweep_def *d, json_t **errors)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"base\": %s, %s}", base_spec, rest);
    json_error_t e;
    json_t *root = json_loads(text, 0, &e);
    if (!root) fail_msg("bad test JSON: %s: %s", e.text, text);
    *errors = json_array();
    int rc = sweep_parse(root, d, *errors);
    json_decref(root);
    return rc;
}

/* Is there a problem at `pointer` whose message contains `needle`? */
static int has_problem(const json_t *errors, const char *pointer, const char *needle)
{
    size_t i;
    json_t *p;
    json_array_foreach(errors, i, p) {
        const char *ptr = json_string_value(json_object_get(p, "pointer"));
        const char *msg = json_string_value(json_object_get(p, "message"));
        if (ptr && msg && strcmp(ptr, pointer) == 0 && strstr(msg, needle)) return 1;
    }
    char *all = json_dumps(errors, JSON_INDENT(1));
    fprintf(stderr, "no problem at %s with \"%s\" in %s\n", pointer, needle, all);
    free(all);
    return 0;
}

static double num_at(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* ---------------------------------------------------------------- grid */

static void test_grid_expansion(void **state)
{
    (void)state;
    sweep_def d;
    json_t *errors = NULL;
    const double l2[] = {0, 1e-4, 1e-3, 1e-2};
    const double rate[] = {0, 0.2, 0.5};
    assert_int_equal(parse("\"method\": \"grid\", \"parameters\": {"
                           "\"/model/layers/0/kernel_regularizer/l2\": [0, 1e-4, 1e-3, 1e-2],"
                           "\"/model/layers/1/rate\": [0, 0.2, 0.5]}",
                           &d, &errors),
                     SWEEP_OK);
    assert_int_equal(json_array_size(errors), 0);
    assert_int_equal(d.n_trials, 12);
    assert_string_equal(d.metric, "val_loss"); /* the default objective */
    assert_int_equal(d.mode_max, 0);
    int seen[4][3] = {{0}};
    for (int i = 0; i < 12; i++) {
        json_t *p = sweep_trial_params(&d, i);
        assert_non_null(p);
        assert_int_equal(json_object_size(p), 2);
        /* itertools.product order: the first parameter varies slowest */
        assert_true(num_at(p, "/model/layers/0/kernel_regularizer/l2") == l2[i / 3]);
        assert_true(num_at(p, "/model/layers/1/rate") == rate[i % 3]);
        seen[i / 3][i % 3]++;
        json_t *spec = sweep_trial_spec(&d, p);
        assert_non_null(spec);
        json_t *layers = json_object_get(json_object_get(spec, "model"), "layers");
        const json_t *reg = json_object_get(json_array_get(layers, 0), "kernel_regularizer");
        assert_true(num_at(reg, "l2") == l2[i / 3]);
        assert_true(num_at(json_array_get(layers, 1), "rate") == rate[i % 3]);
        /* the base is not modified */
        const json_t *base_rate = json_object_get(
            json_array_get(json_object_get(json_object_get(d.base, "model"), "layers"), 1), "rate");
        assert_true(json_number_value(base_rate) == 0);
        json_decref(spec);
        json_decref(p);
    }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++) assert_int_equal(seen[a][b], 1);
    assert_null(sweep_trial_params(&d, 12));
    sweep_def_free(&d);
    json_decref(errors);
}

/* A pointer's last token may add a member; a whole object may be swept. */
static void test_grid_new_member_and_object_values(void **state)
{
    (void)state;
    sweep_def d;
    json_t *errors = NULL;
    assert_int_equal(parse("\"method\": \"grid\", \"parameters\": {"
                           "\"/model/layers/0/activation\": [\"relu\", \"tanh\"],"
                           "\"/compile/optimizer\": [{\"name\": \"adam\"}, \"sgd\"]}",
                           &d, &errors),
                     SWEEP_OK);
    assert_int_equal(d.n_trials, 4);
    json_t *p = sweep_trial_params(&d, 2);
    json_t *spec = sweep_trial_spec(&d, p);
    json_t *layer0 = json_array_get(json_object_get(json_object_get(spec, "model"), "layers"), 0);
    assert_string_equal(json_string_value(json_object_get(layer0, "activation")), "tanh");
    const json_t *opt = json_object_get(json_object_get(spec, "compile"), "optimizer");
    assert_string_equal(json_string_value(json_object_get(opt, "name")), "adam");
    json_decref(spec);
    json_decref(p);
    sweep_def_free(&d);
    json_decref(errors);
}

/* ---------------------------------------------------------------- random */

static void test_random_reproducible_and_in_bounds(void **state)
{
    (void)state;
    const char *req = "\"method\": \"random\", \"n_trials\": 200, \"seed\": 7, \"parameters\": {"
                      "\"/model/layers/0/kernel_regularizer/l2\": "
                      "  {\"min\": 1e-5, \"max\": 1e-1, \"scale\": \"log\"},"
                      "\"/model/layers/1/rate\": {\"min\": 0, \"max\": 0.5},"
                      "\"/model/layers/0/units\": {\"min\": 4, \"max\": 64, \"scale\": \"log\"},"
                      "\"/fit/batch_size\": [16, 32, 64]}";
    sweep_def a, b, c;
    json_t *ea = NULL, *eb = NULL, *ec = NULL;
    assert_int_equal(parse(req, &a, &ea), SWEEP_OK);
    assert_int_equal(parse(req, &b, &eb), SWEEP_OK);
    char other[1024];
    snprintf(other, sizeof other, "%s", req);
    memcpy(strstr(other, "\"seed\": 7"), "\"seed\": 8", 9);
    assert_int_equal(parse(other, &c, &ec), SWEEP_OK);
    assert_int_equal(a.n_trials, 200);
    int differs = 0, low_decade = 0, high_decade = 0, units_small = 0, batch_seen[3] = {0};
    for (int i = 0; i < a.n_trials; i++) {
        json_t *pa = sweep_trial_params(&a, i), *pb = sweep_trial_params(&b, i),
               *pc = sweep_trial_params(&c, i);
        assert_true(json_equal(pa, pb)); /* same seed, same draws */
        differs += !json_equal(pa, pc);
        double l2 = num_at(pa, "/model/layers/0/kernel_regularizer/l2");
        assert_true(l2 >= 1e-5 && l2 <= 1e-1);
        low_decade += l2 < 1e-4;
        high_decade += l2 > 1e-2;
        double rate = num_at(pa, "/model/layers/1/rate");
        assert_true(rate >= 0 && rate <= 0.5);
        const json_t *units = json_object_get(pa, "/model/layers/0/units");
        assert_true(json_is_integer(units)); /* integer bounds give integers */
        assert_true(json_integer_value(units) >= 4 && json_integer_value(units) <= 64);
        units_small += json_integer_value(units) < 16;
        json_int_t bs = json_integer_value(json_object_get(pa, "/fit/batch_size"));
        assert_true(bs == 16 || bs == 32 || bs == 64);
        batch_seen[bs == 16 ? 0 : bs == 32 ? 1 : 2]++;
        json_decref(pa);
        json_decref(pb);
        json_decref(pc);
    }
    assert_true(differs > 190); /* another seed, other draws */
    /* log-uniform over 4 decades puts about a quarter in each: a linear draw
     * would put ~0.01% below 1e-4 */
    assert_true(low_decade > 25 && low_decade < 80);
    assert_true(high_decade > 25 && high_decade < 80);
    /* log-uniform over [4, 64]: half of the mass lies below 16 */
    assert_true(units_small > 70);
    for (int k = 0; k < 3; k++) assert_true(batch_seen[k] > 30);
    sweep_def_free(&a);
    sweep_def_free(&b);
    sweep_def_free(&c);
    json_decref(ea);
    json_decref(eb);
    json_decref(ec);
}

/* ---------------------------------------------------------------- bad requests */

typedef struct bad_case {
    const char *rest;    /* the request's members besides "base" */
    const char *pointer; /* a problem expected here */
    const char *needle;  /* ... whose message contains this */
} bad_case;

static void test_bad_requests(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"\"method\": \"grid\", \"parameters\": {\"/model/layers/7/rate\": [0.1]}",
         "/parameters/~1model~1layers~17~1rate", "is an array of 3 items"},
        {"\"method\": \"grid\", \"parameters\": {\"/model/nope/x\": [1]}",
         "/parameters/~1model~1nope~1x", "has no member \"nope\""},
        {"\"method\": \"grid\", \"parameters\": {\"model/layers\": [1]}",
         "/parameters/model~1layers", "starting with \"/\""},
        {"\"method\": \"grid\", \"parameters\": {\"/model/la~2yers\": [1]}",
         "/parameters/~1model~1la~02yers", "~"},
        {"\"method\": \"grid\", \"parameters\": {\"/name/x\": [1]}", "/parameters/~1name~1x",
         "does not resolve"},
        {"\"method\": \"grid\", \"parameters\": {\"/model/layers/01/rate\": [1]}",
         "/parameters/~1model~1layers~101~1rate", "not one of its indices"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": []}", "/parameters/~1fit~1epochs",
         "1 to"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": {\"min\": 1, \"max\": 3}}",
         "/parameters/~1fit~1epochs", "list of values"},
        {"\"method\": \"grid\", \"parameters\": {}", "/parameters", "one or more"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"n_trials\": 3",
         "/n_trials", "random"},
        {"\"method\": \"sobol\", \"parameters\": {\"/fit/epochs\": [1]}", "/method", "grid"},
        {"\"method\": \"random\", \"parameters\": {\"/fit/epochs\": [1]}", "/n_trials", "n_trials"},
        {"\"method\": \"random\", \"n_trials\": 5, \"parameters\": {\"/model/layers/1/rate\": "
         "{\"min\": 0, \"max\": 0.5, \"scale\": \"log\"}}",
         "/parameters/~1model~1layers~11~1rate/min", "min > 0"},
        {"\"method\": \"random\", \"n_trials\": 5, \"parameters\": {\"/model/layers/1/rate\": "
         "{\"min\": 0.5, \"max\": 0.1}}",
         "/parameters/~1model~1layers~11~1rate/max", ">= min"},
        {"\"method\": \"random\", \"n_trials\": 5, \"parameters\": {\"/fit/seed\": "
         "{\"min\": -1e308, \"max\": 1e308}}",
         "/parameters/~1fit~1seed/max", "max - min must be a finite number"},
        {"\"method\": \"random\", \"n_trials\": 5, \"parameters\": {\"/model/layers/1/rate\": "
         "{\"min\": 0, \"max\": 0.5, \"step\": 1}}",
         "/parameters/~1model~1layers~11~1rate/step", "unknown field"},
        {"\"method\": \"random\", \"n_trials\": 5, \"parameters\": {\"/model/layers/1/rate\": "
         "{\"min\": 0, \"max\": 0.5, \"scale\": \"exp\"}}",
         "/parameters/~1model~1layers~11~1rate/scale", "linear"},
        {"\"method\": \"random\", \"n_trials\": 1001, \"parameters\": {\"/fit/epochs\": [1]}",
         "/n_trials", "1000"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"objective\": "
         "{\"metric\": \"val loss\"}",
         "/objective/metric", "metric name"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"objective\": "
         "{\"metric\": \"val_loss\", \"mode\": \"lowest\"}",
         "/objective/mode", "min"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"max_parallel\": 0",
         "/max_parallel", ">= 1"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"early_stop\": "
         "{\"method\": \"hyperband\"}",
         "/early_stop/method", "halving"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"early_stop\": "
         "{\"method\": \"halving\", \"eta\": 1}",
         "/early_stop/eta", "from 2"},
        {"\"method\": \"grid\", \"parameters\": {\"/fit/epochs\": [1]}, \"colour\": 1", "/colour",
         "unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweep_def d;
        json_t *errors = NULL;
        int rc = parse(cases[i].rest, &d, &errors);
        if (rc != SWEEP_INVALID) fail_msg("case %zu accepted: %s", i, cases[i].rest);
        if (!has_problem(errors, cases[i].pointer, cases[i].needle))
            fail_msg("case %zu: %s", i, cases[i].rest);
        assert_null(d.base); /* nothing left to free */
        json_decref(errors);
    }
    /* The empty pointer's message does not start with the (empty) key and a space. */
    sweep_def de;
    json_t *errs = NULL;
    assert_int_equal(parse("\"method\": \"grid\", \"parameters\": {\"\": [1]}", &de, &errs),
                     SWEEP_INVALID);
    const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "pointer")),
                        "/parameters/");
    assert_non_null(msg);
    assert_true(strncmp(msg, "must be a JSON Pointer", 22) == 0);
    json_decref(errs);
    /* No base at all, and a grid over the limit. */
    json_t *root = json_loads("{\"method\": \"grid\", \"parameters\": {\"/a\": [1]}}", 0, NULL);
    json_t *errors = json_array();
    sweep_def d;
    assert_int_equal(sweep_parse(root, &d, errors), SWEEP_INVALID);
    assert_true(has_problem(errors, "/base", "required"));
    json_decref(root);
    json_decref(errors);
    char big[2048];
    snprintf(big, sizeof big, "\"method\": \"grid\", \"parameters\": {"
                              "\"/fit/epochs\": [1,2,3,4,5,6,7,8,9,10,11],"
                              "\"/fit/batch_size\": [1,2,3,4,5,6,7,8,9,10,11],"
                              "\"/model/layers/1/rate\": [0,0.1,0.2,0.3,0.4,0.45,0.5,0.6,0.7]}");
    assert_int_equal(parse(big, &d, &errors), SWEEP_INVALID);
    assert_true(has_problem(errors, "/parameters", "1089 combinations"));
    json_decref(errors);
}

static void test_pointer_set(void **state)
{
    (void)state;
    char why[300];
    json_t *doc = json_loads("{\"a/b\": {\"m~n\": [1, 2]}, \"\": 5}", 0, NULL);
    json_t *v = json_integer(9);
    assert_int_equal(sweep_pointer_set(doc, "/a~1b/m~0n/1", v, why, sizeof why), 0);
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_object_get(doc, "a/b"), "m~n"), 1)),
                     9);
    assert_int_equal(sweep_pointer_set(doc, "/", v, why, sizeof why), 0); /* the "" member */
    assert_int_equal(json_integer_value(json_object_get(doc, "")), 9);
    assert_int_equal(sweep_pointer_set(doc, "/a~1b/m~0n/2", v, why, sizeof why), -1);
    assert_int_equal(sweep_pointer_set(doc, "/a~1b/m~0n/-", v, why, sizeof why), -1);
    assert_int_equal(sweep_pointer_set(doc, "", v, why, sizeof why), -1);
    char esc[64];
    sweep_param_pointer("/a~b/c", esc, sizeof esc);
    assert_string_equal(esc, "/parameters/~1a~0b~1c");
    json_decref(v);
    json_decref(doc);
}

/* ---------------------------------------------------------------- ranking, status */

static void test_rank(void **state)
{
    (void)state;
    const double obj[] = {0.5, 0.2, NAN, 0.2, 0.9, 0.1};
    const int has[] = {1, 1, 1, 1, 1, 0};
    size_t order[6];
    sweep_rank(obj, has, 6, 0, order);
    const size_t want_min[] = {1, 3, 0, 4, 2, 5}; /* ties by index; NaN and none last */
    for (int i = 0; i < 6; i++) assert_int_equal(order[i], want_min[i]);
    sweep_rank(obj, has, 6, 1, order);
    const size_t want_max[] = {4, 0, 1, 3, 2, 5};
    for (int i = 0; i < 6; i++) assert_int_equal(order[i], want_max[i]);
}

static void test_status(void **state)
{
    (void)state;
    const int64_t all_queued[5] = {3, 0, 0, 0, 0}, started[5] = {2, 0, 1, 0, 0},
                  running[5] = {0, 1, 0, 0, 0}, done[5] = {0, 0, 1, 2, 1},
                  all_failed[5] = {0, 0, 0, 3, 0}, halted[5] = {0, 0, 1, 0, 5};
    assert_string_equal(sweep_status(all_queued, 0), "queued");
    assert_string_equal(sweep_status(started, 0), "running");
    assert_string_equal(sweep_status(running, 1), "running");
    assert_string_equal(sweep_status(done, 0), "succeeded");
    assert_string_equal(sweep_status(done, 1), "cancelled");
    assert_string_equal(sweep_status(all_failed, 0), "failed");
    assert_string_equal(sweep_status(halted, 0), "succeeded");
}

/* ---------------------------------------------------------------- halving */

static void test_halving_rule(void **state)
{
    (void)state;
    /* rungs r, r*eta, r*eta^2 ... strictly below the planned epochs */
    int rungs = 0;
    for (int e = 1; e <= 20; e++) {
        int is = sweep_halving_is_rung(e, 20, 2, 2);
        assert_int_equal(is, e == 2 || e == 4 || e == 8 || e == 16);
        rungs += is;
    }
    assert_int_equal(rungs, 4);
    assert_false(sweep_halving_is_rung(3, 3, 1, 3)); /* the last epoch is no rung */
    assert_true(sweep_halving_is_rung(1, 10, 1, 3));
    assert_true(sweep_halving_is_rung(9, 10, 1, 3));
    assert_false(sweep_halving_is_rung(6, 10, 1, 3));

    int rank = 0, keep = 0;
    const double two[] = {0.3, 0.5};
    /* fewer than eta trials at the rung: everyone goes on */
    assert_true(sweep_halving_keep(0.5, two, 2, 3, 0, &rank, &keep));
    assert_int_equal(rank, 2);
    const double six[] = {0.9, 0.3, 0.5, 0.4, 0.8, 0.7};
    /* 6 trials, eta 3: the best 2 (0.3, 0.4) go on */
    assert_true(sweep_halving_keep(0.3, six, 6, 3, 0, &rank, &keep));
    assert_int_equal(keep, 2);
    assert_true(sweep_halving_keep(0.4, six, 6, 3, 0, &rank, &keep));
    assert_int_equal(rank, 2);
    assert_false(sweep_halving_keep(0.5, six, 6, 3, 0, &rank, &keep));
    assert_int_equal(rank, 3);
    /* mode max: 0.9 and 0.8 go on */
    assert_true(sweep_halving_keep(0.8, six, 6, 3, 1, NULL, NULL));
    assert_false(sweep_halving_keep(0.7, six, 6, 3, 1, NULL, NULL));
    /* ties share the better rank */
    const double tie[] = {0.2, 0.2, 0.2, 0.9};
    assert_true(sweep_halving_keep(0.2, tie, 4, 2, 0, &rank, &keep));
    assert_int_equal(rank, 1);
}

/* ---------------------------------------------------------------- the store */

typedef struct fx {
    char dir[256];
    char path[300];
    store *s;
    char ds_id[STORE_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char err[512];
    const char *tmp = getenv("TMPDIR");
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "%s/fitd-sweep-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/fitd.db", f->dir);
    f->s = store_open(f->path, err, sizeof err);
    if (!f->s || store_migrate(f->s) != STORE_OK) return -1;
    nn_dataset ds = {.n = 4, .x_width = 2, .y_width = 1};
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, y[4] = {0, 1, 0, 1};
    ds.x = x;
    ds.y = y;
    nn_dataset_describe(&ds);
    store_dataset_meta m = {0};
    snprintf(m.name, sizeof m.name, "tiny");
    if (store_dataset_insert(f->s, &m, &ds) != STORE_OK) return -1;
    snprintf(f->ds_id, sizeof f->ds_id, "%s", m.id);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[320];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    store_close(f->s);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Insert a sweep of n trials on f->ds_id (train = `train` when not NULL). */
static store_rc insert_sweep(fx *f, int n, int max_parallel, const char *train, store_sweep *out)
{
    store_job_new jobs[8];
    const char *params[8];
    char texts[8][64];
    for (int i = 0; i < n; i++) {
        jobs[i] = (store_job_new){.spec_json = "{}", .train_dataset_id = f->ds_id, .epochs = 4};
        if (train && i == n - 1) jobs[i].train_dataset_id = train;
        snprintf(texts[i], sizeof texts[i], "{\"/fit/seed\":%d}", i);
        params[i] = texts[i];
    }
    store_sweep_new in = {.request_json = "{\"method\":\"grid\"}", .metric = "val_loss",
                          .max_parallel = max_parallel, .halving_min_epochs = 1,
                          .halving_eta = 2, .n_trials = (size_t)n, .trials = jobs,
                          .trial_params = params};
    return store_sweep_insert(f->s, &in, out);
}

static int64_t count_jobs(fx *f)
{
    int64_t q = 0, r = 0;
    store_job_count(f->s, STORE_JOB_QUEUED, &q);
    store_job_count(f->s, STORE_JOB_RUNNING, &r);
    return q + r;
}

static void test_store_insert_is_one_transaction(void **state)
{
    fx *f = *state;
    store_sweep w = {0};
    /* the last trial names a missing dataset: nothing at all is stored */
    assert_int_equal(insert_sweep(f, 4, 0, "ds_missing", &w), STORE_NOT_FOUND);
    assert_int_equal(count_jobs(f), 0);
    store_sweep *items = NULL;
    size_t n = 9;
    char next[STORE_CURSOR_MAX];
    assert_int_equal(store_sweep_list(f->s, NULL, &items, &n, next), STORE_OK);
    assert_int_equal(n, 0);
    /* and a good one stores the sweep and its 4 queued trials */
    assert_int_equal(insert_sweep(f, 4, 0, NULL, &w), STORE_OK);
    assert_memory_equal(w.id, "swp_", 4);
    assert_int_equal(w.n_trials, 4);
    assert_int_equal(w.counts[STORE_JOB_QUEUED], 4);
    assert_int_equal(count_jobs(f), 4);
    store_trial *t = NULL;
    assert_int_equal(store_sweep_trials(f->s, &w, &t, &n), STORE_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"/fit/seed\":%zu}", i);
        assert_int_equal(t[i].index, (int)i);
        assert_string_equal(t[i].params_json, want);
        assert_false(t[i].has_objective);
    }
    store_trial_list_free(t, n);
    store_sweep_free(&w);
}

static void test_store_claim_honours_max_parallel(void **state)
{
    fx *f = *state;
    store_sweep w = {0};
    store_job a = {0}, b = {0}, c = {0}, lone = {0};
    assert_int_equal(insert_sweep(f, 3, 1, NULL, &w), STORE_OK);
    /* a job queued after the sweep */
    store_job_new in = {.spec_json = "{}", .train_dataset_id = f->ds_id, .epochs = 2};
    assert_int_equal(store_job_insert(f->s, &in, &lone, NULL), STORE_OK);
    assert_int_equal(store_job_claim(f->s, &a), STORE_OK); /* trial 0 */
    /* trial 1 must wait for trial 0: the claim skips it and takes the later job */
    assert_int_equal(store_job_claim(f->s, &b), STORE_OK);
    assert_string_equal(b.id, lone.id);
    assert_int_equal(store_job_claim(f->s, &c), STORE_NOT_FOUND);
    assert_int_equal(store_job_finish(f->s, a.id, STORE_JOB_SUCCEEDED, NULL, NULL, 0, NULL),
                     STORE_OK);
    store_job_free(&c);
    assert_int_equal(store_job_claim(f->s, &c), STORE_OK); /* now trial 1 */
    store_trial *t = NULL;
    size_t n = 0;
    assert_int_equal(store_sweep_trials(f->s, &w, &t, &n), STORE_OK);
    assert_string_equal(t[0].job_id, a.id);
    assert_string_equal(t[1].job_id, c.id);
    store_trial_list_free(t, n);
    store_job_free(&a);
    store_job_free(&b);
    store_job_free(&c);
    store_job_free(&lone);
    store_sweep_free(&w);
}

static void commit(fx *f, const char *job_id, int epoch, double val_loss)
{
    char rec[128];
    snprintf(rec, sizeof rec, "{\"epoch\":%d,\"loss\":1.0,\"val_loss\":%.3f}", epoch, val_loss);
    store_epoch e = {.epoch = epoch, .record_json = rec, .batches = 1};
    assert_int_equal(store_epoch_commit(f->s, job_id, &e), STORE_OK);
}

static void test_store_objective_rungs_and_cancel(void **state)
{
    fx *f = *state;
    store_sweep w = {0};
    store_job j[3];
    memset(j, 0, sizeof j);
    assert_int_equal(insert_sweep(f, 3, 0, NULL, &w), STORE_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(store_job_claim(f->s, &j[i]), STORE_OK);
    commit(f, j[0].id, 1, 0.9);
    commit(f, j[0].id, 2, 0.4);
    commit(f, j[0].id, 3, 0.6);
    commit(f, j[1].id, 1, 0.7);
    store_job_sweep cfg;
    assert_int_equal(store_job_sweep_get(f->s, j[1].id, &cfg), STORE_OK);
    assert_string_equal(cfg.sweep_id, w.id);
    assert_string_equal(cfg.metric, "val_loss");
    assert_int_equal(cfg.halving_min_epochs, 1);
    assert_int_equal(cfg.halving_eta, 2);
    double *v = NULL;
    int n = 0;
    assert_int_equal(store_sweep_rung_values(f->s, w.id, 1, "val_loss", "", &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_true((v[0] == 0.9 && v[1] == 0.7) || (v[0] == 0.7 && v[1] == 0.9));
    v[n] = 0; /* room for the caller's own value */
    free(v);
    assert_int_equal(store_sweep_rung_values(f->s, w.id, 1, "val_loss", j[1].id, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(v[0] == 0.9);
    free(v);
    /* the rule through the store: at epoch 1 trial 1 (0.7) ranks 1 of 2, eta 2 keeps 1
     * (its own committed row is not counted twice) */
    char why[300] = "";
    assert_int_equal(sweep_halving_stop(f->s, &cfg, j[1].id, 1, 4, "{\"val_loss\":0.7}", why,
                                        sizeof why),
                     0);
    /* trial 2 before its commit, as the worker asks: 0.8 ranks 2 of 3 */
    assert_int_equal(store_job_sweep_get(f->s, j[2].id, &cfg), STORE_OK);
    assert_int_equal(sweep_halving_stop(f->s, &cfg, j[2].id, 1, 4, "{\"val_loss\":0.8}", why,
                                        sizeof why),
                     1);
    assert_non_null(strstr(why, "ranked 2 of the 3"));
    /* the verdict goes in with the epoch: cancel flag and reason in one transaction */
    store_epoch halted = {.epoch = 1, .record_json = "{\"epoch\":1,\"val_loss\":0.8}",
                          .batches = 1, .halted = why};
    assert_int_equal(store_epoch_commit(f->s, j[2].id, &halted), STORE_OK);
    int requested = 0;
    assert_int_equal(store_job_cancel_requested(f->s, j[2].id, &requested), STORE_OK);
    assert_true(requested);
    store_job got = {0};
    assert_int_equal(store_job_get(f->s, j[2].id, &got), STORE_OK);
    assert_string_equal(got.error, why);
    assert_int_equal(got.epochs_done, 1);
    store_job_free(&got);
    /* epoch 3 is no rung with min_epochs 1, eta 2 */
    assert_int_equal(sweep_halving_stop(f->s, &cfg, j[2].id, 3, 4, "{\"val_loss\":9}", why,
                                        sizeof why),
                     0);

    store_trial *t = NULL;
    size_t nt = 0;
    assert_int_equal(store_sweep_trials(f->s, &w, &t, &nt), STORE_OK);
    assert_true(t[0].has_objective);
    assert_true(fabs(t[0].objective - 0.4) < 1e-12); /* the best epoch, not the last */
    assert_int_equal(t[0].best_epoch, 2);
    store_trial_list_free(t, nt);
    w.mode_max = 1;
    assert_int_equal(store_sweep_trials(f->s, &w, &t, &nt), STORE_OK);
    assert_true(fabs(t[0].objective - 0.9) < 1e-12);
    assert_int_equal(t[0].best_epoch, 1);
    store_trial_list_free(t, nt);

    /* cancel: the running trials are flagged and returned */
    store_idbuf *running = NULL;
    size_t nr = 0;
    assert_int_equal(store_sweep_cancel(f->s, w.id, &running, &nr), STORE_OK);
    assert_int_equal(nr, 3);
    free(running);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            store_job_finish(f->s, j[i].id, STORE_JOB_CANCELLED, "cancelled", NULL, 0, NULL),
            STORE_OK);
        store_job_free(&j[i]);
    }
    assert_int_equal(store_sweep_cancel(f->s, w.id, &running, &nr), STORE_CONFLICT);
    assert_int_equal(store_sweep_cancel(f->s, "swp_nope", &running, &nr), STORE_NOT_FOUND);
    store_sweep_free(&w);
    assert_int_equal(store_sweep_get(f->s, cfg.sweep_id, &w), STORE_OK);
    assert_int_equal(w.cancel_requested, 1);
    assert_int_equal(w.counts[STORE_JOB_CANCELLED], 3);
    assert_string_equal(sweep_status(w.counts, w.cancel_requested), "cancelled");
    store_sweep_free(&w);
    /* a lone job is no trial */
    store_job lone = {0};
    store_job_new in = {.spec_json = "{}", .train_dataset_id = f->ds_id, .epochs = 2};
    assert_int_equal(store_job_insert(f->s, &in, &lone, NULL), STORE_OK);
    assert_int_equal(store_job_sweep_get(f->s, lone.id, &cfg), STORE_NOT_FOUND);
    store_job_free(&lone);
}

/* Deleting a sweep takes its trial jobs and their records with it, or nothing
 * while a trial is unfinished. */
static void test_store_delete(void **state)
{
    fx *f = *state;
    store_sweep w = {0};
    store_job j[2], g = {0};
    memset(j, 0, sizeof j);
    assert_int_equal(insert_sweep(f, 2, 0, NULL, &w), STORE_OK);
    assert_int_equal(store_job_claim(f->s, &j[0]), STORE_OK);
    commit(f, j[0].id, 1, 0.5);
    assert_int_equal(store_sweep_delete(f->s, w.id), STORE_CONFLICT); /* running and queued */
    assert_int_equal(store_job_finish(f->s, j[0].id, STORE_JOB_SUCCEEDED, NULL, NULL, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_sweep_delete(f->s, w.id), STORE_CONFLICT); /* one still queued */
    assert_int_equal(store_job_get(f->s, j[0].id, &g), STORE_OK);
    store_job_free(&g);
    assert_int_equal(store_job_claim(f->s, &j[1]), STORE_OK);
    assert_int_equal(store_job_finish(f->s, j[1].id, STORE_JOB_FAILED, "x", NULL, 0, NULL), STORE_OK);
    assert_int_equal(store_sweep_delete(f->s, w.id), STORE_OK);
    store_sweep got;
    assert_int_equal(store_sweep_get(f->s, w.id, &got), STORE_NOT_FOUND);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_job_get(f->s, j[i].id, &g), STORE_NOT_FOUND);
        assert_int_equal(store_job_metrics(f->s, j[i].id, 0, NULL, NULL), STORE_NOT_FOUND);
        store_job_free(&j[i]);
    }
    assert_int_equal(store_sweep_delete(f->s, w.id), STORE_NOT_FOUND);
    store_sweep_free(&w);
}

/* Claim the oldest queued job and finish it as succeeded. */
static void finish_next(fx *f)
{
    store_job j = {0};
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_SUCCEEDED, NULL, NULL, 0, NULL), STORE_OK);
    store_job_free(&j);
}

/* Retention: a sweep's trials go all together, and the sweep with them; a sweep
 * with a trial that may not go yet (here queued) keeps every trial, finished ones
 * too (pruning those alone would change its ranking untraced). */
static void test_store_prune_empty_sweeps(void **state)
{
    fx *f = *state;
    store_sweep done_w = {0}, live_w = {0}, got;
    assert_int_equal(insert_sweep(f, 2, 0, NULL, &done_w), STORE_OK);
    finish_next(f);
    finish_next(f);
    assert_int_equal(insert_sweep(f, 2, 0, NULL, &live_w), STORE_OK);
    finish_next(f); /* one of live_w's two trials */
    int64_t n = 0;
    assert_int_equal(store_jobs_prune(f->s, 4102444800.0 /* 2100 */, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_sweep_get(f->s, done_w.id, &got), STORE_NOT_FOUND);
    assert_int_equal(store_sweep_get(f->s, live_w.id, &got), STORE_OK);
    assert_int_equal(got.counts[STORE_JOB_QUEUED], 1);
    assert_int_equal(got.counts[STORE_JOB_SUCCEEDED], 1);
    store_sweep_free(&got);
    store_sweep_free(&done_w);
    store_sweep_free(&live_w);
}

static void test_store_list_pages(void **state)
{
    fx *f = *state;
    char ids[5][STORE_ID_MAX];
    for (int i = 0; i < 5; i++) {
        store_sweep w = {0};
        assert_int_equal(insert_sweep(f, 1, 0, NULL, &w), STORE_OK);
        snprintf(ids[i], sizeof ids[i], "%s", w.id);
        store_sweep_free(&w);
    }
    store_sweep *items = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX] = "";
    store_list_query q = {.limit = 3};
    assert_int_equal(store_sweep_list(f->s, &q, &items, &n, next), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].id, ids[4]); /* newest first */
    assert_string_equal(items[2].id, ids[2]);
    assert_true(next[0]);
    store_sweep_list_free(items, n);
    q.cursor = next;
    char next2[STORE_CURSOR_MAX] = "";
    assert_int_equal(store_sweep_list(f->s, &q, &items, &n, next2), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[1].id, ids[0]);
    assert_string_equal(next2, "");
    store_sweep_list_free(items, n);
    q.cursor = "garbage!";
    assert_int_equal(store_sweep_list(f->s, &q, &items, &n, next2), STORE_INVALID);
    q.cursor = NULL;
    q.tenant = "someone-else";
    assert_int_equal(store_sweep_list(f->s, &q, &items, &n, next2), STORE_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    json_object_seed(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_expansion),
        cmocka_unit_test(test_grid_new_member_and_object_values),
        cmocka_unit_test(test_random_reproducible_and_in_bounds),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_pointer_set),
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_halving_rule),
        cmocka_unit_test_setup_teardown(test_store_insert_is_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim_honours_max_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_objective_rungs_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_prune_empty_sweeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_list_pages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
