/*
 * test_auth.c — --auth-tokens against a real fitd: 401 on every /v1 route (taken
 * from the server's own route table) for a missing header, another scheme, an
 * unknown, empty or malformed token; /healthz open; tenants isolated (another
 * tenant's dataset or job answers 404 byte-for-byte like an unknown id, lists are
 * disjoint, a submission naming another tenant's dataset fails like a missing
 * one, Idempotency-Keys are per tenant); tokens never in the log; a malformed
 * token file refused at start-up with exit 2; the warning for a non-loopback
 * address without authentication. Also the auth_* functions directly (header
 * parsing, loopback detection).
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

#include "api.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "support.h"

#define TOK_A "alice-token-0123456789abcdef"
#define TOK_A2 "alice-second-token-ZZZZ9999"
#define TOK_B "bob-token-abcdefghijklmnop"
/* Well-formed ids that do not exist (same length as real ones). */
#define NO_DS "ds_aaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NO_JOB "job_aaaaaaaaaaaaaaaaaaaaaaaaaa"
/* The challenge when a bearer token was sent but is not valid. */
#define INVALID "Bearer realm=\"fitd\", error=\"invalid_token\""

/* The comment, blank-line, tab, trailing-comment and CRLF forms are all here. */
static const char tokens_text[] = "# fitd tokens: TOKEN TENANT\n"
                                  TOK_A " alice\n"
                                  "\t" TOK_A2 "\talice   # rotated in\n"
                                  "\n"
                                  "   # indented comment\n"
                                  TOK_B " bob\r\n";

static it_server srv;      /* fitd with --auth-tokens */
static char tmpdir[512];   /* the tokens file and the bad files */
static char tokens_path[600];

/* Tokens sent in failed attempts: none may appear in the log either. */
static const char *const bogus_tokens[] = {"unknown-token-0123456789", "x", TOK_A "x",
                                           "alice-token-0123456789abcde", NULL};

/* ---------------------------------------------------------------- helpers */

static void write_text(const char *path, const char *text)
{
    assert_int_equal(it_write_file(path, text, strlen(text), 0), 0);
}

static it_resp req(const it_server *s, const char *method, const char *path, const char *json,
                   const char *const *headers)
{
    it_resp r;
    const char *h[8];
    int n = 0;
    if (json) h[n++] = "Content-Type: application/json";
    for (int i = 0; headers && headers[i] && n < 7; i++) h[n++] = headers[i];
    h[n] = NULL;
    assert_int_equal(it_request(s, method, path, h, json, json ? strlen(json) : 0, &r), 0);
    return r;
}

/* POST a small JSON dataset as `s`'s tenant; its id into id. */
static void upload(const it_server *s, const char *name, char *id, size_t id_len)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"x\":[[0,0],[0,1],[1,0],[1,1]],\"y\":[0,1,1,0]}", name);
    it_resp r = req(s, "POST", "/v1/datasets", body, NULL);
    expect_status(&r, 201);
    json_t *o = it_json(&r);
    assert_non_null(o);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(o, "id")));
    assert_int_equal(strncmp(id, "ds_", 3), 0);
    json_decref(o);
    it_resp_free(&r);
}

static char *job_spec(const char *train)
{
    char *s = malloc(512);
    assert_non_null(s);
    snprintf(s, 512,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[2],\"layers\":"
             "[{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]},"
             "\"compile\":{\"optimizer\":\"sgd\",\"loss\":\"sparse_categorical_crossentropy\"},"
             "\"fit\":{\"epochs\":2,\"batch_size\":4,\"seed\":1}}",
             train);
    return s;
}

/* Submit a job on `train` as `s`'s tenant; its id into id. */
static void submit(const it_server *s, const char *train, const char *const *headers, char *id,
                   size_t id_len)
{
    char *spec = job_spec(train);
    it_resp r = req(s, "POST", "/v1/jobs", spec, headers);
    free(spec);
    expect_status(&r, 202);
    json_t *o = it_json(&r);
    assert_non_null(o);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(o, "id")));
    assert_int_equal(strncmp(id, "job_", 4), 0);
    json_decref(o);
    it_resp_free(&r);
}

static void wait_succeeded(const it_server *s, const char *job)
{
    json_decref(it_wait_job(s, job, "succeeded", 60 * it_slow(), 20));
}

