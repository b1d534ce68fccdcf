/*
 * test_keras.c — server/keras (Keras model.to_json() documents <-> native model)
 * through spec_job_parse, as POST /v1/jobs sees them.
 *
 * Every fixture in tests/fixtures/keras/ (one per version family) describes the
 * same model; each must parse to the model of expected_native.json (penalties
 * compared as float32, since tf.keras writes them float32-widened). Unsupported
 * attributes are a data table: a change applied to a fixture, and the JSON
 * Pointer (into the Keras document) the problem must name. Export -> re-import
 * must give back the same model.
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

#include "keras.h"
#include "spec.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static void print_problems(const spec_problems *pr)
{
    for (int i = 0; i < pr->n; i++)
        print_message("  problem %d: '%s': %s\n", i, pr->items[i].pointer, pr->items[i].message);
}

/* Parse {"model": model, "compile": {...}} (model borrowed). */
static int parse_model_doc(json_t *model, spec_job *job, spec_problems *pr)
{
    json_t *root = json_pack("{s:O, s:{s:s}}", "model", model, "compile", "loss",
                             "sparse_categorical_crossentropy");
    assert_non_null(root);
    int rc = spec_job_parse(root, NULL, SPEC_DATA_OPTIONAL, job, pr);
    json_decref(root);
    return rc;
}

static void parse_model_ok(json_t *model, spec_job *job)
{
    spec_problems pr;
    int rc = parse_model_doc(model, job, &pr);
    if (rc != SPEC_OK) print_problems(&pr);
    assert_int_equal(rc, SPEC_OK);
}

static int same_f32(double a, double b)
{
    return (float)a == (float)b;
}

/* The two models are the same; float32 == for penalties when `f32`. */
static void assert_same_model(const nn_model_spec *a, const nn_model_spec *b, int f32)
{
    assert_int_equal(a->input_dim, b->input_dim);
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const nn_layer_spec *x = &a->layers[i], *y = &b->layers[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->name, y->name);
        if (x->kind == NN_LAYER_DROPOUT) {
            assert_true(x->rate == y->rate);
            assert_int_equal(x->has_seed, y->has_seed);
            assert_int_equal(x->seed, y->seed);
            continue;
        }
        assert_int_equal(x->units, y->units);
        assert_int_equal(x->activation, y->activation);
        assert_int_equal(x->use_bias, y->use_bias);
        const nn_init_spec *ia[] = {&x->kernel_init, &x->bias_init};
        const nn_init_spec *ib[] = {&y->kernel_init, &y->bias_init};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(ia[k]->kind, ib[k]->kind);
            assert_true(ia[k]->a == ib[k]->a && ia[k]->b == ib[k]->b);
            if (ia[k]->kind != NN_INIT_ZEROS && ia[k]->kind != NN_INIT_ONES) {
                assert_int_equal(ia[k]->has_seed, ib[k]->has_seed);
                assert_int_equal(ia[k]->seed, ib[k]->seed);
            }
        }
        const nn_regularizer *ra[] = {&x->kernel_reg, &x->bias_reg, &x->activity_reg};
        const nn_regularizer *rb[] = {&y->kernel_reg, &y->bias_reg, &y->activity_reg};
        for (int k = 0; k < 3; k++) {
            if (f32) {
                assert_true(same_f32(ra[k]->l1, rb[k]->l1));
                assert_true(same_f32(ra[k]->l2, rb[k]->l2));
            } else {
                assert_true(ra[k]->l1 == rb[k]->l1);
                assert_true(ra[k]->l2 == rb[k]->l2);
            }
        }
    }
}

/* Set the value at a JSON Pointer of `doc` (the parent must exist; "-" is not
 * supported). NULL value removes the member. */
