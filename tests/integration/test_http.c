/*
 * test_http.c — the HTTP layer and the fitd program against a real fitd: routing
 * (404, 405 + Allow, HEAD as GET without the body), 415, 413 from Content-Length, while streaming a chunked
 * body and for a gzipped upload over the limit once inflated, malformed JSON, /healthz, the served API document, request ids, the log
 * format, --help, --version, bad flags, the open-file limit fitted to
 * --max-connections, and a clean stop on SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

static it_server srv;

/* Small limits so the 413 cases need little data. */
static int setup(void **state)
{
    static const char *const args[] = {"--workers", "1", "--max-body-json", "64KiB",
                                       "--max-body-dataset", "1MiB", "--http-threads", "2",
                                       NULL};
    memset(&srv, 0, sizeof srv);
    return it_start(&srv, args);
}

static int teardown(void **state)
{
    /* A clean stop: exit status 0 (under ASan, also no leaks). */
    return it_stop(&srv) == 0 ? 0 : -1;
}

static void expect_problem(const char *method, const char *path, const char *const *headers,
                           const char *body, long status)
{
    it_resp r;
    assert_int_equal(it_request(&srv, method, path, headers, body, body ? strlen(body) : 0, &r),
                     0);
    json_t *doc = assert_problem(&r, status);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "about:blank");
    assert_true(json_is_string(json_object_get(doc, "detail")));
    json_decref(doc);
    it_resp_free(&r);
}

static void test_not_found(void **state)
{
    expect_problem("GET", "/nope", NULL, NULL, 404);
    expect_problem("GET", "/ui", NULL, NULL, 404); /* "/" is the dashboard */
    expect_problem("GET", "/v1", NULL, NULL, 404);
    expect_problem("GET", "/v1/datasets/", NULL, NULL, 404); /* trailing slash */
    expect_problem("GET", "/v1/datasets/a/b", NULL, NULL, 404);
    expect_problem("GET", "/healthz/x", NULL, NULL, 404);
    expect_problem("POST", "/v2/datasets", NULL, NULL, 404);
}

static void expect_405(const char *method, const char *path, const char *allow)
{
    it_resp r;
    assert_int_equal(it_request(&srv, method, path, NULL, NULL, 0, &r), 0);
    json_decref(assert_problem(&r, 405));
    assert_string_equal(r.allow, allow);
    it_resp_free(&r);
}

