/*
 * test_openapi.c — api-docs/openapi.yaml against the server, mechanically.
 *
 * Default mode (run with the other unit tests):
 *   - the routes of a server built as main builds it (http_server_new plus every
 *     api_*_register that main.c calls; never started) equal the (method, path)
 *     operations of openapi.yaml's `paths:`, every difference named;
 *   - tests/openapi-untested.txt is well formed and lists documented triples only;
 *   - the `paths:` reader and the coverage comparison themselves catch what they
 *     must (synthetic inputs).
 * `test_openapi --coverage FILE` (tests/run.sh, after every integration test):
 *   FILE holds "METHOD ROUTE STATUS" per request the integration tests made
 *   (tests/support.c it_stop). Every documented (method, path, status) must be
 *   among them unless allowlisted; an allowlisted one must not be; every observed
 *   status must be documented for its route (405 and the route-less 404 are
 *   documented for every path in the document's description).
 *
 * The reader of `paths:` is deliberately strict about the layout the document
 * uses — path keys at 2 spaces, method keys at 4, `responses:` at 6, quoted status
 * keys at 8 — and fails naming the line on anything else, so that a formatting
 * change cannot make it skip part of the document silently.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "support.h"

#define DOC_PATH "api-docs/openapi.yaml"
#define ALLOW_PATH "tests/openapi-untested.txt"
#define MAIN_PATH "server/main.c"

/* ---------------------------------------------------------------- triples */

/* (method, path, status); status 0 when only the operation is meant. */
typedef struct triple {
    char method[12];
    char path[160];
    int status;
} triple;

typedef struct tset {
    triple *v;
    int n, cap;
} tset;

static void tset_free(tset *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int tset_find(const tset *s, const char *method, const char *path, int status)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].status == status && strcmp(s->v[i].method, method) == 0 &&
            strcmp(s->v[i].path, path) == 0)
            return i;
    return -1;
}

/* Is `path` the path of any entry? */
static int tset_has_path(const tset *s, const char *path)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i].path, path) == 0) return 1;
    return 0;
}

/* Add unless present. Returns 1 if added, 0 if it was there, -1 on error
 * (out of memory or a field too long). */