static void pointer_set(json_t *doc, const char *ptr, json_t *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ptr);
    json_t *cur = doc;
    char *seg = buf + 1, *slash;
    while ((slash = strchr(seg, '/')) != NULL) {
        *slash = 0;
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(seg, NULL, 10))
                                 : json_object_get(cur, seg);
        assert_non_null(cur);
        seg = slash + 1;
    }
    if (json_is_array(cur)) {
        assert_non_null(value);
        assert_int_equal(json_array_set_new(cur, strtoul(seg, NULL, 10), value), 0);
    } else if (value) {
        assert_int_equal(json_object_set_new(cur, seg, value), 0);
    } else {
        assert_int_equal(json_object_del(cur, seg), 0);
    }
}

/* keras_fixture(name) with its first layer (the InputLayer) removed. */
static json_t *fixture_without_input_layer(const char *name)
{
    json_t *doc = keras_fixture(name);
    json_t *layers = json_object_get(json_object_get(doc, "config"), "layers");
    assert_int_equal(json_array_remove(layers, 0), 0);
    return doc;
}

/* ------------------------------------------------------------ import */

static void test_detect(void **state)
{
    json_t *native = keras_fixture("expected_native.json");
    json_t *k3 = keras_fixture("keras_3.4-3.12.json");
    assert_int_equal(keras_is_document(native), 0);
    assert_int_equal(keras_is_document(k3), 1);
    assert_int_equal(keras_is_document(NULL), 0);
    json_decref(native);
    json_decref(k3);
}

/* Each version family's document gives the expected native model. */
static void test_fixtures_convert(void **state)
{
    spec_job want = {0};
    json_t *native = keras_fixture("expected_native.json");
    parse_model_ok(native, &want);
    for (size_t i = 0; i < N_KERAS_FIXTURES; i++) {
        spec_job got = {0};
        json_t *doc = keras_fixture(keras_fixtures[i]);
        print_message("fixture %s\n", keras_fixtures[i]);
        parse_model_ok(doc, &got);
        assert_same_model(&got.model, &want.model, 1);
        /* Keras 3 keeps the penalties as written: exactly the native values. */
        if (strncmp(keras_fixtures[i], "keras_3", 7) == 0) assert_same_model(&got.model, &want.model, 0);
        spec_job_free(&got);
        json_decref(doc);
    }
    /* tf.keras' float32-widened values are kept as written. */
    spec_job got = {0};
    json_t *doc = keras_fixture("tf_keras_2.12.json");
    parse_model_ok(doc, &got);
    assert_true(got.model.layers[0].kernel_reg.l2 == 0.0010000000474974513);
    spec_job_free(&got);
    json_decref(doc);
    spec_job_free(&want);
    json_decref(native);
}

/* The tf.keras form without an InputLayer: the first layer's batch_input_shape. */
static void test_input_from_first_layer(void **state)
{
    spec_job got = {0};
    json_t *doc = fixture_without_input_layer("tf_keras_2.12.json");
    pointer_set(doc, "/config/layers/0/config/batch_input_shape", json_pack("[n,i]", 64));
    parse_model_ok(doc, &got);
    assert_int_equal(got.model.input_dim, 64);
    assert_int_equal(got.model.n_layers, 3);
    spec_job_free(&got);
    json_decref(doc);
}

/* Keras 3 without an InputLayer entry: build_input_shape, then build_config. */
static void test_input_from_build_shapes(void **state)
{
    spec_job got = {0};
    json_t *doc = fixture_without_input_layer("keras_3.4-3.12.json");
    parse_model_ok(doc, &got);
    assert_int_equal(got.model.input_dim, 64);
    spec_job_free(&got);
    pointer_set(doc, "/config/build_input_shape", NULL);
    parse_model_ok(doc, &got);
    assert_int_equal(got.model.input_dim, 64);
    spec_job_free(&got);
    json_decref(doc);
}

/* What fitd cannot honour: (fixture, pointer in the document, new value as JSON
 * text or NULL to delete, the problem's pointer, a substring of its message). */
typedef struct bad_case {
    const char *fixture;
    const char *at;
    const char *value;
    const char *pointer;
    const char *message;
} bad_case;

#define K34 "keras_3.4-3.12.json"
#define K313 "keras_3.13.json"
#define TF212 "tf_keras_2.12.json"
#define TF2IS "tf_keras_2.x_input_shape.json"
#define OLD "keras_2.0_bare_list.json"
#define L(i) "/config/layers/" #i "/config"
#define ML(i) "/model/config/layers/" #i "/config"