/* `text` with every `from` replaced by `to` (same length), malloc'ed. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    assert_int_equal(strlen(from), strlen(to));
    char *out = strdup(text);
    assert_non_null(out);
    size_t n = strlen(from);
    for (char *p = strstr(out, from); p; p = strstr(p + n, from)) memcpy(p, to, n);
    return out;
}

/* The reply to another tenant's `foreign` id must be the reply to the unknown id
 * `unknown`: same status, content type, and body once the ids are swapped. */
static void expect_same_as_unknown(const it_server *s, const char *method, const char *prefix,
                                   const char *suffix, const char *foreign, const char *unknown,
                                   const char *json, long status)
{
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s%s%s", prefix, foreign, suffix);
    snprintf(p2, sizeof p2, "%s%s%s", prefix, unknown, suffix);
    it_resp a = req(s, method, p1, json, NULL);
    it_resp b = req(s, method, p2, json, NULL);
    expect_status(&a, status);
    expect_status(&b, status);
    assert_string_equal(a.content_type, b.content_type);
    char *swapped = replace_all(a.body, foreign, unknown);
    if (strcmp(swapped, b.body) != 0)
        fail_msg("%s %s differs from the unknown id's reply:\n  %s\n  %s", method, p1, a.body,
                 b.body);
    assert_null(strstr(a.body, "alice"));
    assert_null(strstr(a.body, "bob"));
    free(swapped);
    it_resp_free(&a);
    it_resp_free(&b);
}

/* The ids in a list reply's items, comma-joined. */
static void list_ids(const it_server *s, const char *path, char *out, size_t len)
{
    it_resp r = req(s, "GET", path, NULL, NULL);
    expect_status(&r, 200);
    json_t *o = it_json(&r);
    json_t *items = json_object_get(o, "items");
    assert_true(json_is_array(items));
    out[0] = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", n ? "," : "",
                 json_string_value(json_object_get(it, "id")));
    }
    json_decref(o);
    it_resp_free(&r);
}

/* ---------------------------------------------------------------- set-up */

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/fitd-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tmpdir);
    if (it_write_file(tokens_path, tokens_text, strlen(tokens_text), 0) != 0) return -1;
    const char *args[] = {"--workers", "1", "--log-level", "debug", "--auth-tokens", tokens_path,
                          NULL};
    memset(&srv, 0, sizeof srv);
    return it_start(&srv, args);
}

static int group_teardown(void **state)
{
    int rc = it_stop(&srv) == 0 ? 0 : -1;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (tmpdir[0] && system(cmd) != 0) rc = -1;
    return rc;
}

/* ---------------------------------------------------------------- 401 */

/* Every /v1 route of the server as main builds it, with each kind of bad
 * credentials: 401 problem, the right WWW-Authenticate, nothing done. */