static int tset_add(tset *s, const char *method, const char *path, int status)
{
    if (tset_find(s, method, path, status) >= 0) return 0;
    if (strlen(method) >= sizeof s->v[0].method || strlen(path) >= sizeof s->v[0].path)
        return -1;
    if (s->n == s->cap) {
        int ncap = s->cap ? s->cap * 2 : 32;
        triple *nv = realloc(s->v, (size_t)ncap * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = ncap;
    }
    triple *t = &s->v[s->n++];
    snprintf(t->method, sizeof t->method, "%s", method);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->status = status;
    return 1;
}

/* ---------------------------------------------------------------- messages */

typedef struct msgs {
    char *text;
    size_t len, cap;
    int count;
} msgs;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void msg_add(msgs *m, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    if (m->len + n + 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 4096;
        while (ncap < m->len + n + 2) ncap *= 2;
        char *nt = realloc(m->text, ncap);
        if (!nt) return; /* the count still says something went wrong */
        m->text = nt;
        m->cap = ncap;
    }
    memcpy(m->text + m->len, line, n);
    m->len += n;
    m->text[m->len++] = '\n';
    m->text[m->len] = 0;
    m->count++;
}

static int msg_has(const msgs *m, const char *needle)
{
    return m->text && strstr(m->text, needle) != NULL;
}

/* cmocka's print_message truncates long texts: one call per line. */
static void msgs_print(const msgs *m)
{
    for (const char *p = m->text; p && *p;) {
        const char *eol = strchr(p, '\n');
        int n = eol ? (int)(eol - p) : (int)strlen(p);
        print_message("%.*s\n", n, p);
        p += n + (eol ? 1 : 0);
    }
}

static void msgs_free(msgs *m)
{
    free(m->text);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- the paths: reader */

static const char *const http_methods[] = {"get",  "put",     "post", "delete",
                                           "head", "options", "patch", "trace"};

static int is_method(const char *s)
{
    for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++)
        if (strcmp(s, http_methods[i]) == 0) return 1;
    return 0;
}

typedef struct reader {
    tset *ops, *doc;
    char err[300];
    int line;
    char path[160];
    char method[12];
    int have_path, have_op, in_responses, n_responses, n_statuses, n_ops_in_path;
} reader;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail_at(reader *r, const char *fmt, ...)
{
    char what[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof r->err, "line %d: %s", r->line, what);
    return -1;
}

/* Split "key: rest" (the key ends at the first ": " or a final ':'). Returns 0 and
 * fills key (NUL-terminated) and *rest (after the separator, spaces skipped), or
 * -1 if the text is not a key. */
static int split_key(const char *s, char *key, size_t size, const char **rest)
{
    const char *c = s;
    while (*c && !(*c == ':' && (c[1] == ' ' || c[1] == 0))) c++;
    if (!*c || c == s || (size_t)(c - s) >= size) return -1;
    memcpy(key, s, (size_t)(c - s));
    key[c - s] = 0;
    c++;
    while (*c == ' ') c++;
    *rest = c;
    return 0;
}

/* The operation just read must have had one responses: with a status. */
static int close_op(reader *r)
{
    if (!r->have_op) return 0;
    r->have_op = 0;
    r->in_responses = 0;
    if (r->n_responses != 1 || r->n_statuses == 0)
        return fail_at(r, "%s %s: expected one `responses:` with at least one status before this "
                          "line", r->method, r->path);
    return 0;
}

static int close_path(reader *r)
{
    if (close_op(r) != 0) return -1;
    if (r->have_path && r->n_ops_in_path == 0)
        return fail_at(r, "path %s has no operation", r->path);
    r->have_path = 0;
    return 0;
}

/* One line of the paths: section (indent > 0, not blank, not a comment). *skip
 * receives the indentation whose deeper lines are content to pass over. */
static int read_paths_line(reader *r, int indent, const char *s, int *skip)
{
    char key[200];
    const char *rest = NULL;
    if (split_key(s, key, sizeof key, &rest) != 0)
        return fail_at(r, "expected a `key:` at indentation %d: %.60s", indent, s);
    switch (indent) {
    case 2:
        if (close_path(r) != 0) return -1;
        if (key[0] != '/' || *rest || strpbrk(key, " '\"\t"))
            return fail_at(r, "expected a path key like `/v1/x:` at 2 spaces, got: %.60s", s);
        size_t klen = strlen(key);
        if (klen >= sizeof r->path) return fail_at(r, "path too long");
        if (tset_has_path(r->ops, key)) return fail_at(r, "path %s appears twice", key);
        memcpy(r->path, key, klen + 1);
        r->have_path = 1;
        r->n_ops_in_path = 0;
        return 0;
    case 4:
        if (!r->have_path) return fail_at(r, "a key at 4 spaces outside a path");
        if (close_op(r) != 0) return -1;
        if (is_method(key)) {
            if (*rest) return fail_at(r, "operation %s must be a block, got: %.60s", key, rest);
            char up[12];
            size_t k = 0;
            for (; key[k]; k++) up[k] = (char)toupper((unsigned char)key[k]);
            up[k] = 0;
            if (tset_add(r->ops, up, r->path, 0) != 1)
                return fail_at(r, "operation %s %s appears twice", up, r->path);
            snprintf(r->method, sizeof r->method, "%s", up);
            r->have_op = 1;
            r->n_responses = r->n_statuses = 0;
            r->n_ops_in_path++;
            return 0;
        }
        if (strcmp(key, "parameters") == 0 || strcmp(key, "summary") == 0 ||
            strcmp(key, "description") == 0 || strcmp(key, "servers") == 0) {
            *skip = 4;
            return 0;
        }
        return fail_at(r, "unexpected key `%s` in path %s (not a method)", key, r->path);
    case 6:
        if (!r->have_op) return fail_at(r, "a key at 6 spaces outside an operation");
        r->in_responses = 0;
        if (strcmp(key, "responses") == 0) {
            if (*rest) return fail_at(r, "`responses:` must be a block, got: %.60s", rest);
            r->in_responses = 1;
            r->n_responses++;
            return 0;
        }
        *skip = 6;
        return 0;
    case 8: {
        if (!r->in_responses) return fail_at(r, "a key at 8 spaces outside `responses:`");
        /* Exactly '200': a quoted three-digit status (OpenAPI keys are strings). */
        if (strlen(key) != 5 || key[0] != '\'' || key[4] != '\'' || key[1] < '1' ||
            key[1] > '5' || !isdigit((unsigned char)key[2]) || !isdigit((unsigned char)key[3]))
            return fail_at(r, "expected a status key like '200': at 8 spaces, got: %.60s", s);
        if (*rest) return fail_at(r, "response %s must be a block, got: %.60s", key, rest);
        int status = atoi(key + 1);
        if (tset_add(r->doc, r->method, r->path, status) != 1)
            return fail_at(r, "%s %s: status %d appears twice", r->method, r->path, status);
        r->n_statuses++;
        *skip = 8;
        return 0;
    }
    default:
        return fail_at(r, "unexpected indentation %d: %.60s", indent, s);
    }
}

/* Read the `paths:` section of an OpenAPI document laid out as described at the
 * top. Fills ops with (METHOD, path, 0) and doc with (METHOD, path, status).
 * Returns 0, or -1 with the reason (naming the line) in err. */
static int read_paths(const char *text, tset *ops, tset *doc, char *err, size_t errlen)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.ops = ops;
    r.doc = doc;
    int in_paths = 0, seen_paths = 0, skip = -1, rc = -1;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        r.line++;
        if (n >= sizeof line) {
            if (!in_paths) goto next; /* long lines elsewhere do not matter */
            fail_at(&r, "line too long");
            goto out;
        }
        memcpy(line, p, n);
        line[n] = 0;
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\r')) line[--n] = 0;
        int indent = 0;
        while (line[indent] == ' ' || line[indent] == '\t') {
            if (line[indent] == '\t' && in_paths) {
                fail_at(&r, "a tab in the indentation");
                goto out;
            }
            indent++;
        }
        const char *s = line + indent;
        if (!*s || *s == '#') goto next;
        if (indent == 0) {
            if (strncmp(s, "paths:", 6) == 0) {
                if (seen_paths++ || s[6]) {
                    fail_at(&r, seen_paths > 1 ? "a second `paths:`" : "`paths:` must be a block");
                    goto out;
                }
                in_paths = 1;
                skip = -1;
                goto next;
            }
            if (in_paths) {
                if (close_path(&r) != 0) goto out;
                in_paths = 0;
            }
            goto next;
        }
        if (!in_paths) goto next;
        if (skip >= 0 && indent > skip) goto next;
        skip = -1;
        if (read_paths_line(&r, indent, s, &skip) != 0) goto out;
    next:
        if (!eol) break;
        p = eol + 1;
    }
    if (in_paths && close_path(&r) != 0) goto out;
    if (!seen_paths) {
        snprintf(r.err, sizeof r.err, "no `paths:` section");
        goto out;
    }
    if (ops->n == 0) {
        snprintf(r.err, sizeof r.err, "`paths:` holds no operation");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) snprintf(err, errlen, "%s", r.err);
    return rc;
}

