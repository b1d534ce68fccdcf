/*
 * test_prom.c — GET /metrics against a real fitd: `promtool check metrics`
 * (Debian's prometheus package) accepts the exposition; request counters move by
 * exactly the requests made, labelled with the route pattern, never the raw
 * path; the latency histogram is consistent with them; a digits job moves the
 * epoch histogram and the samples counter by its epochs and training samples;
 * jobs by state, busy workers and the database size are reported; /metrics
 * stays open when --auth-tokens is on while /v1 routes do not.
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

#define DIGITS_TRAIN 1437 /* floor(1797 x 0.8): the samples one epoch trains on */

static void get_expect(const char *path, long status)
{
    it_resp r;
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, status);
    it_resp_free(&r);
}

/* Scrape /metrics (200, the 0.0.4 text format); the body is malloc'ed. */
static char *scrape(const it_server *s)
{
    it_resp r;
    assert_int_equal(it_get(s, "/metrics", &r), 0);
    expect_status(&r, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.content_type, "version=0.0.4"));
    char *body = r.body;
    r.body = NULL;
    it_resp_free(&r);
    return body;
}

/* The value of the sample whose name-and-labels part is exactly `series`, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') return strtod(line + n + 1, NULL);
    }
    return -1;
}

/* Sum of every sample of a metric name (all label sets). */
static double sum_of(const char *text, const char *name)
{
    double s = 0;
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, n) == 0 && (line[n] == '{' || line[n] == ' ')) {
            const char *sp = strchr(line, ' ');
            /* label values here hold no spaces, so the value follows the first */
            s += strtod(sp + 1, NULL);
        }
    }
    return s;
}

static void promtool_ok(const char *text)
{
    char file[700], cmd[800];
    snprintf(file, sizeof file, "%s/metrics.txt", srv.dir);
    assert_int_equal(it_write_file(file, text, strlen(text), 0), 0);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", file);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "promtool refused:\n%s\n", text);
    assert_int_equal(rc, 0);
}

static void submit(int epochs, char *id, size_t id_len)
{
    char spec[1200];
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": ["
             "   {\"type\": \"dense\", \"units\": 16, \"activation\": \"relu\"},"
             "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\"},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": 64, \"validation_split\": 0.2, \"seed\": 1}}",
             digits_id, epochs);
    it_submit_job(&srv, spec, id, id_len);
}

/* ---------------------------------------------------------------- tests */

#define HEALTHZ "fitd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"
#define JOB_404 "fitd_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"404\"}"
#define NO_ROUTE "fitd_http_requests_total{route=\"none\",method=\"GET\",status=\"404\"}"

static void test_request_counters(void **state)
{
    (void)state;
    char *before = scrape(&srv);
    promtool_ok(before);
    double h0 = sample(before, HEALTHZ), j0 = sample(before, JOB_404);
    assert_true(h0 >= 1); /* it_start waited on /healthz */
    for (int i = 0; i < 3; i++) get_expect("/healthz", 200);
    get_expect("/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa", 404);
    get_expect("/v1/jobs/job_bbbbbbbbbbbbbbbbbbbbbbbbbb", 404);
    get_expect("/no/such/path", 404);

    /* A request is counted when libmicrohttpd reports it completed, which may be a
     * moment after its reply reached us: scrape until the counts are in (bounded). */
    char *after = NULL;
    for (int i = 0; i < 100; i++) {
        free(after);
        after = scrape(&srv);
        if (sample(after, HEALTHZ) >= h0 + 3 && sample(after, JOB_404) >= (j0 < 0 ? 0 : j0) + 2 &&
            sample(after, NO_ROUTE) >= 1)
            break;
        sleep_ms(20);
    }
    promtool_ok(after);
    assert_true(sample(after, HEALTHZ) == h0 + 3);
    assert_true(sample(after, JOB_404) == (j0 < 0 ? 0 : j0) + 2);
    assert_true(sample(after, NO_ROUTE) >= 1);
    /* The pattern, never the path. */
    assert_null(strstr(after, "job_aaaa"));
    assert_null(strstr(after, "/no/such/path"));
    /* The previous scrape is counted once it ended. */
    assert_true(sample(after, "fitd_http_requests_total{route=\"/metrics\",method=\"GET\","
                              "status=\"200\"}") >= 1);
    /* The latency histogram saw every counted request, buckets are cumulative. */
    double total = sum_of(after, "fitd_http_requests_total");
    assert_true(sample(after, "fitd_http_request_duration_seconds_count") == total);
    assert_true(sample(after, "fitd_http_request_duration_seconds_bucket{le=\"+Inf\"}") == total);
    assert_true(sample(after, "fitd_http_request_duration_seconds_bucket{le=\"0.001\"}") <=
                sample(after, "fitd_http_request_duration_seconds_bucket{le=\"10\"}"));
    assert_true(sample(after, "fitd_http_request_duration_seconds_sum") > 0);
    free(before);
    free(after);
}

