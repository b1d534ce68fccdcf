/*
 * test_warmstart.c — the pure parts of warm starts: the "init" member of a job
 * spec (parse, errors, rendering round trip), the tensor list a model spec
 * builds (checked against the core's own model), the tensor matching rule, and
 * the spec comparison a resume uses. The store-facing parts are covered by
 * tests/integration/test_warmstart.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "nn.h"
#include "spec.h"
#include "support.h"
#include "warmstart.h"

#define BASE                                                                                  \
    "{\"data\": {\"train\": \"ds_a\"}, \"model\": {\"input_shape\": [5], \"layers\": ["        \
    "{\"type\": \"dense\", \"units\": 4, \"name\": \"h\"}, {\"type\": \"dropout\", \"rate\": 0.1}," \
    "{\"type\": \"dense\", \"units\": 3, \"use_bias\": false},"                                \
    "{\"type\": \"dense\", \"units\": 2}]}, \"compile\": {\"loss\": \"mse\"}"

static int parse(const char *text, spec_job *job, spec_problems *pr)
{
    return spec_job_parse_text(text, strlen(text), NULL, 0, job, pr);
}

static void test_init_parse_and_render(void **state)
{
    spec_job job = {0}, again = {0};
    spec_problems pr;
    const char *texts[] = {BASE "}", BASE ", \"init\": {\"weights\": \"wts_1\"}}",
                           BASE ", \"init\": {\"from_job\": \"job_2\", \"resume\": true}}",
                           BASE ", \"init\": null}"};
    const spec_init_kind kinds[] = {SPEC_INIT_NONE, SPEC_INIT_WEIGHTS, SPEC_INIT_FROM_JOB,
                                    SPEC_INIT_NONE};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(parse(texts[i], &job, &pr), SPEC_OK);
        assert_int_equal(job.init.kind, kinds[i]);
        json_t *j = spec_job_to_json(&job);
        assert_non_null(j);
        /* Without an init nothing is rendered (older specs look as before). */
        assert_int_equal(json_object_get(j, "init") != NULL, kinds[i] != SPEC_INIT_NONE);
        char *text = json_dumps(j, 0);
        assert_int_equal(parse(text, &again, &pr), SPEC_OK);
        assert_int_equal(again.init.kind, job.init.kind);
        assert_string_equal(again.init.id, job.init.id);
        assert_int_equal(again.init.resume, job.init.resume);
        free(text);
        json_decref(j);
        spec_job_free(&again);
        spec_job_free(&job);
    }
}

