/*
 * test_keras_api.c — Keras model JSON in and out, against a real fitd (libcurl,
 * ephemeral loopback port, temporary database).
 *
 * Every fixture of tests/fixtures/keras/ (one per Keras version family) is
 * submitted as a job's model and trains on digits.csv. They all describe the
 * model of expected_native.json with the same seeds, so every one must give
 * bit-identical weights to the native spec's job. GET /v1/jobs/{id}/model
 * returns a Keras 3 document carrying the initializer and dropout seeds;
 * submitted again with the same fit block it trains to the same weights and
 * predictions. Unsupported attributes get 422 naming the Keras pointer; an
 * unknown job 404.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

static it_server srv;
static char digits_id[64];

/* ---------------------------------------------------------------- helpers */

/* A job spec around `model` (stolen): adam on digits, a few epochs, fixed seed. */
static char *job_text(json_t *model)
{
    json_t *spec = json_pack(
        "{s:s, s:{s:s}, s:o, s:{s:{s:s, s:f}, s:s, s:[s]}, s:{s:i, s:i, s:i, s:f}}", "name",
        "keras", "data", "train", digits_id, "model", model, "compile", "optimizer", "name",
        "adam", "learning_rate", 0.01, "loss", "sparse_categorical_crossentropy", "metrics",
        "accuracy", "fit", "epochs", 3, "batch_size", 64, "seed", 5, "validation_split", 0.2);
    assert_non_null(spec);
    char *text = json_dumps(spec, JSON_COMPACT);
    assert_non_null(text);
    json_decref(spec);
    return text;
}

/* Submit; returns the job id (malloc'ed). */
static char *submit(json_t *model)
{
    char *text = job_text(model);
    it_resp r;
    assert_int_equal(it_post_json(&srv, "/v1/jobs", text, &r), 0);
    free(text);
    expect_status(&r, 202);
    json_t *o = body_json(&r);
    char *id = strdup(json_string_value(json_object_get(o, "id")));
    assert_non_null(id);
    json_decref(o);
    it_resp_free(&r);
    return id;
}

/* Poll until the job succeeded (fails on another final state or a timeout);
 * returns the job resource. */
static json_t *wait_succeeded(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    for (int i = 0; i < 4 * 60 * 10; i++) { /* 10 min: sanitized builds on a busy box */
        it_resp r;
        assert_int_equal(it_get(&srv, path, &r), 0);
        expect_status(&r, 200);
        json_t *o = body_json(&r);
        it_resp_free(&r);
        const char *st = json_string_value(json_object_get(o, "status"));
        assert_non_null(st);
        if (strcmp(st, "succeeded") == 0) return o;
        if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
            fprintf(stderr, "job %s ended %s: %s\n", id, st,
                    json_string_value(json_object_get(o, "error")));
            json_decref(o);
            fail();
        }
        json_decref(o);
        sleep_ms(250);
    }
    fail_msg("job %s did not finish", id);
    return NULL;
}

/* The job's trained weights (safetensors bytes). */
static it_resp weights_of(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    it_resp r;
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    return r;
}

/* The tensor bytes of a safetensors file (after its 8-byte header length and the
 * JSON header, whose metadata names the job). */