/* ---------------------------------------------------------------- the server's routes */

/* What main.c registers, by name: a test that builds the server "as main does"
 * must call the same functions, and main.c is checked for exactly these. */
static const struct {
    const char *name;
    int (*fn)(http_server *);
} registrars[] = {
    {"api_datasets_register", api_datasets_register},
    {"api_jobs_register", api_jobs_register},
    {"api_admin_register", api_admin_register},
    {"api_web_register", api_web_register},
    {"api_metrics_register", api_metrics_register},
    {"api_plots_register", api_plots_register},
    {"api_weights_register", api_weights_register},
    {"api_events_register", api_events_register},
    {"api_sweeps_register", api_sweeps_register},
};
#define N_REGISTRARS (sizeof registrars / sizeof registrars[0])

/* The route table of a server built as main builds it (never started). */
static void server_routes(tset *routes)
{
    srv_config cfg;
    config_defaults(&cfg);
    api_ctx ctx = {.cfg = &cfg, .pool = NULL};
    http_config hc = {.max_body_default = cfg.max_body_json, .db_path = cfg.db_path, .app = &ctx};
    http_server *srv = http_server_new(&hc);
    assert_non_null(srv);
    for (size_t i = 0; i < N_REGISTRARS; i++) assert_int_equal(registrars[i].fn(srv), 0);
    int n = http_server_route_count(srv);
    for (int i = 0; i < n; i++) {
        const char *method = NULL, *pattern = NULL;
        assert_int_equal(http_server_route_at(srv, i, &method, &pattern), 0);
        int added = tset_add(routes, method, pattern, 0);
        if (added != 1) fail_msg("route %s %s is registered twice", method, pattern);
    }
    assert_int_equal(http_server_route_at(srv, n, NULL, NULL), -1);
    assert_int_equal(http_server_route_at(srv, -1, NULL, NULL), -1);
    http_server_free(srv);
}

