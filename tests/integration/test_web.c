/*
 * test_web.c — the dashboard's routes (server/api_web.c) against a real fitd
 * started with --auth-tokens: GET / is server/web/index.html and GET /ui/{file}
 * each file of server/web/, byte for byte, with the right Content-Type, a
 * Content-Security-Policy without inline script or remote origins, an ETag
 * that If-None-Match turns into a 304, and no token needed — while /v1 still
 * needs one. Unknown, hidden and unservable names are 404.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "support.h"

static it_server srv;
static const char token[] = "web-test-token-0123456789abcdef";

/* GET `path` with the NULL-terminated "Name: value" headers (may be NULL), without
 * the server's token: the pages are public. */
static void web_get(const char *path, const char *const *headers, it_resp *r)
{
    it_server anon = it_as(&srv, "");
    if (it_request(&anon, "GET", path, headers, NULL, 0, r) != 0) fail_msg("GET %s failed", path);
}

/* The page routes' common headers: CSP (self only, no inline script, nothing
 * remote), revalidation, an ETag, nosniff. *etag receives the ETag. */
static void assert_web_headers(const it_resp *r, char *etag, size_t etag_len)
{
    char v[1024];
    it_header(r, "Content-Security-Policy", v, sizeof v);
    if (!strstr(v, "default-src 'none'") || !strstr(v, "script-src 'self'") ||
        strstr(v, "unsafe-inline") || strstr(v, "unsafe-eval") || strstr(v, "http:") ||
        strstr(v, "https:") || strstr(v, "*"))
        fail_msg("Content-Security-Policy: '%s'", v);
    assert_string_equal(it_header(r, "Cache-Control", v, sizeof v), "no-cache");
    assert_string_equal(it_header(r, "X-Content-Type-Options", v, sizeof v), "nosniff");
    it_header(r, "ETag", etag, etag_len);
    if (strlen(etag) < 3 || etag[0] != '"' || etag[strlen(etag) - 1] != '"')
        fail_msg("ETag: '%s'", etag);
}

/* GET `path` and check it is the repository file `file`, byte for byte, served
 * as `type`. *etag receives its ETag. */
static void expect_file(const char *path, const char *file, const char *type, char *etag,
                        size_t etag_len)
{
    it_resp r;
    char v[256];
    size_t want_len = 0;
    char *want = read_file(file, &want_len);
    if (!want) fail_msg("cannot read %s (tests run from the repository root)", file);
    web_get(path, NULL, &r);
    if (r.status != 200) fail_msg("GET %s: %ld %s", path, r.status, r.body ? r.body : "");
    assert_string_equal(it_header(&r, "Content-Type", v, sizeof v), type);
    assert_web_headers(&r, etag, etag_len);
    assert_int_equal(r.len, want_len);
    assert_memory_equal(r.body, want, want_len);
    free(want);
    it_resp_free(&r);
}

static void test_index_is_the_page(void **state)
{
    char etag[128];
    expect_file("/", "server/web/index.html", "text/html; charset=utf-8", etag, sizeof etag);
    /* The page loads its code from /ui/ and has none inline (the CSP forbids it). */
    it_resp r;
    web_get("/", NULL, &r);
    assert_non_null(strstr(r.body, "<script src=\"/ui/app.js\""));
    assert_null(strstr(r.body, "<script>"));
    assert_null(strstr(r.body, " onclick="));
    assert_null(strstr(r.body, "//cdn"));
    it_resp_free(&r);
}

static void test_assets(void **state)
{
    char e_js[128], e_css[128], e_svg[128], e_html[128];
    expect_file("/ui/app.js", "server/web/app.js", "text/javascript; charset=utf-8", e_js,
                sizeof e_js);
    expect_file("/ui/style.css", "server/web/style.css", "text/css; charset=utf-8", e_css,
                sizeof e_css);
    expect_file("/ui/favicon.svg", "server/web/favicon.svg", "image/svg+xml", e_svg,
                sizeof e_svg);
    expect_file("/ui/index.html", "server/web/index.html", "text/html; charset=utf-8", e_html,
                sizeof e_html);
    /* Different bytes, different tags. */
    assert_string_not_equal(e_js, e_css);
    assert_string_not_equal(e_js, e_html);
}