static void test_init_errors(void **state)
{
    static const struct {
        const char *init, *pointer, *needle;
    } rows[] = {
        {"{}", "/init", "exactly one"},
        {"{\"weights\": \"a\", \"from_job\": \"b\"}", "/init", "exactly one"},
        {"{\"weights\": \"a\", \"resume\": true}", "/init/resume", "needs \"from_job\""},
        {"{\"from_job\": \"a b\"}", "/init/from_job", "a job id"},
        {"{\"weights\": 5}", "/init/weights", "must be a string"},
        {"{\"from_job\": \"a\", \"resume\": 1}", "/init/resume", "true or false"},
        {"{\"from_job\": \"a\", \"epochs\": 3}", "/init/epochs", "unknown key"},
        {"[]", "/init", "must be an object"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char text[1024];
        spec_job job = {0};
        spec_problems pr;
        snprintf(text, sizeof text, BASE ", \"init\": %s}", rows[i].init);
        assert_int_equal(parse(text, &job, &pr), SPEC_INVALID);
        int found = 0;
        for (int k = 0; k < pr.n; k++)
            if (!strcmp(pr.items[k].pointer, rows[i].pointer) && strstr(pr.items[k].message, rows[i].needle))
                found = 1;
        if (!found)
            for (int k = 0; k < pr.n; k++)
                print_message("row %zu: '%s' %s\n", i, pr.items[k].pointer, pr.items[k].message);
        assert_true(found);
        spec_job_free(&job);
    }
}

/* The list warmstart computes from a spec is the one the core builds. */
static void test_model_tensors_match_core(void **state)
{
    spec_job job = {0};
    spec_problems pr;
    nn_error err = {0};
    warmstart_tensor t[16];
    assert_int_equal(parse(BASE "}", &job, &pr), SPEC_OK);
    int n = warmstart_model_tensors(&job.model, t, 16);
    nn_model *m = nn_model_new(&job.model, 1, &err);
    assert_non_null(m);
    assert_int_equal(n, nn_model_tensor_count(m));
    assert_int_equal(n, 5); /* h/kernel, h/bias, dense/kernel (no bias), dense_1/kernel, dense_1/bias */
    for (int i = 0; i < n; i++) {
        const nn_tensor_info *ti = nn_model_tensor(m, i);
        assert_string_equal(t[i].name, ti->name);
        assert_int_equal(t[i].ndim, ti->ndim);
        for (int d = 0; d < ti->ndim; d++) assert_int_equal(t[i].shape[d], ti->shape[d]);
    }
    assert_int_equal(warmstart_model_tensors(&job.model, t, 4), -1);
    nn_model_free(m);
    spec_job_free(&job);
}

static void test_tensors_match(void **state)
{
    warmstart_tensor want[2] = {{"a/kernel", 2, {3, 4}}, {"a/bias", 1, {4}}};
    warmstart_tensor have[3] = {{"a/bias", 1, {4}}, {"a/kernel", 2, {3, 4}}, {"b/bias", 1, {1}}};
    char msg[200];
    assert_int_equal(warmstart_tensors_match(want, 2, have, 2, msg, sizeof msg), 0); /* any order */
    assert_int_equal(warmstart_tensors_match(want, 2, have, 3, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "'b/bias' that the model does not"));
    assert_int_equal(warmstart_tensors_match(want, 2, have, 1, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "lack tensor 'a/kernel'"));
    have[1].shape[1] = 5;
    assert_int_equal(warmstart_tensors_match(want, 2, have, 2, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "'a/kernel' has shape [3, 5], the model needs [3, 4]"));
    have[1].shape[1] = 4;
    have[1].ndim = 3;
    have[1].shape[2] = 1;
    assert_int_equal(warmstart_tensors_match(want, 2, have, 2, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "[3, 4, 1]"));
}

static void test_spec_diff(void **state)
{
    char ptr[128];
    json_t *a = json_loads("{\"name\": \"x\", \"init\": {\"from_job\": \"j\"}, \"fit\": {\"epochs\": 6, "
                           "\"seed\": 1}, \"model\": {\"layers\": [{\"units\": 4}, {\"a/b~c\": 1}]}}",
                           0, NULL);
    json_t *b = json_loads("{\"name\": \"y\", \"fit\": {\"epochs\": 3, \"seed\": 1.0}, "
                           "\"model\": {\"layers\": [{\"units\": 4}, {\"a/b~c\": 1}]}}",
                           0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(warmstart_spec_diff(a, b, ptr, sizeof ptr), 0);
    json_object_set_new(json_array_get(json_object_get(json_object_get(b, "model"), "layers"), 1),
                        "a/b~c", json_integer(2));
    assert_int_equal(warmstart_spec_diff(a, b, ptr, sizeof ptr), 1);
    assert_string_equal(ptr, "/model/layers/1/a~1b~0c");
    json_object_set_new(json_object_get(b, "fit"), "shuffle", json_true());
    assert_int_equal(warmstart_spec_diff(a, b, ptr, sizeof ptr), 1);
    assert_string_equal(ptr, "/fit/shuffle"); /* only in b */
    json_object_del(json_object_get(b, "fit"), "shuffle");
    json_array_append_new(json_object_get(json_object_get(b, "model"), "layers"), json_object());
    assert_int_equal(warmstart_spec_diff(a, b, ptr, sizeof ptr), 1);
    assert_string_equal(ptr, "/model/layers");
    /* "epochs" is ignored under fit only. */
    json_t *c = json_loads("{\"epochs\": 1}", 0, NULL), *d = json_loads("{\"epochs\": 2}", 0, NULL);
    assert_int_equal(warmstart_spec_diff(c, d, ptr, sizeof ptr), 1);
    assert_string_equal(ptr, "/epochs");
    json_decref(c);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_parse_and_render),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_model_tensors_match_core),
        cmocka_unit_test(test_tensors_match),
        cmocka_unit_test(test_spec_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
