/*
 * test_soak.c — the short soak of `make test`: 200 small jobs through one fitd
 * (50 under sanitizers), every one must succeed, and fitd's VmRSS after them must
 * be within 10 % of its VmRSS after the first job (not checked under sanitizers,
 * whose quarantine and shadow memory grow by design). The long version, 1,000
 * jobs, is tests/soak/soak.sh (`make soak`).
 *
 * What used to grow (tests/README.md, soak row): each SQLite connection's page
 * cache (one per HTTP thread and per worker, 2 MiB each by default) filled as the
 * database grew; now 128 KiB each, and a worker hands its job's memory back
 * (sqlite3_db_release_memory, malloc_trim) after every job; glibc keeps one
 * malloc arena per core instead of up to eight. What remains is bounded, not per
 * job: the caches filling up to their 128 KiB, and each arena's peak (a list of
 * 1,000 jobs leaves about a megabyte there, so the lists here use pages of 100, as
 * soak.sh does).
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

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* VmRSS of a process in kB, from /proc. */
static long vm_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    assert_true(kb > 0);
    return kb;
}

/* Jobs with this status (following cursors). */
static long count_status(const it_server *s, const char *status)
{
    char path[256], cursor[128] = "";
    long n = 0;
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs?status=%s&limit=100%s%s", status,
                 cursor[0] ? "&cursor=" : "", cursor);
        it_resp r = {0};
        assert_int_equal(it_get(s, path, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *o = it_json(&r);
        assert_non_null(o);
        n += (long)json_array_size(json_object_get(o, "items"));
        const char *next = json_string_value(json_object_get(o, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(o);
        it_resp_free(&r);
        if (!cursor[0]) return n;
    }
}

static void submit(const it_server *s, const char *spec, char *id, size_t cap)
{
    it_resp r = {0};
    assert_int_equal(it_post_json(s, "/v1/jobs", spec, &r), 0);
    if (r.status != 202) fprintf(stderr, "submit: %ld %s\n", r.status, r.body ? r.body : "");
    assert_int_equal(r.status, 202);
    if (id) {
        json_t *o = it_json(&r);
        snprintf(id, cap, "%s", json_string_value(json_object_get(o, "id")));
        json_decref(o);
    }
    it_resp_free(&r);
}

/* Wait until no job is queued or running. */
static void wait_idle(const it_server *s)
{
    for (int i = 0; i < 6000; i++) {
        if (count_status(s, "queued") == 0 && count_status(s, "running") == 0) return;
        nap_ms(100);
    }
    fail_msg("jobs still unfinished after 10 minutes");
}

static it_server srv; /* stopped by teardown, also when an assertion fails */

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    return it_start(&srv, NULL);
}

static int teardown(void **state)
{
    (void)state;
    return it_stop(&srv) == 0 ? 0 : -1;
}

static void test_soak_short(void **state)
{
    (void)state;
    int sanitized = getenv("FITD_TEST_SANITIZED") != NULL;
    int n_jobs = sanitized ? 50 : 200;

    /* 200 rows, 4 features, a regression target (as soak.sh). */
    char *csv = malloc(200 * 64 + 32);
    assert_non_null(csv);
    size_t len = (size_t)sprintf(csv, "a,b,c,d,y\n");
    for (int i = 0; i < 200; i++) {
        double a = (i * 37 % 101) / 101.0, b = (i * 11 % 53) / 53.0, c = (i * 7 % 29) / 29.0,
               d = (i % 17) / 17.0;
        len += (size_t)sprintf(csv + len, "%.5f,%.5f,%.5f,%.5f,%.5f\n", a, b, c, d,
                               0.5 * a - 0.25 * b + c * d);
    }
    it_resp r = {0};
    char ds[64], spec[1024], first[64];
    assert_int_equal(it_upload_csv(&srv, "/v1/datasets?name=soak&label=y", csv, len, ds, sizeof ds),
                     0);
    free(csv);
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"}, \"model\": {\"input_shape\": [4], \"layers\": ["
             "{\"type\": \"dense\", \"units\": 16, \"activation\": \"relu\"},"
             "{\"type\": \"dense\", \"units\": 1}]},"
             "\"compile\": {\"optimizer\": \"adam\", \"loss\": \"mse\"},"
             "\"fit\": {\"epochs\": 2, \"batch_size\": 32, \"validation_split\": 0.2, \"seed\": 1}}",
             ds);

    submit(&srv, spec, first, sizeof first);
    wait_idle(&srv);
    /* The HTTP threads open their connections lazily: let them all do so first. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", first);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(it_get(&srv, path, &r), 0);
        assert_int_equal(r.status, 200);
        it_resp_free(&r);
    }
    long rss0 = vm_rss_kb(srv.pid);

    for (int i = 1; i < n_jobs; i++) {
        submit(&srv, spec, NULL, 0);
        if (i % 50 == 0) wait_idle(&srv);
    }
    wait_idle(&srv);
    long rss1 = vm_rss_kb(srv.pid);
    long ok = count_status(&srv, "succeeded");
    fprintf(stderr, "soak: %d jobs, %ld succeeded; VmRSS %ld kB after the first, %ld kB after "
            "all (%+.1f %%)\n", n_jobs, ok, rss0, rss1, (double)(rss1 - rss0) * 100.0 / (double)rss0);
    assert_int_equal(ok, n_jobs);
    if (!sanitized) assert_true(rss1 * 10 <= rss0 * 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soak_short, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