static void test_method_not_allowed(void **state)
{
    expect_405("PUT", "/v1/datasets", "GET, POST, HEAD");
    expect_405("DELETE", "/v1/datasets", "GET, POST, HEAD");
    expect_405("POST", "/v1/datasets/ds_x", "GET, DELETE, HEAD");
    expect_405("PATCH", "/v1/datasets/ds_x", "GET, DELETE, HEAD");
    expect_405("POST", "/healthz", "GET, HEAD");
    expect_405("DELETE", "/v1/openapi.yaml", "GET, HEAD");
    expect_405("OPTIONS", "/healthz", "GET, HEAD");
    it_resp r; /* no GET there, so no HEAD either (a HEAD reply has no body to check) */
    assert_int_equal(it_request(&srv, "HEAD", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    it_resp_free(&r);
}

/* HEAD where GET is served: GET's status and headers, no body (RFC 9110 9.3.2). */
static void test_head(void **state)
{
    const char *paths[] = {"/healthz", "/v1/datasets", "/v1/openapi.yaml", "/v1/datasets/ds_x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        it_resp g, h;
        char gl[32], hl[32];
        assert_int_equal(it_request(&srv, "GET", paths[i], NULL, NULL, 0, &g), 0);
        assert_int_equal(it_request(&srv, "HEAD", paths[i], NULL, NULL, 0, &h), 0);
        assert_int_equal(h.status, g.status);
        assert_string_equal(h.content_type, g.content_type);
        assert_string_equal(it_header(&h, "Content-Length", hl, sizeof hl),
                            it_header(&g, "Content-Length", gl, sizeof gl));
        assert_int_equal(h.len, 0);
        assert_true(g.len > 0);
        it_resp_free(&g);
        it_resp_free(&h);
    }
}

static void test_unsupported_media_type(void **state)
{
    static const char *const plain[] = {"Content-Type: text/plain", NULL};
    static const char *const xml[] = {"Content-Type: application/xml; charset=utf-8", NULL};
    it_resp r;
    expect_problem("POST", "/v1/datasets", plain, "a,b\n1,2\n", 415);
    /* Bodies are UTF-8: another charset is refused, not misread. */
    static const char *const latin1[] = {"Content-Type: text/csv; charset=ISO-8859-1", NULL};
    static const char *const utf16[] = {"Content-Type: application/json; charset=\"utf-16\"", NULL};
    expect_problem("POST", "/v1/datasets", latin1, "caf\xe9,b\n1,2\n", 415);
    expect_problem("POST", "/v1/jobs", utf16, "{}", 415);
    static const char *const utf8q[] = {"Content-Type: application/json;charset=\"UTF-8\"", NULL};
    assert_int_equal(it_request(&srv, "POST", "/v1/jobs", utf8q, "{}", 2, &r), 0);
    json_decref(assert_problem(&r, 422)); /* read, and found wanting */
    it_resp_free(&r);
    static const char *const binary[] = {"Content-Type: application/octet-stream; charset=binary", NULL};
    assert_int_equal(it_request(&srv, "POST", "/v1/weights", binary, "x", 1, &r), 0);
    json_decref(assert_problem(&r, 422)); /* read as safetensors, and refused as such */
    it_resp_free(&r);
    expect_problem("POST", "/v1/datasets", xml, "<x/>", 415);
    /* No Content-Type at all. */
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets", NULL, NULL, 0, &r), 0);
    json_decref(assert_problem(&r, 415));
    it_resp_free(&r);
    /* Parameters and case do not matter for an accepted type. */
    static const char *const csv[] = {"Content-Type: Text/CSV; charset=utf-8", NULL};
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets?name=t", csv, "a,b\n1,2\n", 8, &r), 0);
    assert_int_equal(r.status, 201);
    it_resp_free(&r);
}

static void test_too_large_content_length(void **state)
{
    size_t n = 100 * 1024; /* > 64 KiB --max-body-json */
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, ' ', n);
    body[n] = 0;
    body[0] = '{';
    body[n - 1] = '}';
    static const char *const json[] = {"Content-Type: application/json", NULL};
    it_resp r;
    /* A JSON dataset over --max-body-json. */
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets", json, body, n, &r), 0);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    /* A job spec over the route's cap (the HTTP layer's own check). */
    assert_int_equal(it_request(&srv, "POST", "/v1/jobs", json, body, n, &r), 0);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    free(body);
}

static void test_too_large_streamed(void **state)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    static const char *const csv[] = {"Content-Type: text/csv", NULL};
    it_resp r;
    size_t sent = 0;
    /* Chunked: no Content-Length, so the cap is found while counting bytes. */
    assert_int_equal(
        it_request_chunked(&srv, "POST", "/v1/jobs", json, "     ", 5, 200 * 1024, &r, &sent), 0);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    /* A streamed dataset upload over --max-body-dataset (1 MiB). */
    assert_int_equal(it_request_chunked(&srv, "POST", "/v1/datasets?name=big", csv, "1,2\n", 4,
                                        2 * 1024 * 1024, &r, &sent),
                     0);
    json_t *doc = assert_problem(&r, 413);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "detail")), "1048576"));
    json_decref(doc);
    it_resp_free(&r);
    /* Nothing was stored. */
    assert_int_equal(it_get(&srv, "/v1/datasets", &r), 0);
    doc = it_json(&r);
    json_t *items = json_object_get(doc, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(items, i), "name")),
                                "big");
    json_decref(doc);
    it_resp_free(&r);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A gzip bomb: 2048 zero images of 32x32 are 2 MiB once inflated, a few KiB on the
 * wire; the 1 MiB --max-body-dataset holds for the inflated size (it was stored). */
static void test_gzip_counts_inflated(void **state)
{
    enum { N = 2048 };
    size_t x_len = 16 + (size_t)N * 1024, y_len = 8 + N, gz_len = 0;
    unsigned char *x = calloc(1, x_len), *y = calloc(1, y_len);
    assert_non_null(x);
    assert_non_null(y);
    x[2] = 0x08;
    x[3] = 3;
    put_be32(x + 4, N);
    put_be32(x + 8, 32);
    put_be32(x + 12, 32);
    y[2] = 0x08;
    y[3] = 1;
    put_be32(y + 4, N);
    void *gz = it_gzip(x, x_len, &gz_len);
    assert_non_null(gz);
    assert_true(gz_len < 64 * 1024);
    it_part parts[] = {{"x", "x.idx.gz", gz, gz_len}, {"y", "y.idx", y, y_len}, {"name", NULL, "bomb", 4}};
    const char *ct = NULL;
    size_t len = 0;
    char *body = it_multipart(parts, 3, &len, &ct);
    const char *const headers[] = {ct, NULL};
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets", headers, body, len, &r), 0);
    json_t *doc = assert_problem(&r, 413);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "detail")), "1048576"));
    json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e0, "pointer")), "/x");
    json_decref(doc);
    it_resp_free(&r);
    assert_int_equal(it_get(&srv, "/v1/datasets", &r), 0);
    assert_null(strstr(r.body, "\"bomb\""));
    it_resp_free(&r);
    free(body);
    free(gz);
    free(x);
    free(y);
}