static void load_doc(tset *ops, tset *doc)
{
    char *text = read_file(DOC_PATH, NULL);
    if (!text) fail_msg("cannot read %s (tests run from the repository root)", DOC_PATH);
    char err[300];
    int rc = read_paths(text, ops, doc, err, sizeof err);
    free(text);
    if (rc != 0) fail_msg("%s: %s", DOC_PATH, err);
}

/* ---------------------------------------------------------------- allowlist, observations */

/* "METHOD /path STATUS reason" lines; '#' comments and blank lines allowed. */
static int read_allowlist(const char *text, tset *allow, char *err, size_t errlen)
{
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[512], method[16], path[200];
        int status = 0, used = 0;
        lineno++;
        if (n >= sizeof line) {
            snprintf(err, errlen, "line %d: too long", lineno);
            return -1;
        }
        memcpy(line, p, n);
        line[n] = 0;
        const char *s = line;
        while (*s == ' ') s++;
        if (*s && *s != '#') {
            if (sscanf(s, "%15s %199s %d %n", method, path, &status, &used) != 3 ||
                used == 0 || !s[used] || path[0] != '/' || status < 100 || status > 599) {
                snprintf(err, errlen, "line %d: expected `METHOD /path STATUS reason`: %.100s", lineno,
                         line);
                return -1;
            }
            for (char *m = method; *m; m++)
                if (!isupper((unsigned char)*m)) {
                    snprintf(err, errlen, "line %d: the method must be upper case: %s", lineno,
                             method);
                    return -1;
                }
            if (tset_add(allow, method, path, status) != 1) {
                snprintf(err, errlen, "line %d: listed twice: %s %s %d", lineno, method, path,
                         status);
                return -1;
            }
        }
        if (!eol) break;
        p = eol + 1;
    }
    return 0;
}

/* "METHOD ROUTE STATUS" per request (ROUTE "-" without a route); status 0 (no
 * reply: the client went away) is dropped. */