static const bad_case bad_cases[] = {
    {K34, L(2) "/noise_shape", "[null, 1]", ML(2) "/noise_shape", "noise_shape"},
    {TF212, L(2) "/noise_shape", "[1, 32]", ML(2) "/noise_shape", "noise_shape"},
    {K34, "/config/layers/1/class_name", "\"Conv2D\"", "/model/config/layers/1/class_name",
     "Conv2D"},
    {TF212, "/config/layers/2/class_name", "\"BatchNormalization\"",
     "/model/config/layers/2/class_name", "BatchNormalization"},
    {K34, "/class_name", "\"Functional\"", "/model/class_name", "Sequential"},
    {K34, L(1) "/dtype/config/name", "\"mixed_float16\"", ML(1) "/dtype/config/name",
     "float32"},
    {K34, "/config/dtype/config/name", "\"bfloat16\"", "/model/config/dtype/config/name",
     "float32"},
    {TF212, L(3) "/dtype", "\"float64\"", ML(3) "/dtype", "float64"},
    {K34, L(0) "/dtype", "\"float16\"", ML(0) "/dtype", "float16"},
    {K34, L(1) "/kernel_constraint",
     "{\"module\": \"keras.constraints\", \"class_name\": \"MaxNorm\", \"config\": "
     "{\"max_value\": 2, \"axis\": 0}, \"registered_name\": null}",
     ML(1) "/kernel_constraint", "constraint"},
    {TF212, L(3) "/bias_constraint", "{\"class_name\": \"NonNeg\", \"config\": {}}",
     ML(3) "/bias_constraint", "constraint"},
    {K34, L(1) "/trainable", "false", ML(1) "/trainable", "trainable"},
    {K34, "/config/trainable", "false", "/model/config/trainable", "trainable"},
    {K34, L(1) "/lora_rank", "4", ML(1) "/lora_rank", "LoRA"},
    {K313, L(3) "/quantization_config", "{\"mode\": \"int8\"}", ML(3) "/quantization_config",
     "quantization"},
    {K313, L(0) "/optional", "true", ML(0) "/optional", "optional"},
    {TF212, L(0) "/ragged", "true", ML(0) "/ragged", "ragged"},
    {K34, L(0) "/sparse", "true", ML(0) "/sparse", "sparse"},
    {K34, L(1) "/use_lora", "true", ML(1) "/use_lora", "unknown key"},
    {K34, "/config/layers/1/registered_name", "\"my_pkg>Dense\"",
     "/model/config/layers/1/registered_name", "custom"},
    {K34, L(0) "/batch_shape", "[null, 8, 8]", ML(0) "/batch_shape", "flat"},
    {K34, L(0) "/batch_shape/0", "32", ML(0) "/batch_shape/0", "batch"},
    {K34, "/config/build_input_shape/1", "63", "/model/config/build_input_shape/1",
     "disagrees"},
    {K34, "/config/layers/3/class_name", "\"InputLayer\"", "/model/config/layers/3/config",
     "first"},
    {TF212, L(3) "/batch_input_shape", "[null, 32]", ML(3) "/batch_input_shape", "first"},
    {TF2IS, L(1) "/batch_input_shape/1", "63", ML(1) "/batch_input_shape/1", "disagrees"},
    {OLD, "/config/0/config/kernel_initializer/config/mode", "\"fan_out\"",
     "/model/config/0/config/kernel_initializer/config", "VarianceScaling"},
    {OLD, "/config/2/config/kernel_initializer/config/distribution", "\"untruncated_normal\"",
     "/model/config/2/config/kernel_initializer/config/distribution", "distribution"},
    {OLD, "/config/1/config/noise_shape", "[null, 32]", "/model/config/1/config/noise_shape",
     "noise_shape"},
    /* Checked by spec.c on the native form, reported at the Keras pointer. */
    {K34, L(1) "/units", "0", ML(1) "/units", "at least 1"},
    {K34, L(3) "/activation", "\"bogus\"", ML(3) "/activation", "unknown activation"},
    {K34, L(3) "/units", "1", ML(3) "/activation", "softmax"},
    {K34, L(1) "/kernel_regularizer/config/l2", "-0.5", ML(1) "/kernel_regularizer/config/l2",
     "must be in [0, "},
    {TF212, L(1) "/kernel_initializer",
     "{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 0.0, \"stddev\": -1.0, "
     "\"seed\": null}}",
     ML(1) "/kernel_initializer/config/stddev", "must be in [0, "},
    {K34, L(1) "/kernel_initializer/class_name", "\"Orthogonal\"",
     ML(1) "/kernel_initializer/class_name", "unknown initializer"},
    {K34, L(2) "/rate", "1.0", ML(2) "/rate", "[0, 1)"},
    {K34, L(2) "/seed", "-3", ML(2) "/seed", "at least 0"},
    {K34, L(3) "/name", "\"hidden\"", ML(3) "/name", "duplicate"},
    {K34, L(1) "/name", "\"a b\"", ML(1) "/name", "layer name"},
    {K34, L(0) "/batch_shape/1", "0", ML(0) "/batch_shape/1", "at least 1"},
    {K34, L(0) "/batch_shape/1", "null", ML(0) "/batch_shape/1", "must be an integer"},
    {OLD, "/config/0/config/batch_input_shape/1", "\"64\"",
     "/model/config/0/config/batch_input_shape/1", "integer"},
    {K34, L(3) "/use_bias", "\"yes\"", ML(3) "/use_bias", "true or false"},
    {K34, "/config/layers", "[]", "/model/config/layers", "at least one"},
    {K34, "/config/layers/0", "{\"class_name\": \"InputLayer\"}", "/model/config/layers/0/config",
     "config"},
};

