/*
 * test_plots.c — GET /v1/jobs/{id}/metrics.svg against a real fitd: the chart of
 * a finished digits job is valid XML (checked by xmllint, libxml2's parser) with
 * one polyline per series and one point per stored epoch, the best epoch marked;
 * ?metric= picks the series; bad ?metric= and ?scale= get 400 naming the
 * parameter; unknown job 404; a running job gives partial curves over its
 * planned epochs and a queued one an empty chart with a note.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

static it_server srv;
static char digits_id[64];

/* Submit a small digits classifier; the id goes to `id`. */
static void submit(int epochs, const char *name, char *id, size_t id_len)
{
    char spec[1400];
    snprintf(spec, sizeof spec,
             "{\"name\": \"%s\", \"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": ["
             "   {\"type\": \"dense\", \"units\": 32, \"activation\": \"relu\","
             "    \"kernel_regularizer\": {\"l2\": 0.001}},"
             "   {\"type\": \"dropout\", \"rate\": 0.2},"
             "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\","
             "   \"metrics\": [\"accuracy\"]},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": 64, \"validation_split\": 0.2, \"seed\": 3}}",
             name, digits_id, epochs);
    it_submit_job(&srv, spec, id, id_len);
}

static size_t epochs_stored(const char *id)
{
    json_t *a = it_job_metrics(&srv, id);
    size_t n = json_array_size(a);
    json_decref(a);
    return n;
}

/* The point counts of each <polyline> (up to cap). */
static int polyline_points(const char *svg, int *counts, int cap)
{
    int n = 0;
    for (const char *p = strstr(svg, "<polyline"); p && n < cap; p = strstr(p + 1, "<polyline")) {
        const char *pts = strstr(p, "points=\"");
        assert_non_null(pts);
        pts += 8;
        const char *end = strchr(pts, '"');
        int k = 0;
        for (const char *q = pts; q < end; q++) k += *q == ',';
        counts[n++] = k;
    }
    return n;
}

/* ---------------------------------------------------------------- tests */

static void test_finished_job_chart(void **state)
{
    (void)state;
    char id[64], path[160];
    submit(6, "plots <&> digits", id, sizeof id);
    json_t *job = it_wait_job(&srv, id, "succeeded", 120, 50);
    int best = (int)json_integer_value(json_object_get(job, "best_epoch"));
    json_decref(job);
    size_t n = epochs_stored(id);
    assert_int_equal(n, 6);

    snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg", id);
    char *svg = it_get_svg(&srv, path);
    /* loss and val_loss: one unbroken line each, one point per epoch. */
    int counts[8];
    assert_int_equal(polyline_points(svg, counts, 8), 2);
    assert_int_equal(counts[0], (int)n);
    assert_int_equal(counts[1], (int)n);
    assert_non_null(strstr(svg, ">loss</text>"));
    assert_non_null(strstr(svg, ">val_loss</text>"));
    assert_non_null(strstr(svg, ">epoch</text>"));
    assert_int_equal(it_count_str(svg, "class=\"gap\""), 1); /* the train/val gap is shaded */
    /* The job's name is escaped into the title. */
    assert_non_null(strstr(svg, "plots &lt;&amp;&gt; digits: loss"));
    if (best > 0) {
        char mark[64];
        snprintf(mark, sizeof mark, ">best epoch %d</text>", best);
        assert_non_null(strstr(svg, mark));
    }
    free(svg);

    /* ?metric=accuracy: accuracy and val_accuracy. */
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg?metric=accuracy", id);
    svg = it_get_svg(&srv, path);
    assert_int_equal(polyline_points(svg, counts, 8), 2);
    assert_int_equal(counts[0], (int)n);
    assert_non_null(strstr(svg, ">val_accuracy</text>"));
    assert_null(strstr(svg, ">val_loss</text>"));
    free(svg);

    /* One-series metric, and a log axis. */
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg?metric=regularization_loss&scale=log",
             id);
    svg = it_get_svg(&srv, path);
    assert_int_equal(polyline_points(svg, counts, 8), 1);
    assert_int_equal(counts[0], (int)n);
    assert_null(strstr(svg, "class=\"gap\""));
    free(svg);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char id[64], path[160];
    it_resp r;
    submit(1, "tiny", id, sizeof id);
    json_decref(it_wait_job(&srv, id, "succeeded", 120, 50));

    static const char *const bad[][2] = {
        {"?metric=bogus", "/metric"},
        {"?metric=val_loss", "/metric"}, /* the twin is drawn with its metric, not alone */
        {"?metric=", "/metric"},         /* empty, as ?scale= is */
        {"?scale=cubic", "/scale"},
        {"?scale=", "/scale"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg%s", id, bad[i][0]);
        assert_int_equal(it_get(&srv, path, &r), 0);
        json_t *p = assert_problem(&r, 400);
        json_t *e = json_array_get(json_object_get(p, "errors"), 0);
        assert_string_equal(json_string_value(json_object_get(e, "pointer")), bad[i][1]);
        if (i == 0)
            assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "accuracy"));
        json_decref(p);
        it_resp_free(&r);
    }
    assert_int_equal(it_get(&srv, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/metrics.svg", &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

static void test_running_and_queued(void **state)
{
    (void)state;
    char a[64], b[64], path[160];
    /* One worker: b waits in the queue while a trains. */
    submit(3000, "long", a, sizeof a);
    json_decref(it_wait_job(&srv, a, "running", 60, 50));
    for (int i = 0; i < 1200 && epochs_stored(a) < 2; i++) sleep_ms(50);
    submit(5, "waiting", b, sizeof b);

    size_t before = epochs_stored(a);
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg", a);
    char *svg = it_get_svg(&srv, path);
    size_t after = epochs_stored(a);
    int counts[8];
    assert_int_equal(polyline_points(svg, counts, 8), 2);
    assert_true((size_t)counts[0] >= before && (size_t)counts[0] <= after);
    /* The x axis already spans the planned 3000 epochs. */
    assert_non_null(strstr(svg, ">3000</text>"));
    free(svg);

    snprintf(path, sizeof path, "/v1/jobs/%s/metrics.svg", b);
    svg = it_get_svg(&srv, path);
    assert_int_equal(polyline_points(svg, counts, 8), 0);
    assert_non_null(strstr(svg, ">no epochs yet</text>"));
    free(svg);

    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", b);
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", a);
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    expect_status(&r, 202);
    it_resp_free(&r);
    json_decref(it_wait_job(&srv, a, "cancelled", 60, 50));
}

static int setup(void **state)
{
    *state = &srv;
    const char *args[] = {"--workers", "1", NULL};
    return it_start_with_digits(&srv, args, digits_id, sizeof digits_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_job_chart),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_running_and_queued),
    };
    return cmocka_run_group_tests(tests, setup, it_group_teardown);
}