static void test_malformed_json(void **state)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    const char *cases[] = {"{\"x\": ", "{\"x\": [1,]}", "nul", "{\"a\":1,\"a\":2}", "[1] x"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        it_resp r;
        assert_int_equal(it_request(&srv, "POST", "/v1/datasets", json, cases[i],
                                    strlen(cases[i]), &r),
                         0);
        json_t *doc = assert_problem(&r, 400);
        const char *detail = json_string_value(json_object_get(doc, "detail"));
        assert_non_null(detail);
        assert_non_null(strstr(detail, "line 1"));
        json_t *errors = json_object_get(doc, "errors");
        assert_int_equal(json_array_size(errors), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "pointer")),
                            "");
        json_decref(doc);
        it_resp_free(&r);
    }
}

static int is_hex16(const char *s)
{
    if (strlen(s) != 16) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

static void test_healthz_and_request_ids(void **state)
{
    it_resp a, b;
    assert_int_equal(it_get(&srv, "/healthz", &a), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "application/json");
    json_t *doc = it_json(&a);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    assert_int_equal(it_get(&srv, "/nope", &b), 0);
    assert_true(is_hex16(a.request_id));
    assert_true(is_hex16(b.request_id));
    assert_string_not_equal(a.request_id, b.request_id);

    /* Every log line is one JSON object with ts, level and msg; the request's log
     * line (written when MHD reports the request complete, possibly just after the
     * client has its answer) carries its id and status. */
    int seen_a = 0, seen_listening = 0;
    for (int attempt = 0; attempt < 250 && !seen_a; attempt++) {
        if (attempt) usleep(20000);
        char *log = read_file(srv.log_path, NULL);
        assert_non_null(log);
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
            json_error_t e;
            json_t *o = json_loads(line, 0, &e);
            if (!o) fail_msg("log line is not JSON: %s", line);
            assert_true(json_is_string(json_object_get(o, "ts")));
            assert_true(json_is_string(json_object_get(o, "level")));
            const char *msg = json_string_value(json_object_get(o, "msg"));
            assert_non_null(msg);
            if (strcmp(msg, "listening") == 0) {
                seen_listening = 1;
                assert_int_equal(json_integer_value(json_object_get(o, "port")), srv.port);
            }
            const char *rid = json_string_value(json_object_get(o, "request_id"));
            if (rid && strcmp(rid, a.request_id) == 0 && strcmp(msg, "request") == 0) {
                seen_a = 1;
                assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
                assert_string_equal(json_string_value(json_object_get(o, "path")), "/healthz");
                /* The matched route's pattern (tests/run.sh's openapi check uses it). */
                assert_string_equal(json_string_value(json_object_get(o, "route")), "/healthz");
            }
            if (rid && strcmp(rid, b.request_id) == 0 && strcmp(msg, "request") == 0) {
                assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
                assert_true(json_is_null(json_object_get(o, "route"))); /* no route matched */
            }
            json_decref(o);
        }
        free(log);
    }
    assert_true(seen_listening);
    assert_true(seen_a);
    it_resp_free(&a);
    it_resp_free(&b);
}