static const unsigned char *tensor_data(const it_resp *r, size_t *n)
{
    assert_true(r->len > 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | (unsigned char)r->body[i];
    assert_true(h < r->len - 8);
    *n = r->len - 8 - (size_t)h;
    return (const unsigned char *)r->body + 8 + h;
}

/* Bit-identical trained weights. */
static void assert_same_weights(const char *a, const char *b)
{
    it_resp wa = weights_of(a), wb = weights_of(b);
    size_t na = 0, nb = 0;
    const unsigned char *da = tensor_data(&wa, &na), *db = tensor_data(&wb, &nb);
    assert_int_equal(na, (64 * 32 + 32 + 32 * 10 + 10) * sizeof(float));
    assert_int_equal(na, nb);
    size_t at = 0;
    while (at < na && da[at] == db[at]) at++;
    if (at < na) fail_msg("weights of %s and %s differ from byte %zu of %zu", a, b, at, na);
    it_resp_free(&wa);
    it_resp_free(&wb);
}

/* The outputs of POST /v1/jobs/{id}/predict for the first rows of digits. */
static json_t *predict(const char *id)
{
    static const char *body =
        "{\"inputs\": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,"
        "0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0],"
        "[0,0,0,12,13,5,0,0,0,0,0,11,16,9,0,0,0,0,3,15,16,6,0,0,0,7,15,16,16,2,0,0,0,0,1,16,"
        "16,3,0,0,0,0,1,16,16,6,0,0,0,0,1,16,16,6,0,0,0,0,0,11,16,10,0,0]]}";
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    it_resp r;
    assert_int_equal(it_post_json(&srv, path, body, &r), 0);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    it_resp_free(&r);
    json_t *out = json_incref(json_object_get(o, "outputs"));
    json_decref(o);
    assert_non_null(out);
    return out;
}

static json_t *model_of(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/model", id);
    it_resp r;
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    assert_non_null(strstr(r.content_type, "application/json"));
    json_t *o = body_json(&r);
    it_resp_free(&r);
    return o;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    *state = &srv;
    const char *args[] = {"--workers", "2", NULL};
    return it_start_with_digits(&srv, args, digits_id, sizeof digits_id);
}

/* ---------------------------------------------------------------- tests */

/* Every version family trains, to the native spec's weights; the exported
 * document carries the seeds and trains again to the same weights and outputs. */
static void test_fixtures_train_and_round_trip(void **state)
{
    char *native_id = submit(keras_fixture("expected_native.json"));
    char *ids[N_KERAS_FIXTURES];
    for (size_t i = 0; i < N_KERAS_FIXTURES; i++) ids[i] = submit(keras_fixture(keras_fixtures[i]));

    json_decref(wait_succeeded(native_id));
    char *again[N_KERAS_FIXTURES];
    for (size_t i = 0; i < N_KERAS_FIXTURES; i++) {
        json_t *job = wait_succeeded(ids[i]);
        /* it learned something: digits is 10 classes */
        json_t *m = json_object_get(job, "metrics");
        double acc = json_number_value(json_object_get(m, "val_accuracy"));
        if (acc <= 0.5) fprintf(stderr, "%s: val_accuracy %g\n", keras_fixtures[i], acc);
        assert_true(acc > 0.5);
        json_decref(job);
        assert_same_weights(ids[i], native_id);

        json_t *doc = model_of(ids[i]);
        assert_string_equal(json_string_value(json_object_get(doc, "class_name")), "Sequential");
        json_t *layers = json_object_get(json_object_get(doc, "config"), "layers");
        assert_int_equal(json_array_size(layers), 4);
        json_t *hidden = json_object_get(json_array_get(layers, 1), "config");
        assert_string_equal(json_string_value(json_object_get(hidden, "name")), "hidden");
        json_t *seed = json_object_get(
            json_object_get(json_object_get(hidden, "kernel_initializer"), "config"), "seed");
        assert_int_equal(json_integer_value(seed), 7);
        json_t *drop = json_object_get(json_array_get(layers, 2), "config");
        assert_int_equal(json_integer_value(json_object_get(drop, "seed")), 3);
        again[i] = submit(doc); /* steals doc */
    }
    /* The control: another initializer seed gives other weights. */
    json_t *other = keras_fixture("keras_3.4-3.12.json");
    json_t *ki = json_object_get(
        json_object_get(
            json_array_get(json_object_get(json_object_get(other, "config"), "layers"), 1),
            "config"),
        "kernel_initializer");
    assert_int_equal(json_object_set_new(json_object_get(ki, "config"), "seed", json_integer(8)),
                     0);
    char *other_id = submit(other);
    json_decref(wait_succeeded(other_id));
    it_resp wa = weights_of(other_id), wb = weights_of(native_id);
    size_t na = 0, nb = 0;
    const unsigned char *da = tensor_data(&wa, &na), *db = tensor_data(&wb, &nb);
    assert_int_equal(na, nb);
    assert_true(memcmp(da, db, na) != 0);
    it_resp_free(&wa);
    it_resp_free(&wb);
    free(other_id);

    json_t *want = predict(native_id);
    for (size_t i = 0; i < N_KERAS_FIXTURES; i++) {
        json_decref(wait_succeeded(again[i]));
        assert_same_weights(again[i], ids[i]);
        json_t *got = predict(again[i]);
        assert_true(json_equal(got, want));
        json_decref(got);
        free(again[i]);
        free(ids[i]);
    }
    json_decref(want);
    free(native_id);
}

/* What fitd cannot honour is a 422 naming the place in the Keras document. */
static void test_unsupported_422(void **state)
{
    json_t *doc = keras_fixture("keras_3.4-3.12.json");
    json_t *drop = json_object_get(
        json_array_get(json_object_get(json_object_get(doc, "config"), "layers"), 2), "config");
    assert_int_equal(json_object_set_new(drop, "noise_shape", json_pack("[n,i]", 1)), 0);
    json_t *hidden = json_object_get(
        json_array_get(json_object_get(json_object_get(doc, "config"), "layers"), 1), "config");
    assert_int_equal(json_object_set_new(hidden, "units", json_integer(0)), 0);
    char *text = job_text(doc);
    it_resp r;
    assert_int_equal(it_post_json(&srv, "/v1/jobs", text, &r), 0);
    free(text);
    json_t *p = assert_problem(&r, 422);
    json_t *errors = json_object_get(p, "errors");
    const char *want[] = {"/model/config/layers/2/config/noise_shape",
                          "/model/config/layers/1/config/units"};
    for (size_t w = 0; w < 2; w++) {
        int found = 0;
        for (size_t i = 0; i < json_array_size(errors); i++)
            found |= strcmp(json_string_value(json_object_get(json_array_get(errors, i),
                                                              "pointer")),
                            want[w]) == 0;
        if (!found) fprintf(stderr, "no %s in %s\n", want[w], r.body);
        assert_true(found);
    }
    json_decref(p);
    it_resp_free(&r);
}

static void test_model_unknown_job(void **state)
{
    it_resp r;
    assert_int_equal(it_get(&srv, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/model", &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_train_and_round_trip),
        cmocka_unit_test(test_unsupported_422),
        cmocka_unit_test(test_model_unknown_job),
    };
    return cmocka_run_group_tests(tests, setup, it_group_teardown);
}