/* A deciding input width that is no width (0, null) is the one problem named: the
 * other shapes (build_input_shape, build_config) are not said to disagree with it. */
static void test_bad_width_named_once(void **state)
{
    (void)state;
    static const char *const values[] = {"0", "null"};
    for (int k = 0; k < 2; k++) {
        json_t *doc = keras_fixture(K34);
        json_t *v = json_loads(values[k], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        pointer_set(doc, L(0) "/batch_shape/1", v);
        spec_job job = {0};
        spec_problems pr;
        assert_int_equal(parse_model_doc(doc, &job, &pr), SPEC_INVALID);
        if (pr.n != 1) print_problems(&pr);
        assert_int_equal(pr.n, 1);
        assert_string_equal(pr.items[0].pointer, ML(0) "/batch_shape/1");
        spec_job_free(&job);
        json_decref(doc);
    }
}

static void test_unsupported(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        json_t *doc = keras_fixture(bc->fixture);
        json_error_t err;
        json_t *v = bc->value ? json_loads(bc->value, JSON_DECODE_ANY, &err) : NULL;
        if (bc->value) assert_non_null(v);
        pointer_set(doc, bc->at, v);
        spec_job job = {0};
        spec_problems pr;
        int rc = parse_model_doc(doc, &job, &pr);
        int found = 0;
        for (int p = 0; p < pr.n; p++) {
            if (strcmp(pr.items[p].pointer, bc->pointer) == 0 &&
                strstr(pr.items[p].message, bc->message))
                found = 1;
            /* Every pointer names the Keras document, never the native form. */
            assert_true(strncmp(pr.items[p].pointer, "/model/layers", 13) != 0);
            assert_true(strncmp(pr.items[p].pointer, "/model/input_shape", 18) != 0);
        }
        if (rc != SPEC_INVALID || !found) {
            print_message("case %zu (%s %s = %s): want '%s' ~ '%s'\n", i, bc->fixture, bc->at,
                          bc->value ? bc->value : "(deleted)", bc->pointer, bc->message);
            print_problems(&pr);
        }
        assert_int_equal(rc, SPEC_INVALID);
        assert_true(found);
        spec_job_free(&job);
        json_decref(doc);
    }
}