/* Every /ui/ reference in index.html resolves (a renamed file breaks the page). */
static void test_page_references_resolve(void **state)
{
    size_t len = 0;
    char *page = read_file("server/web/index.html", &len);
    assert_non_null(page);
    int n = 0;
    for (const char *p = strstr(page, "\"/ui/"); p; p = strstr(p + 1, "\"/ui/")) {
        char path[128];
        const char *end = strchr(p + 1, '"');
        assert_non_null(end);
        size_t plen = (size_t)(end - (p + 1));
        assert_true(plen < sizeof path);
        memcpy(path, p + 1, plen);
        path[plen] = 0;
        it_resp r;
        web_get(path, NULL, &r);
        if (r.status != 200) fail_msg("index.html refers to %s: %ld", path, r.status);
        it_resp_free(&r);
        n++;
    }
    assert_true(n >= 3); /* app.js, style.css, favicon.svg */
    free(page);
}

static void test_unknown_assets_404(void **state)
{
    static const char *const paths[] = {
        "/ui/nope.js",        /* no such file */
        "/ui/.hidden.js",     /* a dot file */
        "/ui/app.exe",        /* a kind not served */
        "/ui/app",            /* no extension */
        "/ui/..%2Fapi-docs%2Fopenapi.yaml",
        "/ui/%2e%2e%2fmigrations%2f0001_init.sql",
        "/ui/a%20b.js",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        it_resp r;
        assert_int_equal(it_get(&srv, paths[i], &r), 0);
        if (r.status != 404) fail_msg("GET %s: %ld, expected 404", paths[i], r.status);
        json_decref(assert_problem(&r, 404));
        it_resp_free(&r);
    }
}

static void test_if_none_match(void **state)
{
    const char *paths[] = {"/", "/ui/app.js"};
    for (size_t i = 0; i < 2; i++) {
        it_resp r;
        char etag[128], again[128], hv[300];
        web_get(paths[i], NULL, &r);
        assert_int_equal(r.status, 200);
        assert_web_headers(&r, etag, sizeof etag);
        it_resp_free(&r);

        /* The same tag: 304, no body, the tag again. */
        snprintf(hv, sizeof hv, "If-None-Match: %s", etag);
        const char *h1[] = {hv, NULL};
        web_get(paths[i], h1, &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.len, 0);
        assert_string_equal(it_header(&r, "ETag", again, sizeof again), etag);
        it_resp_free(&r);

        /* In a list, weak form (RFC 9110's weak comparison). */
        snprintf(hv, sizeof hv, "If-None-Match: \"0000000000000000\", W/%s", etag);
        const char *h2[] = {hv, NULL};
        web_get(paths[i], h2, &r);
        assert_int_equal(r.status, 304);
        it_resp_free(&r);

        /* Another tag: the file again. */
        const char *h3[] = {"If-None-Match: \"0000000000000000\"", NULL};
        web_get(paths[i], h3, &r);
        assert_int_equal(r.status, 200);
        assert_true(r.len > 0);
        it_resp_free(&r);
    }
}

/* The page is open; the data behind it is not. */
static void test_open_page_guarded_api(void **state)
{
    it_resp r;
    web_get("/", NULL, &r);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
    const char *bad[] = {"Authorization: Bearer not-a-known-token-at-all", NULL};
    web_get("/ui/app.js", bad, &r);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);

    it_resp a;
    it_server anon = it_as(&srv, "");
    assert_int_equal(it_get(&anon, "/v1/jobs", &a), 0);
    json_decref(assert_problem(&a, 401));
    it_resp_free(&a);
    assert_int_equal(it_get(&srv, "/v1/jobs", &a), 0);
    assert_int_equal(a.status, 200);
    it_resp_free(&a);
}

static void test_other_methods(void **state)
{
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", "/", NULL, NULL, 0, &r), 0);
    json_decref(assert_problem(&r, 405));
    assert_string_equal(r.allow, "GET, HEAD");
    it_resp_free(&r);
}

static int setup(void **state)
{
    char path[700];
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return -1;
    char tmpl[] = "/tmp/fitd-web-XXXXXX";
    if (!mkdtemp(tmpl)) return -1;
    snprintf(path, sizeof path, "%s/tokens", tmpl);
    char text[128];
    snprintf(text, sizeof text, "%s web\n", token);
    if (it_write_file(path, text, strlen(text), 0) != 0) return -1;
    snprintf(srv.token, sizeof srv.token, "%s", token);
    const char *args[] = {"--workers", "1", "--auth-tokens", path, NULL};
    int rc = it_start(&srv, args);
    remove(path);
    rmdir(tmpl);
    return rc;
}

static int teardown(void **state)
{
    int rc = it_stop(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_is_the_page),
        cmocka_unit_test(test_assets),
        cmocka_unit_test(test_page_references_resolve),
        cmocka_unit_test(test_unknown_assets_404),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_open_page_guarded_api),
        cmocka_unit_test(test_other_methods),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