static void test_401_on_every_v1_route(void **state)
{
    srv_config cfg;
    config_defaults(&cfg);
    api_ctx ctx = {.cfg = &cfg, .pool = NULL};
    http_config hc = {.max_body_default = cfg.max_body_json, .db_path = cfg.db_path, .app = &ctx};
    http_server *table = http_server_new(&hc);
    assert_non_null(table);
    assert_int_equal(api_datasets_register(table), 0);
    assert_int_equal(api_jobs_register(table), 0);

    static const struct {
        const char *header; /* NULL = none */
        const char *www;
    } cases[] = {
        {NULL, "Bearer realm=\"fitd\""},
        {"Authorization: Basic YWxpY2U6c2VjcmV0", "Bearer realm=\"fitd\""},
        {"Authorization: Token " TOK_A, "Bearer realm=\"fitd\""},
        {"Authorization: Bearer unknown-token-0123456789", INVALID},
        {"Authorization: Bearer " TOK_A "x", INVALID},
        {"Authorization: Bearer alice-token-0123456789abcde", INVALID},
        {"Authorization: Bearer x", INVALID},
        {"Authorization: Bearer " TOK_A " " TOK_B, INVALID},
        {"Authorization: Bearer \"" TOK_A "\"", INVALID},
        {"Authorization: Bearer ", INVALID},
        {"Authorization: Bearer", INVALID},
        {"Authorization: BearerX " TOK_A, "Bearer realm=\"fitd\""},
    };
    int n_routes = http_server_route_count(table), n_v1 = 0;
    for (int i = 0; i < n_routes; i++) {
        const char *method = NULL, *pattern = NULL;
        assert_int_equal(http_server_route_at(table, i, &method, &pattern), 0);
        if (strncmp(pattern, "/v1/", 4) != 0) continue;
        n_v1++;
        char path[256];
        const char *brace = strchr(pattern, '{');
        if (brace) {
            const char *close = strchr(brace, '}');
            snprintf(path, sizeof path, "%.*s%s%s", (int)(brace - pattern), pattern,
                     strncmp(pattern, "/v1/jobs", 8) == 0 ? NO_JOB : NO_DS, close + 1);
        } else {
            snprintf(path, sizeof path, "%s", pattern);
        }
        const char *json = strcmp(method, "POST") == 0 ? "{\"inputs\": [[0, 0]]}" : NULL;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            const char *h[] = {cases[k].header, NULL};
            it_resp r = req(&srv, method, path, json, cases[k].header ? h : NULL);
            if (r.status != 401)
                fail_msg("%s %s with %s: %ld %s", method, path,
                         cases[k].header ? cases[k].header : "no header", r.status, r.body);
            json_t *doc = assert_problem(&r, 401);
            assert_string_equal(json_string_value(json_object_get(doc, "title")), "Unauthorized");
            assert_string_equal(r.www_authenticate, cases[k].www);
            json_decref(doc);
            it_resp_free(&r);
        }
    }
    http_server_free(table);
    assert_true(n_v1 >= 12); /* every documented /v1 operation, openapi.yaml included */

    /* Nothing was created by any of it. */
    it_server a = it_as(&srv, TOK_A);
    char ids[4096];
    list_ids(&a, "/v1/datasets", ids, sizeof ids);
    list_ids(&a, "/v1/jobs", ids + strlen(ids), sizeof ids - strlen(ids));
    assert_string_equal(ids, "");
}

/* /healthz stays open; an unknown path is 404 and a wrong method 405 whoever
 * asks (the routing answer comes first, as for every path); a large upload
 * without a token is refused without being read into anything. */