static int read_observed(const char *text, tset *obs, char *err, size_t errlen)
{
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[512], method[16], route[200];
        int status = -1, used = 0;
        lineno++;
        int ok = n < sizeof line;
        if (ok) {
            memcpy(line, p, n);
            line[n] = 0;
            ok = sscanf(line, "%15s %199s %d%n", method, route, &status, &used) == 3 && !line[used];
        }
        if (!ok) {
            snprintf(err, errlen, "line %d: expected `METHOD ROUTE STATUS`", lineno);
            return -1;
        }
        if (strcmp(method, "HEAD") == 0) snprintf(method, sizeof method, "GET"); /* GET's route */
        if (status != 0 && tset_add(obs, method, route, status) < 0) {
            snprintf(err, errlen, "line %d: out of memory or too long", lineno);
            return -1;
        }
        if (!eol) break;
        p = eol + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the comparisons */

/* Routes served vs operations documented; every difference goes to m. */
static void compare_routes(const tset *routes, const tset *ops, msgs *m)
{
    for (int i = 0; i < routes->n; i++)
        if (tset_find(ops, routes->v[i].method, routes->v[i].path, 0) < 0)
            msg_add(m, "served but not in openapi.yaml: %s %s", routes->v[i].method,
                    routes->v[i].path);
    for (int i = 0; i < ops->n; i++)
        if (tset_find(routes, ops->v[i].method, ops->v[i].path, 0) < 0)
            msg_add(m, "in openapi.yaml but not served: %s %s", ops->v[i].method, ops->v[i].path);
}

/* Allowlist entries must name documented triples. */
static void check_allowlist(const tset *doc, const tset *allow, msgs *m)
{
    for (int i = 0; i < allow->n; i++) {
        const triple *a = &allow->v[i];
        if (tset_find(doc, a->method, a->path, a->status) < 0)
            msg_add(m, "%s lists %s %s %d, which openapi.yaml does not document", ALLOW_PATH,
                    a->method, a->path, a->status);
    }
}

/* Documented (doc, with operations ops) vs observed (obs) statuses, allowing the
 * triples in allow to go unobserved. Every problem goes to m. */
static void compare_statuses(const tset *ops, const tset *doc, const tset *obs,
                             const tset *allow, msgs *m)
{
    check_allowlist(doc, allow, m);
    for (int i = 0; i < doc->n; i++) {
        const triple *d = &doc->v[i];
        int seen = tset_find(obs, d->method, d->path, d->status) >= 0;
        int listed = tset_find(allow, d->method, d->path, d->status) >= 0;
        if (!seen && !listed)
            msg_add(m, "documented but no integration test produced it: %s %s %d (add a test, "
                       "or list it in %s with the reason)", d->method, d->path, d->status,
                    ALLOW_PATH);
        if (seen && listed)
            msg_add(m, "produced by an integration test, so remove it from %s: %s %s %d",
                    ALLOW_PATH, d->method, d->path, d->status);
    }
    int n405 = 0, n404 = 0;
    for (int i = 0; i < obs->n; i++) {
        const triple *o = &obs->v[i];
        if (strcmp(o->path, "-") == 0) {
            /* No pattern matched the path: the generic 404. */
            if (o->status == 404)
                n404++;
            else
                msg_add(m, "status %d for %s without a route (only 404 is documented there)",
                        o->status, o->method);
            continue;
        }
        if (tset_find(ops, o->method, o->path, 0) >= 0) {
            if (tset_find(doc, o->method, o->path, o->status) < 0)
                msg_add(m, "produced but not documented: %s %s %d", o->method, o->path,
                        o->status);
        } else if (o->status == 405 && tset_has_path(ops, o->path)) {
            n405++; /* another method on a documented path: the generic 405 */
        } else {
            msg_add(m, "produced for a route openapi.yaml does not have: %s %s %d", o->method,
                    o->path, o->status);
        }
    }
    /* The document's description promises these for every path; show them once. */
    if (!n404) msg_add(m, "no integration test produced a 404 for a path without a route");
    if (!n405) msg_add(m, "no integration test produced a 405 for a method a path lacks");
}

/* ---------------------------------------------------------------- tests: default mode */

static void test_routes_match_document(void **state)
{
    (void)state;
    tset routes = {0}, ops = {0}, doc = {0};
    msgs m = {0};
    server_routes(&routes);
    load_doc(&ops, &doc);
    assert_true(tset_find(&routes, "GET", "/healthz", 0) >= 0); /* built-ins are listed */
    assert_true(tset_find(&routes, "GET", "/v1/openapi.yaml", 0) >= 0);
    compare_routes(&routes, &ops, &m);
    msgs_print(&m);
    int count = m.count;
    msgs_free(&m);
    tset_free(&routes);
    tset_free(&ops);
    tset_free(&doc);
    if (count) fail_msg("%d difference(s) between the server's routes and %s", count, DOC_PATH);
}

/* The registrars above are exactly the api_*_register functions main.c calls. */
static void test_main_registers_the_same(void **state)
{
    (void)state;
    char *text = read_file(MAIN_PATH, NULL);
    assert_non_null(text);
    int bad = 0;
    unsigned found = 0;
    for (const char *p = strstr(text, "api_"); p; p = strstr(p + 1, "api_")) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) continue;
        size_t n = 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
        if (n < 13 || strncmp(p + n - 9, "_register", 9) != 0 || p[n] != '(') continue;
        size_t k = 0;
        while (k < N_REGISTRARS &&
               !(strlen(registrars[k].name) == n && strncmp(registrars[k].name, p, n) == 0))
            k++;
        if (k == N_REGISTRARS) {
            print_message("%s calls %.*s, which this test does not\n", MAIN_PATH, (int)n, p);
            bad++;
        } else {
            found |= 1u << k;
        }
    }
    for (size_t k = 0; k < N_REGISTRARS; k++)
        if (!(found & (1u << k))) {
            print_message("%s does not call %s\n", MAIN_PATH, registrars[k].name);
            bad++;
        }
    free(text);
    assert_int_equal(bad, 0);
}