/* Missing input width: no InputLayer, no build shapes. */
static void test_input_unknown(void **state)
{
    json_t *doc = fixture_without_input_layer(K34);
    pointer_set(doc, "/config/build_input_shape", NULL);
    pointer_set(doc, "/build_config", NULL);
    spec_job job = {0};
    spec_problems pr;
    assert_int_equal(parse_model_doc(doc, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].pointer, "/model/config/layers");
    assert_non_null(strstr(pr.items[0].message, "keras.Input"));
    json_decref(doc);
}

/* Several problems in one document are all reported. */
static void test_all_problems(void **state)
{
    json_t *doc = keras_fixture(K34);
    pointer_set(doc, L(2) "/noise_shape", json_pack("[n,i]", 1));
    pointer_set(doc, L(1) "/units", json_integer(-1));
    pointer_set(doc, L(3) "/bias_constraint", json_string("non_neg"));
    spec_job job = {0};
    spec_problems pr;
    assert_int_equal(parse_model_doc(doc, &job, &pr), SPEC_INVALID);
    if (pr.n != 3) print_problems(&pr);
    assert_int_equal(pr.n, 3);
    json_decref(doc);
}

/* ------------------------------------------------------------ export */

/* The exported document has Keras 3's structure, seeds included. */
static void test_export_structure(void **state)
{
    spec_job job = {0};
    json_t *doc = keras_fixture("tf_keras_2.13.json");
    parse_model_ok(doc, &job);
    json_decref(doc);
    json_t *k = keras_model_to_json(&job.model);
    assert_non_null(k);
    const char *keys[] = {"module", "class_name", "config", "registered_name", "build_config"};
    for (size_t i = 0; i < 5; i++) assert_non_null(json_object_get(k, keys[i]));
    assert_int_equal(json_object_size(k), 5);
    assert_string_equal(json_string_value(json_object_get(k, "class_name")), "Sequential");
    assert_string_equal(json_string_value(json_object_get(k, "module")), "keras");
    json_t *cfg = json_object_get(k, "config");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(cfg, "dtype"), "class_name")),
        "DTypePolicy");
    json_t *layers = json_object_get(cfg, "layers");
    assert_int_equal(json_array_size(layers), 4);
    json_t *in = json_array_get(layers, 0);
    assert_string_equal(json_string_value(json_object_get(in, "class_name")), "InputLayer");
    json_t *bs = json_object_get(json_object_get(in, "config"), "batch_shape");
    assert_true(json_is_null(json_array_get(bs, 0)));
    assert_int_equal(json_integer_value(json_array_get(bs, 1)), 64);
    json_t *d = json_object_get(json_array_get(layers, 1), "config");
    assert_string_equal(json_string_value(json_object_get(d, "name")), "hidden");
    json_t *ki = json_object_get(d, "kernel_initializer");
    assert_string_equal(json_string_value(json_object_get(ki, "class_name")), "HeNormal");
    assert_string_equal(json_string_value(json_object_get(ki, "module")), "keras.initializers");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ki, "config"), "seed")),
                     7);
    json_t *kr = json_object_get(d, "kernel_regularizer");
    assert_string_equal(json_string_value(json_object_get(kr, "class_name")), "L2");
    assert_non_null(json_object_get(d, "activity_regularizer"));
    assert_true(json_is_null(json_object_get(d, "kernel_constraint")));
    json_t *bcfg = json_object_get(json_array_get(layers, 1), "build_config");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(bcfg, "input_shape"), 1)),
                     64);
    json_t *dr = json_object_get(json_array_get(layers, 2), "config");
    assert_int_equal(json_integer_value(json_object_get(dr, "seed")), 3);
    assert_true(json_is_null(json_object_get(dr, "noise_shape")));
    json_t *o = json_object_get(json_array_get(layers, 3), "config");
    assert_null(json_object_get(o, "activity_regularizer")); /* Keras 3: only when set */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "kernel_regularizer"), "class_name")),
        "L1L2");
    json_decref(k);
    spec_job_free(&job);
}