static void test_open_and_routing(void **state)
{
    it_resp r = req(&srv, "GET", "/healthz", NULL, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);
    r = req(&srv, "GET", "/v1/nope", NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    r = req(&srv, "PUT", "/v1/jobs", NULL, NULL);
    json_decref(assert_problem(&r, 405));
    it_resp_free(&r);

    /* Expect: 100-continue, as a client should send a large body: the 401 comes
     * before any of it (without it, the refusal races the upload and the client
     * may see the connection reset instead of the reply). */
    size_t sent = 0;
    const char *h[] = {"Content-Type: text/csv", "Expect: 100-continue", NULL};
    assert_int_equal(it_request_chunked(&srv, "POST", "/v1/datasets?name=big", h, "1,2,3\n", 6,
                                        (size_t)2 << 20, &r, &sent),
                     0);
    json_decref(assert_problem(&r, 401));
    it_resp_free(&r);
    assert_int_equal(sent, 0); /* refused before the client sent a byte of the body */

    /* And with a token the same server answers. */
    it_server a = it_as(&srv, TOK_A);
    r = req(&a, "GET", "/v1/openapi.yaml", NULL, NULL);
    expect_status(&r, 200);
    assert_non_null(strstr(r.body, "bearerAuth"));
    it_resp_free(&r);
    /* The scheme is case-insensitive; spaces around the token are allowed. */
    const char *h2[] = {"Authorization: bearer   " TOK_B "  ", NULL};
    r = req(&srv, "GET", "/v1/datasets", NULL, h2);
    expect_status(&r, 200);
    it_resp_free(&r);
}

/* ---------------------------------------------------------------- isolation */

static void test_tenants_are_isolated(void **state)
{
    it_server a = it_as(&srv, TOK_A), a2 = it_as(&srv, TOK_A2), b = it_as(&srv, TOK_B);
    char da[64], db[64], ja[64], jb[64], ids[1024], ids2[1024];
    upload(&a, "alice-data", da, sizeof da);
    upload(&b, "bob-data", db, sizeof db);
    submit(&a, da, NULL, ja, sizeof ja);
    submit(&b, db, NULL, jb, sizeof jb);
    wait_succeeded(&a, ja);
    wait_succeeded(&b, jb);

    /* Lists: own resources only; alice's two tokens see the same things. */
    list_ids(&a, "/v1/datasets", ids, sizeof ids);
    assert_string_equal(ids, da);
    list_ids(&a2, "/v1/datasets", ids2, sizeof ids2);
    assert_string_equal(ids2, da);
    list_ids(&b, "/v1/datasets", ids, sizeof ids);
    assert_string_equal(ids, db);
    list_ids(&a, "/v1/jobs", ids, sizeof ids);
    assert_string_equal(ids, ja);
    list_ids(&b, "/v1/jobs?status=succeeded", ids, sizeof ids);
    assert_string_equal(ids, jb);

    /* Every route with an id: bob's answers alice exactly as an unknown id does. */
    const char *predict = "{\"inputs\": [[0, 1]]}";
    expect_same_as_unknown(&a, "GET", "/v1/datasets/", "", db, NO_DS, NULL, 404);
    expect_same_as_unknown(&a, "DELETE", "/v1/datasets/", "", db, NO_DS, NULL, 404);
    expect_same_as_unknown(&a, "GET", "/v1/jobs/", "", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&a, "POST", "/v1/jobs/", "/cancel", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&a, "GET", "/v1/jobs/", "/metrics", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&a, "GET", "/v1/jobs/", "/weights", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&a, "GET", "/v1/jobs/", "/weights?format=json", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&a, "POST", "/v1/jobs/", "/predict", jb, NO_JOB, predict, 404);
    expect_same_as_unknown(&a, "DELETE", "/v1/jobs/", "", jb, NO_JOB, NULL, 404);
    expect_same_as_unknown(&b, "DELETE", "/v1/jobs/", "", ja, NO_JOB, NULL, 404);

    /* A submission naming bob's dataset fails exactly like a missing dataset. */
    char *spec_foreign = job_spec(db), *spec_missing = job_spec(NO_DS);
    it_resp r1 = req(&a, "POST", "/v1/jobs", spec_foreign, NULL);
    it_resp r2 = req(&a, "POST", "/v1/jobs", spec_missing, NULL);
    expect_status(&r1, 422);
    expect_status(&r2, 422);
    char *swapped = replace_all(r1.body, db, NO_DS);
    assert_string_equal(swapped, r2.body);
    free(swapped);
    free(spec_foreign);
    free(spec_missing);
    it_resp_free(&r1);
    it_resp_free(&r2);

    /* Nothing of bob's was touched; the owners still reach everything. */
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets/%s", db);
    it_resp r = req(&b, "GET", path, NULL, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", jb);
    r = req(&b, "GET", path, NULL, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", ja);
    r = req(&a2, "POST", path, predict, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", ja);
    r = req(&a, "GET", path, NULL, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);

    /* Idempotency keys are per tenant: the same key and body make one job per
     * tenant, and each tenant's replay returns its own job. */
    const char *key[] = {"Idempotency-Key: shared-key-1", NULL};
    char ka[64], kb[64], ka2[64];
    submit(&a, da, key, ka, sizeof ka);
    submit(&b, db, key, kb, sizeof kb);
    assert_string_not_equal(ka, kb);
    char *spec = job_spec(da);
    r = req(&a2, "POST", "/v1/jobs", spec, key);
    free(spec);
    expect_status(&r, 202);
    json_t *o = it_json(&r);
    snprintf(ka2, sizeof ka2, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
    assert_string_equal(ka, ka2);
    wait_succeeded(&a, ka);
    wait_succeeded(&b, kb);

    /* Cleanup by the owners works: deleting is theirs to do. */
    snprintf(path, sizeof path, "/v1/jobs/%s", jb);
    r = req(&b, "DELETE", path, NULL, NULL);
    expect_status(&r, 204);
    it_resp_free(&r);
}

/* Last in the group: every line fitd wrote so far (at debug level) is free of
 * every token, valid or not, and the 401s were logged as requests. */
static void test_tokens_never_logged(void **state)
{
    char *log = read_file(srv.log_path, NULL);
    assert_non_null(log);
    const char *valid[] = {TOK_A, TOK_A2, TOK_B, NULL};
    for (int i = 0; valid[i]; i++)
        if (strstr(log, valid[i])) fail_msg("token %s appears in the log", valid[i]);
    for (int i = 0; bogus_tokens[i]; i++)
        if (strlen(bogus_tokens[i]) > 3 && strstr(log, bogus_tokens[i]))
            fail_msg("attempted token %s appears in the log", bogus_tokens[i]);
    assert_non_null(strstr(log, "\"status\":401"));
    assert_non_null(strstr(log, "\"msg\":\"authentication on\""));
    assert_null(strstr(log, "beyond loopback"));
    free(log);
}

/* ---------------------------------------------------------------- start-up */

/* A token file that is not acceptable: exit status 2, a message naming the
 * file and line and the reason, and never the token itself. */
static void test_bad_token_files(void **state)
{
    static const struct {
        const char *text; /* NULL: the file does not exist */
        const char *line; /* ":N:" expected in the message, or "" */
        const char *why;
        const char *secret; /* must not be printed (NULL: nothing to hide) */
    } cases[] = {
        {"shorttoken123 alice\n", ":1:", "at least 16", "shorttoken123"},
        {"# ok\n" TOK_A "\n", ":2:", "2 fields", TOK_A},
        {TOK_A " alice extra\n", ":1:", "2 fields", TOK_A},
        {TOK_A " ali/ce\n", ":1:", "tenant", TOK_A},
        {TOK_A " " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", ":1:",
         "tenant", TOK_A},
        {"secret-token-with-a-comma,x alice\n", ":1:", "token may hold only",
         "secret-token-with-a-comma"},
        {"secret=inside-the-token-1 alice\n", ":1:", "token may hold only", "secret=inside"},
        {TOK_A " alice\n" TOK_B " bob\n" TOK_A " carol\n", ":3:", "line 1", TOK_A},
        {"", "", "no tokens", NULL},
        {"# only\n\n   # comments\n", "", "no tokens", NULL},
        {NULL, "", "cannot open", NULL},
    };
    char path[700], db[700];
    snprintf(db, sizeof db, "%s/never.db", tmpdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/bad-%zu", tmpdir, i);
        if (cases[i].text) write_text(path, cases[i].text);
        const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--db", db, "--auth-tokens",
                              path, NULL};
        char *out = NULL;
        int rc = it_run_fitd(args, &out);
        if (rc != 2 || !strstr(out, path) || !strstr(out, cases[i].line) ||
            !strstr(out, cases[i].why) || (cases[i].secret && strstr(out, cases[i].secret)))
            fail_msg("case %zu: exit %d, output: %s", i, rc, out);
        free(out);
    }
    /* The database was never created: the file is checked before anything. */
    assert_int_not_equal(access(db, F_OK), 0);

    /* The environment twin names the file too. */
    snprintf(path, sizeof path, "%s/bad-env", tmpdir);
    write_text(path, "tooshort alice\n");
    setenv("FITD_AUTH_TOKENS", path, 1);
    const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--db", db, NULL};
    char *out = NULL;
    int rc = it_run_fitd(args, &out);
    unsetenv("FITD_AUTH_TOKENS");
    if (rc != 2 || !strstr(out, "--auth-tokens") || !strstr(out, path) || strstr(out, "tooshort"))
        fail_msg("env twin: exit %d, output: %s", rc, out);
    free(out);
}

/* The environment twin turns authentication on. */
static void test_env_twin(void **state)
{
    it_server s;
    memset(&s, 0, sizeof s);
    setenv("FITD_AUTH_TOKENS", tokens_path, 1);
    int rc = it_start(&s, NULL);
    unsetenv("FITD_AUTH_TOKENS");
    assert_int_equal(rc, 0);
    it_resp r = req(&s, "GET", "/v1/jobs", NULL, NULL);
    json_decref(assert_problem(&r, 401));
    it_resp_free(&r);
    it_server b = it_as(&s, TOK_B);
    r = req(&b, "GET", "/v1/jobs", NULL, NULL);
    expect_status(&r, 200);
    it_resp_free(&r);
    assert_int_equal(it_stop(&s), 0);
}

/* Without --auth-tokens: no credentials needed (any Authorization header is
 * ignored), no warning on loopback; on 0.0.0.0 a warning says it is open. With
 * tokens on 0.0.0.0 the warning is about TLS instead. */
static void test_listen_warning(void **state)
{
    it_server s;
    memset(&s, 0, sizeof s);
    assert_int_equal(it_start(&s, NULL), 0);
    const char *h[] = {"Authorization: Bearer whatever-it-is-0123", NULL};
    it_resp r = req(&s, "GET", "/v1/datasets", NULL, h);
    expect_status(&r, 200);
    it_resp_free(&r);
    char *log = read_file(s.log_path, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "beyond loopback"));
    free(log);
    assert_int_equal(it_stop(&s), 0);

    memset(&s, 0, sizeof s);
    const char *open_args[] = {"--listen", "0.0.0.0:0", NULL};
    assert_int_equal(it_start(&s, open_args), 0);
    log = read_file(s.log_path, NULL);
    assert_non_null(log);
    const char *w = strstr(log, "listening beyond loopback without authentication");
    assert_non_null(w);
    const char *bol = w;
    while (bol > log && bol[-1] != '\n') bol--;
    assert_non_null(strstr(bol, "\"level\":\"warn\""));
    free(log);
    assert_int_equal(it_stop(&s), 0);

    memset(&s, 0, sizeof s);
    const char *auth_args[] = {"--listen", "0.0.0.0:0", "--auth-tokens", tokens_path, NULL};
    assert_int_equal(it_start(&s, auth_args), 0);
    log = read_file(s.log_path, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "without authentication"));
    assert_non_null(strstr(log, "listening beyond loopback without TLS"));
    free(log);
    assert_int_equal(it_stop(&s), 0);
}

/* ---------------------------------------------------------------- the functions */

static void test_auth_functions(void **state)
{
    char err[700];
    auth_table *t = auth_load(tokens_path, err, sizeof err);
    if (!t) fail_msg("%s", err);
    assert_int_equal(auth_token_count(t), 3);
    assert_int_equal(auth_tenant_count(t), 2);
    const char *tenant = NULL;
    assert_int_equal(auth_check(t, NULL, &tenant), AUTH_MISSING);
    assert_null(tenant);
    assert_int_equal(auth_check(t, "Bearer " TOK_A, &tenant), AUTH_OK);
    assert_string_equal(tenant, "alice");
    assert_int_equal(auth_check(t, "BEARER " TOK_A2, &tenant), AUTH_OK);
    assert_string_equal(tenant, "alice");
    assert_int_equal(auth_check(t, " Bearer \t" TOK_B " ", &tenant), AUTH_OK);
    assert_string_equal(tenant, "bob");
    assert_int_equal(auth_check(t, "Bearer " TOK_B "=", &tenant), AUTH_INVALID_TOKEN);
    assert_null(tenant);
    assert_int_equal(auth_check(t, "Bearer", &tenant), AUTH_INVALID_TOKEN);
    assert_int_equal(auth_check(t, "Basic " TOK_A, &tenant), AUTH_BAD_SCHEME);
    assert_int_equal(auth_check(t, "", &tenant), AUTH_BAD_SCHEME);
    assert_int_equal(auth_check(t, "Bearer\t" TOK_A, &tenant), AUTH_OK);
    auth_free(t);
    auth_free(NULL);

    assert_int_equal(auth_host_is_loopback("127.0.0.1"), 1);
    assert_int_equal(auth_host_is_loopback("127.10.0.3"), 1);
    assert_int_equal(auth_host_is_loopback("::1"), 1);
    assert_int_equal(auth_host_is_loopback("::ffff:127.0.0.1"), 1);
    assert_int_equal(auth_host_is_loopback("0.0.0.0"), 0);
    assert_int_equal(auth_host_is_loopback("::"), 0);
    assert_int_equal(auth_host_is_loopback("10.1.2.3"), 0);
    assert_int_equal(auth_host_is_loopback("128.0.0.1"), 0);
    assert_int_equal(auth_host_is_loopback("::ffff:10.0.0.1"), 0);
    assert_int_equal(auth_host_is_loopback("localhost"), 0); /* not numeric: not trusted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_functions),
        cmocka_unit_test(test_401_on_every_v1_route),
        cmocka_unit_test(test_open_and_routing),
        cmocka_unit_test(test_tenants_are_isolated),
        cmocka_unit_test(test_bad_token_files),
        cmocka_unit_test(test_env_twin),
        cmocka_unit_test(test_listen_warning),
        cmocka_unit_test(test_tokens_never_logged), /* last: reads the whole log */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