static void test_allowlist_is_documented(void **state)
{
    (void)state;
    tset ops = {0}, doc = {0}, allow = {0};
    msgs m = {0};
    char err[300];
    load_doc(&ops, &doc);
    char *text = read_file(ALLOW_PATH, NULL);
    if (!text) fail_msg("cannot read %s", ALLOW_PATH);
    int rc = read_allowlist(text, &allow, err, sizeof err);
    free(text);
    if (rc != 0) fail_msg("%s: %s", ALLOW_PATH, err);
    check_allowlist(&doc, &allow, &m);
    msgs_print(&m);
    int count = m.count;
    msgs_free(&m);
    tset_free(&ops);
    tset_free(&doc);
    tset_free(&allow);
    assert_int_equal(count, 0);
}

static const char good_doc[] = "openapi: 3.1.0\n"
                               "paths:\n"
                               "  /a:\n"
                               "    parameters:\n"
                               "      - $ref: '#/x'\n"
                               "    get:\n"
                               "      summary: A\n"
                               "      description: |\n"
                               "        text: with a colon\n"
                               "\n"
                               "      responses:\n"
                               "        # a comment\n"
                               "        '200':\n"
                               "          description: ok\n"
                               "        '404':\n"
                               "          $ref: '#/components/responses/NotFound'\n"
                               "    delete:\n"
                               "      responses:\n"
                               "        '204':\n"
                               "          description: gone\n"
                               "  /a/{id}/b:\n"
                               "    post:\n"
                               "      responses:\n"
                               "        '202':\n"
                               "          description: ok\n"
                               "components:\n"
                               "  responses:\n"
                               "    '500':\n";

/* Replace the first `from` in good_doc by `to` and expect the reader to fail with
 * a message containing `why`. */
static void expect_reader_fails(const char *from, const char *to, const char *why)
{
    char text[2048], err[300] = "";
    const char *at = strstr(good_doc, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good_doc), good_doc, to,
             at + strlen(from));
    tset ops = {0}, doc = {0};
    int rc = read_paths(text, &ops, &doc, err, sizeof err);
    tset_free(&ops);
    tset_free(&doc);
    if (rc == 0) fail_msg("the reader accepted a document with `%s` replaced by `%s`", from, to);
    if (!strstr(err, why)) fail_msg("expected an error about '%s', got '%s'", why, err);
}