static void test_openapi_served(void **state)
{
    size_t len = 0;
    char *file = read_file("api-docs/openapi.yaml", &len);
    assert_non_null(file);
    it_resp r;
    assert_int_equal(it_get(&srv, "/v1/openapi.yaml", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/yaml");
    assert_int_equal(r.len, len);
    assert_memory_equal(r.body, file, len);
    it_resp_free(&r);
    free(file);
}

static void test_help_and_version(void **state)
{
    char *out = NULL;
    static const char *const help[] = {"--help", NULL};
    assert_int_equal(it_run_fitd(help, &out), 0);
    const char *want[] = {"--listen", "FITD_LISTEN", "127.0.0.1:8080", "--db", "FITD_DB",
                          "./var/fitd.db", "--workers", "FITD_WORKERS", "--http-threads",
                          "--max-body-json", "--max-body-dataset", "--max-queued", "--max-epochs",
                          "--max-layers", "--max-units", "--max-params", "--max-batch-size",
                          "--log-level", "FITD_LOG_LEVEL", "--port-file", "train"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) fail_msg("--help lacks %s:\n%s", want[i], out);
    free(out);

    static const char *const serve_help[] = {"serve", "--help", NULL};
    assert_int_equal(it_run_fitd(serve_help, &out), 0);
    assert_non_null(strstr(out, "FITD_DB"));
    free(out);

    static const char *const version[] = {"--version", NULL};
    assert_int_equal(it_run_fitd(version, &out), 0);
    assert_memory_equal(out, "fitd ", 5);
    const char *libs[] = {"(git ", "libmicrohttpd 0.", "jansson 2.", "sqlite 3.", "zlib 1.",
                          "openblas core "};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
        if (!strstr(out, libs[i])) fail_msg("--version lacks %s:\n%s", libs[i], out);
    free(out);
}

static void test_bad_flags(void **state)
{
    struct {
        const char *args[4];
        const char *message;
    } cases[] = {
        {{"--bogus", NULL}, "unknown option --bogus"},
        {{"--workers", "abc", NULL}, "--workers"},
        {{"--workers", "0", NULL}, "--workers"},
        {{"--listen", "127.0.0.1", NULL}, "--listen"},
        {{"--listen", "127.0.0.1:70000", NULL}, "--listen"},
        {{"--max-body-json", "12Q", NULL}, "--max-body-json"},
        {{"--log-level", "loud", NULL}, "--log-level"},
        {{"--db", NULL}, "needs a value"},
        {{"serve", "extra", NULL}, "unexpected argument"},
        {{"frobnicate", NULL}, "unknown command"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int rc = it_run_fitd(cases[i].args, &out);
        if (rc != 2 || !strstr(out, cases[i].message))
            fail_msg("case %zu: exit %d, output: %s", i, rc, out);
        free(out);
    }
    /* A bad environment twin stops start-up the same way. */
    setenv("FITD_WORKERS", "-3", 1);
    char *out = NULL;
    static const char *const none[] = {NULL};
    int rc = it_run_fitd(none, &out);
    unsetenv("FITD_WORKERS");
    if (rc != 2 || !strstr(out, "FITD_WORKERS")) fail_msg("env: exit %d, output: %s", rc, out);
    free(out);
}

/* The soft open-file limit of a running process, from /proc. */
static unsigned long long soft_nofile(pid_t pid)
{
    char path[64], line[256];
    unsigned long long soft = 0;
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* fails the caller's check, after it stopped fitd */
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Max open files", 14) == 0) soft = strtoull(line + 14, NULL, 10);
    fclose(f);
    return soft;
}

/* fitd raises its soft open-file limit to what --max-connections needs besides
 * its own descriptors (64 + 2 per worker and one more + 4 per HTTP thread: 76
 * here), as far as the hard limit goes, and says so in its log when it falls
 * short: at the limit accept() pauses, /healthz included. */
static void test_fd_limit(void **state)
{
    (void)state;
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 376) skip();
    static const char *const a300[] = {"--workers", "1", "--http-threads", "2",
                                       "--max-connections", "300", NULL};
    static const char *const amax[] = {"--workers", "1", "--http-threads", "2",
                                       "--max-connections", "100000", NULL};
    const char *const *args[2] = {a300, amax};
    for (int k = 0; k < 2; k++) {
        it_server s;
        memset(&s, 0, sizeof s);
        struct rlimit low = {256, saved.rlim_max};
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0); /* inherited by fitd */
        int started = it_start(&s, args[k]);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0); /* before any assertion */
        assert_int_equal(started, 0);
        unsigned long long soft = soft_nofile(s.pid);
        char *log = read_file(s.log_path, NULL);
        int warned = log && strstr(log, "open-file limit is below --max-connections") != NULL;
        free(log);
        assert_int_equal(it_stop(&s), 0);
        if (k == 0) {
            assert_int_equal(soft, 376);
            assert_false(warned);
        } else if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 100076) {
            assert_int_equal(soft, saved.rlim_max); /* as far as it goes */
            assert_true(warned);
        } else {
            assert_int_equal(soft, 100076); /* the hard limit allows it all */
            assert_false(warned);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_unsupported_media_type),
        cmocka_unit_test(test_too_large_content_length),
        cmocka_unit_test(test_too_large_streamed),
        cmocka_unit_test(test_gzip_counts_inflated),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_healthz_and_request_ids),
        cmocka_unit_test(test_openapi_served),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_fd_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