static void test_training_metrics(void **state)
{
    (void)state;
    char id[64], path[128];
    char *before = scrape(&srv);
    double samples0 = sample(before, "fitd_training_samples_total");
    double epochs0 = sample(before, "fitd_epoch_duration_seconds_count");
    double ok0 = sample(before, "fitd_jobs{state=\"succeeded\"}");
    assert_true(sample(before, "fitd_workers") == 1);
    free(before);

    submit(5, id, sizeof id);
    json_decref(it_wait_job(&srv, id, "succeeded", 120, 50));
    char *after = scrape(&srv);
    promtool_ok(after);
    assert_true(sample(after, "fitd_training_samples_total") == samples0 + 5.0 * DIGITS_TRAIN);
    assert_true(sample(after, "fitd_epoch_duration_seconds_count") == epochs0 + 5);
    assert_true(sample(after, "fitd_epoch_duration_seconds_bucket{le=\"+Inf\"}") == epochs0 + 5);
    assert_true(sample(after, "fitd_epoch_duration_seconds_sum") > 0);
    assert_true(sample(after, "fitd_jobs{state=\"succeeded\"}") == ok0 + 1);
    /* Within 60 s of the epochs: a positive rate. */
    assert_true(sample(after, "fitd_training_samples_per_second") > 0);
    double db = sample(after, "fitd_database_size_bytes");
    assert_true(db >= 4096);
    assert_true((long long)db % 512 == 0);
    free(after);

    /* A long job: running, busy worker; a second one waits in the queue. */
    char longer[64], queued[64];
    submit(5000, longer, sizeof longer);
    json_decref(it_wait_job(&srv, longer, "running", 120, 50));
    submit(3, queued, sizeof queued);
    char *mid = scrape(&srv);
    promtool_ok(mid);
    assert_true(sample(mid, "fitd_jobs{state=\"running\"}") == 1);
    assert_true(sample(mid, "fitd_workers_busy") == 1);
    assert_true(sample(mid, "fitd_queue_depth") == 1);
    assert_true(sample(mid, "fitd_jobs{state=\"queued\"}") == 1);
    free(mid);
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", queued);
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", longer);
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    it_resp_free(&r);
    json_decref(it_wait_job(&srv, longer, "cancelled", 120, 50));
    /* The worker frees its slot right after the job's final write. */
    double busy = 1;
    for (int i = 0; i < 200 && busy != 0; i++) {
        char *t = scrape(&srv);
        busy = sample(t, "fitd_workers_busy");
        free(t);
        if (busy) sleep_ms(25);
    }
    assert_true(busy == 0);
}

/* With --auth-tokens, /metrics needs no token (it holds no tenant data). */
static void test_open_with_auth(void **state)
{
    (void)state;
    it_server a;
    memset(&a, 0, sizeof a);
    char tokens[700];
    snprintf(tokens, sizeof tokens, "%s/tokens", srv.dir);
    const char text[] = "prom-test-token-0123456789abcdef scraper\n";
    assert_int_equal(it_write_file(tokens, text, strlen(text), 0), 0);
    const char *args[] = {"--workers", "1", "--auth-tokens", tokens, NULL};
    assert_int_equal(it_start(&a, args), 0);
    char *t = scrape(&a);
    assert_non_null(strstr(t, "fitd_jobs{state=\"queued\"} 0"));
    free(t);
    it_resp r;
    assert_int_equal(it_get(&a, "/v1/jobs", &r), 0);
    expect_status(&r, 401);
    it_resp_free(&r);
    /* The chart is a /v1 route like any other. */
    assert_int_equal(it_get(&a, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/metrics.svg", &r), 0);
    json_decref(assert_problem(&r, 401));
    it_resp_free(&r);
    it_server with = it_as(&a, "prom-test-token-0123456789abcdef");
    assert_int_equal(it_get(&with, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/metrics.svg", &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(it_stop(&a), 0);
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
        cmocka_unit_test(test_request_counters),
        cmocka_unit_test(test_training_metrics),
        cmocka_unit_test(test_open_with_auth),
    };
    return cmocka_run_group_tests(tests, setup, it_group_teardown);
}