static void test_reader_is_strict(void **state)
{
    (void)state;
    tset ops = {0}, doc = {0};
    char err[300] = "";
    if (read_paths(good_doc, &ops, &doc, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(ops.n, 3);
    assert_int_equal(doc.n, 4);
    assert_true(tset_find(&ops, "GET", "/a", 0) >= 0);
    assert_true(tset_find(&ops, "DELETE", "/a", 0) >= 0);
    assert_true(tset_find(&ops, "POST", "/a/{id}/b", 0) >= 0);
    assert_true(tset_find(&doc, "GET", "/a", 200) >= 0);
    assert_true(tset_find(&doc, "GET", "/a", 404) >= 0);
    assert_true(tset_find(&doc, "DELETE", "/a", 204) >= 0);
    assert_true(tset_find(&doc, "POST", "/a/{id}/b", 202) >= 0);
    assert_true(tset_find(&doc, "GET", "/a", 500) < 0); /* components are not paths */
    tset_free(&ops);
    tset_free(&doc);

    expect_reader_fails("        '404':", "        404:", "status key");
    expect_reader_fails("        '404':", "        \"404\":", "status key");
    expect_reader_fails("        '404':", "        default:", "status key");
    expect_reader_fails("        '404':", "       '404':", "indentation 7");
    expect_reader_fails("        '404':", "\t'404':", "tab");
    expect_reader_fails("    delete:", "    x-internal:", "unexpected key");
    expect_reader_fails("    delete:", "    DELETE:", "unexpected key");
    expect_reader_fails("  /a/{id}/b:", "  '/a/{id}/b':", "path key");
    expect_reader_fails("  /a/{id}/b:", "  /a:", "appears twice");
    expect_reader_fails("    delete:", "    get:", "appears twice");
    expect_reader_fails("        '204':", "        '200':\n        '200':", "appears twice");
    expect_reader_fails("      responses:\n        '204'", "      responses: {'204'", "block");
    expect_reader_fails("    delete:\n      responses:", "    delete:\n      tags: [x]", "one `responses:`");
    expect_reader_fails("      responses:\n        '204':\n          description: gone\n",
                        "      responses:\n", "one `responses:`");
    expect_reader_fails("    post:\n", "    parameters: []\n", "no operation");
    expect_reader_fails("paths:\n", "paths: {}\n", "block");
    expect_reader_fails("paths:\n", "pathz:\n", "no `paths:`");
    expect_reader_fails("components:", "paths:", "second");
}

static void test_comparisons_catch_differences(void **state)
{
    (void)state;
    tset routes = {0}, ops = {0}, doc = {0}, obs = {0}, allow = {0};
    msgs m = {0};
    tset_add(&ops, "GET", "/a", 0);
    tset_add(&ops, "POST", "/a", 0);
    tset_add(&routes, "GET", "/a", 0);
    tset_add(&routes, "PUT", "/a", 0);
    compare_routes(&routes, &ops, &m);
    assert_int_equal(m.count, 2);
    assert_true(msg_has(&m, "served but not in openapi.yaml: PUT /a"));
    assert_true(msg_has(&m, "in openapi.yaml but not served: POST /a"));
    msgs_free(&m);

    tset_add(&doc, "GET", "/a", 200);
    tset_add(&doc, "GET", "/a", 404);
    tset_add(&doc, "GET", "/a", 500);
    tset_add(&doc, "POST", "/a", 201);
    tset_add(&obs, "GET", "/a", 200);
    tset_add(&obs, "GET", "/a", 500);
    tset_add(&obs, "POST", "/a", 201);
    tset_add(&obs, "DELETE", "/a", 405);
    tset_add(&obs, "GET", "-", 404);
    tset_add(&allow, "GET", "/a", 500);
    compare_statuses(&ops, &doc, &obs, &allow, &m);
    if (m.count != 2) msgs_print(&m);
    assert_int_equal(m.count, 2);
    assert_true(msg_has(&m, "no integration test produced it: GET /a 404"));
    assert_true(msg_has(&m, "remove it from " ALLOW_PATH ": GET /a 500"));
    msgs_free(&m);

    tset_add(&obs, "GET", "/a", 404);
    tset_add(&obs, "GET", "/a", 409);  /* undocumented status */
    tset_add(&obs, "POST", "/a", 405); /* 405 for a documented method */
    tset_add(&obs, "GET", "/b", 200);  /* unknown route */
    tset_add(&obs, "GET", "-", 400);   /* route-less but not 404 */
    tset_add(&allow, "GET", "/a", 418);
    compare_statuses(&ops, &doc, &obs, &allow, &m);
    assert_true(msg_has(&m, "produced but not documented: GET /a 409"));
    assert_true(msg_has(&m, "produced but not documented: POST /a 405"));
    assert_true(msg_has(&m, "does not have: GET /b 200"));
    assert_true(msg_has(&m, "status 400 for GET without a route"));
    assert_true(msg_has(&m, "lists GET /a 418"));
    assert_false(msg_has(&m, "no integration test produced it"));
    msgs_free(&m);

    tset empty = {0};
    compare_statuses(&ops, &doc, &empty, &empty, &m);
    assert_true(msg_has(&m, "404 for a path without a route"));
    assert_true(msg_has(&m, "405 for a method"));
    msgs_free(&m);

    char err[200];
    tset t = {0};
    assert_int_equal(read_allowlist("# c\n\nGET /a 500 out of memory only\n", &t, err, sizeof err), 0);
    assert_true(tset_find(&t, "GET", "/a", 500) >= 0);
    assert_int_equal(read_allowlist("GET /a 500\n", &t, err, sizeof err), -1); /* no reason */
    assert_int_equal(read_allowlist("get /b 500 why\n", &t, err, sizeof err), -1);
    assert_int_equal(read_allowlist("GET /a 500 twice\n", &t, err, sizeof err), -1);
    tset_free(&t);
    assert_int_equal(read_observed("GET /a 200\nPUT - 404\nPOST /a 0\n", &t, err, sizeof err), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(read_observed("GET /a\n", &t, err, sizeof err), -1);
    assert_int_equal(read_observed("GET /a 200 x\n", &t, err, sizeof err), -1);
    tset_free(&t);

    tset_free(&routes);
    tset_free(&ops);
    tset_free(&doc);
    tset_free(&obs);
    tset_free(&allow);
}

/* ---------------------------------------------------------------- test: --coverage */

static const char *observed_path;

static void test_every_documented_status_is_exercised(void **state)
{
    (void)state;
    tset ops = {0}, doc = {0}, obs = {0}, allow = {0};
    msgs m = {0};
    char err[300];
    load_doc(&ops, &doc);
    char *text = read_file(ALLOW_PATH, NULL);
    if (!text) fail_msg("cannot read %s", ALLOW_PATH);
    int rc = read_allowlist(text, &allow, err, sizeof err);
    free(text);
    if (rc != 0) fail_msg("%s: %s", ALLOW_PATH, err);
    text = read_file(observed_path, NULL);
    if (!text) fail_msg("cannot read %s", observed_path);
    rc = read_observed(text, &obs, err, sizeof err);
    free(text);
    if (rc != 0) fail_msg("%s: %s", observed_path, err);
    if (obs.n == 0)
        fail_msg("%s is empty: no integration test reported its requests (FITD_ACCESS_LOG)",
                 observed_path);
    compare_statuses(&ops, &doc, &obs, &allow, &m);
    print_message("%d documented (method, path, status), %d allowlisted untested, %d distinct "
                  "observed\n", doc.n, allow.n, obs.n);
    msgs_print(&m);
    int count = m.count;
    msgs_free(&m);
    tset_free(&ops);
    tset_free(&doc);
    tset_free(&obs);
    tset_free(&allow);
    if (count) fail_msg("%d problem(s) between %s and the integration tests", count, DOC_PATH);
}

/* `--routes`: one line per served route, "METHOD PATTERN" and the query
 * parameters it takes ("*": it does not look), for tests/openapi_query.py to hold
 * against the document. */
static int print_routes(void)
{
    srv_config cfg;
    config_defaults(&cfg);
    api_ctx ctx = {.cfg = &cfg, .pool = NULL};
    http_config hc = {.max_body_default = cfg.max_body_json, .db_path = cfg.db_path, .app = &ctx};
    http_server *srv = http_server_new(&hc);
    if (!srv) return 1;
    for (size_t i = 0; i < N_REGISTRARS; i++)
        if (registrars[i].fn(srv) != 0) return 1;
    for (int i = 0; i < http_server_route_count(srv); i++) {
        const char *method = NULL, *pattern = NULL;
        if (http_server_route_at(srv, i, &method, &pattern) != 0) return 1;
        int any = 0;
        const char *const *query = http_server_route_query(srv, i, &any);
        printf("%s %s", method, pattern);
        if (any) printf(" *");
        for (const char *const *q = query; q && *q; q++) printf(" %s", *q);
        printf("\n");
    }
    http_server_free(srv);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--routes") == 0) return print_routes();
    if (argc == 3 && strcmp(argv[1], "--coverage") == 0) {
        observed_path = argv[2];
        const struct CMUnitTest coverage[] = {
            cmocka_unit_test(test_every_documented_status_is_exercised),
        };
        return cmocka_run_group_tests_name("openapi coverage", coverage, NULL, NULL);
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--coverage FILE | --routes]\n", argv[0]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match_document),
        cmocka_unit_test(test_main_registers_the_same),
        cmocka_unit_test(test_allowlist_is_documented),
        cmocka_unit_test(test_reader_is_strict),
        cmocka_unit_test(test_comparisons_catch_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
