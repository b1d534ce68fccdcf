/*
 * test_train_cli.c — `fitd train` as a user runs it: a spec file and CSV data in,
 * one JSON epoch record per line out, weights saved and loaded back, errors on
 * stderr with a non-zero exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "nn.h"
#include "support.h"

static char tmpdir[256];

static const char *fitd_bin(void)
{
    const char *b = getenv("FITD_BIN");
    return b ? b : "build/fitd";
}

static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Run a shell command; stdout into *out (malloc'ed), stderr into a file; returns
 * the exit status. */
static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s", fitd_bin(), args, tmp("stdout"), tmp("stderr"));
    int st = system(cmd);
    *out = read_file(tmp("stdout"), NULL);
    *err = read_file(tmp("stderr"), NULL);
    assert_non_null(*out);
    assert_non_null(*err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *spec_binary =
    "{\"model\": {\"input_shape\": [30], \"layers\": ["
    "  {\"type\": \"dense\", \"units\": 16, \"activation\": \"relu\", \"kernel_regularizer\": {\"l2\": 0.001}},"
    "  {\"type\": \"dropout\", \"rate\": 0.1},"
    "  {\"type\": \"dense\", \"units\": 1, \"activation\": \"sigmoid\"}]},"
    " \"compile\": {\"optimizer\": {\"name\": \"adam\", \"learning_rate\": 0.001},"
    "             \"loss\": \"binary_crossentropy\", \"metrics\": [\"accuracy\"]},"
    " \"fit\": {\"epochs\": 4, \"batch_size\": 32, \"validation_split\": 0.2, \"seed\": 3}}";

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fitd-cli-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_epochs_test_and_save(void **state)
{
    (void)state;
    char *out, *err, args[2048];
    write_text(tmp("spec.json"), spec_binary);
    snprintf(args, sizeof args, "train %s --train %s --test %s --save %s --threads 1", tmp("spec.json"),
             fixture_path("breast_cancer.csv"), fixture_path("breast_cancer.csv"), tmp("w.safetensors"));
    int rc = run(args, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    /* Four epoch lines, then the test line. */
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o) fail_msg("line %d is not JSON: %s", lines + 1, line);
        if (lines < 4) {
            assert_int_equal(json_integer_value(json_object_get(o, "epoch")), lines + 1);
            const char *keys[] = {"loss", "accuracy", "val_loss", "val_accuracy", "regularization_loss",
                                  "learning_rate", "seconds"};
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                if (!json_is_number(json_object_get(o, keys[k]))) fail_msg("epoch record lacks %s: %s", keys[k], line);
            assert_true(json_number_value(json_object_get(o, "regularization_loss")) > 0);
        } else {
            json_t *t = json_object_get(o, "test");
            assert_non_null(t);
            assert_true(json_is_number(json_object_get(t, "loss")));
            assert_true(json_number_value(json_object_get(t, "accuracy")) > 0.5);
        }
        json_decref(o);
    }
    assert_int_equal(lines, 5);
    free(out);
    free(err);

    /* The saved weights load into the same architecture, and --init uses them. */
    size_t len;
    char *w = read_file(tmp("w.safetensors"), &len);
    assert_non_null(w);
    assert_true(len > 8);
    assert_non_null(strstr(w + 8, "dense/kernel"));
    assert_non_null(strstr(w + 8, "dense_1/bias"));
    free(w);
    snprintf(args, sizeof args, "train %s --train %s --init %s", tmp("spec.json"), fixture_path("breast_cancer.csv"),
             tmp("w.safetensors"));
    rc = run(args, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    free(out);
    free(err);
}

/* The same command twice gives identical output apart from timings. */
static void test_deterministic(void **state)
{
    (void)state;
    char *out1, *out2, *err, args[2048];
    write_text(tmp("spec.json"), spec_binary);
    snprintf(args, sizeof args, "train %s --train %s --threads 1 --save %s", tmp("spec.json"),
             fixture_path("breast_cancer.csv"), tmp("a.safetensors"));
    assert_int_equal(run(args, &out1, &err), 0);
    free(err);
    snprintf(args, sizeof args, "train %s --train %s --threads 1 --save %s", tmp("spec.json"),
             fixture_path("breast_cancer.csv"), tmp("b.safetensors"));
    assert_int_equal(run(args, &out2, &err), 0);
    free(err);
    size_t la, lb;
    char *a = read_file(tmp("a.safetensors"), &la), *b = read_file(tmp("b.safetensors"), &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    free(out1);
    free(out2);
}

typedef struct bad_case {
    const char *spec;       /* NULL: use spec_binary */
    const char *data;       /* fixture for --train; NULL: no --train */
    const char *extra;      /* more arguments */
    const char *stderr_has; /* expected in the error output */
} bad_case;

static void test_errors(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"{\"model\": {\"input_shape\": [30], \"layers\": [{\"type\": \"dense\", \"units\": 0}]},"
         " \"compile\": {\"loss\": \"mse\"}}",
         "breast_cancer.csv", "", "/model/layers/0/units"},
        {"{not json", "breast_cancer.csv", "", "not a valid job spec"},
        {NULL, "digits.csv", "", "64 features"},
        {NULL, "breast_cancer.csv.missing", "", "breast_cancer.csv.missing"},
        {NULL, NULL, "", "usage"},
        {NULL, "breast_cancer.csv", "--threads x", "--threads"},
        {NULL, "breast_cancer.csv", "--init /nonexistent", "cannot read"},
        {NULL, "breast_cancer.csv", "--validation /nonexistent.csv", "/nonexistent.csv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[2048], *out, *err;
        write_text(tmp("spec.json"), cases[i].spec ? cases[i].spec : spec_binary);
        int k = snprintf(args, sizeof args, "train %s", tmp("spec.json"));
        if (cases[i].data) k += snprintf(args + k, sizeof args - (size_t)k, " --train %s", fixture_path(cases[i].data));
        snprintf(args + k, sizeof args - (size_t)k, " %s", cases[i].extra);
        int rc = run(args, &out, &err);
        if (rc == 0 || !strstr(err, cases[i].stderr_has))
            fail_msg("case %zu: exit %d, stderr '%s' (wanted '%s')", i, rc, err, cases[i].stderr_has);
        free(out);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epochs_test_and_save),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