/* The InputLayer's name is one no layer has: Keras refuses a name used twice. */
static void test_export_input_name(void **state)
{
    (void)state;
    spec_job job = {0};
    json_t *native = json_pack("{s:[i], s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}]}", "input_shape", 4,
                               "layers", "type", "dense", "units", 3, "name", "input_layer",
                               "type", "dense", "units", 2, "name", "input_layer_1");
    assert_non_null(native);
    parse_model_ok(native, &job);
    json_t *k = keras_model_to_json(&job.model);
    assert_non_null(k);
    json_t *layers = json_object_get(json_object_get(k, "config"), "layers");
    json_t *in = json_object_get(json_array_get(layers, 0), "config");
    assert_string_equal(json_string_value(json_object_get(in, "name")), "input_layer_2");
    json_decref(k);
    spec_job_free(&job);
    json_decref(native);
}

/* Export -> re-import gives the same model: every fixture, and a native model
 * using every initializer kind and activation. */
static void test_round_trip(void **state)
{
    for (size_t i = 0; i < N_KERAS_FIXTURES; i++) {
        spec_job a = {0}, b = {0};
        json_t *doc = keras_fixture(keras_fixtures[i]);
        parse_model_ok(doc, &a);
        json_t *k = keras_model_to_json(&a.model);
        assert_non_null(k);
        parse_model_ok(k, &b);
        assert_same_model(&a.model, &b.model, 0);
        json_decref(k);
        json_decref(doc);
        spec_job_free(&a);
        spec_job_free(&b);
    }

    json_t *layers = json_array();
    assert_non_null(layers);
    for (int kind = 0; kind < NN_INIT_COUNT; kind++) {
        int act = kind % NN_ACT_COUNT;
        if (act == NN_ACT_SOFTMAX) act = NN_ACT_TANH;
        json_t *l = json_pack("{s:s, s:i, s:s, s:b, s:{s:s, s:i}, s:{s:s, s:f, s:f}, s:{s:f}}",
                              "type", "dense", "units", 3 + kind, "activation",
                              nn_activation_name((nn_activation)act), "use_bias", kind % 3 != 0,
                              "kernel_initializer", "name", nn_init_name((nn_init_kind)kind),
                              "seed", 100 + kind, "bias_initializer", "name", "random_uniform",
                              "minval", -0.25, "maxval", 0.5, "bias_regularizer", "l1", 0.125);
        assert_non_null(l);
        assert_int_equal(json_array_append_new(layers, l), 0);
        json_t *dr = json_pack("{s:s, s:f}", "type", "dropout", "rate", 0.0625 * kind);
        assert_int_equal(json_array_append_new(layers, dr), 0);
    }
    json_t *extra = json_pack("{s:s, s:i, s:s, s:{s:s, s:f, s:f, s:i}}", "type", "dense",
                              "units", 4, "activation", "swish", "kernel_initializer", "name",
                              "random_normal", "mean", 0.5, "stddev", 0.25, "seed", 9);
    assert_int_equal(json_array_append_new(layers, extra), 0);
    json_t *native = json_pack("{s:[i], s:o}", "input_shape", 5, "layers", layers);
    assert_non_null(native);
    spec_job a = {0}, b = {0};
    parse_model_ok(native, &a);
    json_t *k = keras_model_to_json(&a.model);
    assert_non_null(k);
    parse_model_ok(k, &b);
    assert_same_model(&a.model, &b.model, 0);
    /* swish is written under Keras 3's function name */
    json_t *last = json_array_get(json_object_get(json_object_get(k, "config"), "layers"),
                                  (size_t)a.model.n_layers);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(last, "config"), "activation")),
        "silu");
    json_decref(k);
    json_decref(native);
    spec_job_free(&a);
    spec_job_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_fixtures_convert),
        cmocka_unit_test(test_input_from_first_layer),
        cmocka_unit_test(test_input_from_build_shapes),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_bad_width_named_once),
        cmocka_unit_test(test_input_unknown),
        cmocka_unit_test(test_all_problems),
        cmocka_unit_test(test_export_structure),
        cmocka_unit_test(test_export_input_name),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
