/* http.c — libmicrohttpd daemon, routing, limits and replies (see http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <sys/prctl.h>

#include "clock.h"
#include "embedded.h"
#include "http.h"
#include "log.h"
#include "spec.h"
#include "store.h"

#define HTTP_MAX_SEGS 12
#define HTTP_MAX_PARAMS 4

typedef struct route_ent {
    http_route r;
    int n_segs;
    char *segs[HTTP_MAX_SEGS]; /* "{id}" kept with braces: a parameter */
    size_t seg_len[HTTP_MAX_SEGS];
} route_ent;

/* A request path cut into its segments once, for matching against every route. */
typedef struct path_segs {
    int n; /* -1: no route can match (no leading '/', an empty segment, too many) */
    const char *seg[HTTP_MAX_SEGS];
    size_t len[HTTP_MAX_SEGS];
} path_segs;

/* One open connection, for the request-time bound (see request_timeout_s). */
typedef struct conn_ent {
    int fd;
    double start;  /* when the request now being received began (clock_mono_s) */
    int receiving;         /* 0 while a handler and its reply run */
    int cut;               /* shut down by the reaper */
    struct conn_ent *prev, *next;
} conn_ent;

struct http_server {
    http_config cfg;
    pthread_mutex_t conn_mu; /* guards conns and every conn_ent's fields */
    pthread_cond_t reaper_cv;
    conn_ent *conns;
    pthread_t reaper;
    int reaper_on, reaper_stop;
    route_ent *routes;
    int n_routes, cap_routes;
    struct MHD_Daemon *daemon;
    uint16_t port;
    uint64_t id_seed;
    atomic_uint_fast64_t id_counter;
    atomic_int draining; /* http_server_drain: every request gets 503 */
    atomic_int heavy;    /* heavy handlers running (http_route.heavy) */
    atomic_int inflight; /* requests begun and not yet completed */
    atomic_uint_fast64_t wake_gen; /* http_server_wake_streams calls so far */
    pthread_key_t store_key;
    int store_key_ok;
    /* Streamed replies (http_reply_stream): the open ones and their ticker. */
    pthread_mutex_t stream_mu; /* guards the fields below and http_stream.suspended */
    pthread_cond_t stream_cv;
    struct http_stream *streams;
    int n_streams;
    int streams_closing; /* http_server_stop: readers end, nothing suspends */
    pthread_t ticker;
    int ticker_on, ticker_stop;
};

/* One streamed reply; MHD's content-reader context. Freed by MHD's free callback
 * when the response is destroyed (after the request ended). */
typedef struct http_stream {
    http_server *srv;
    http_req *req; /* valid whenever MHD calls the reader */
    struct MHD_Connection *conn;
    http_stream_fn reader;
    void (*free_fn)(void *ctx);
    void *ctx;
    int suspended; /* waiting for the ticker's resume */
    struct http_stream *prev, *next;
} http_stream;

typedef struct http_hdr {
    char *name, *value;
    struct http_hdr *next;
} http_hdr;

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    char id[17];
    http_method method;
    char method_name[16];
    char *path;
    const route_ent *route;
    /* For the access log: the pattern of the matched route, or for a 405 the
     * first pattern the path matched; NULL when no pattern matched (404). */
    const char *route_pattern;
    int n_params;
    const char *param_names[HTTP_MAX_PARAMS]; /* point into route segments */
    char *param_values[HTTP_MAX_PARAMS];
    char media_type[128];
    size_t limit;    /* body cap in bytes */
    size_t received; /* body bytes seen so far */
    char *body;
    size_t body_len, body_cap;
    int replied;    /* a response was queued (or is pending) */
    int in_body;    /* inside an upload-data call: MHD cannot queue yet */
    struct MHD_Response *pending; /* a reply made while the body streams */
    size_t discarded; /* body bytes dropped after an early reply */
    unsigned status;
    int handler_ran;
    void *state;
    void (*cleanup)(void *state, int aborted);
    http_hdr *headers;
    double t0; /* when the request began (clock_mono_s) */
    const char *tenant; /* set by cfg.authenticate; NULL = "" */
};

/* ---------------------------------------------------------------- small helpers */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static const struct {
    http_method m;
    const char *name;
} method_names[] = {{HTTP_GET, "GET"},       {HTTP_POST, "POST"},   {HTTP_PUT, "PUT"},
                    {HTTP_DELETE, "DELETE"}, {HTTP_PATCH, "PATCH"}, {HTTP_HEAD, "HEAD"}};

static http_method method_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++)
        if (strcmp(s, method_names[i].name) == 0) return method_names[i].m;
    return (http_method)0;
}

const char *http_status_phrase(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

/* Split a pattern into segments; returns -1 if malformed (no leading '/', too
 * many segments, too many parameters, empty segment). */
static int pattern_split(route_ent *e, const char *pattern)
{
    if (pattern[0] != '/') return -1;
    const char *p = pattern + 1;
    int n_params = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || e->n_segs == HTTP_MAX_SEGS) return -1;
        char *seg = malloc(len + 1);
        if (!seg) return -1;
        memcpy(seg, p, len);
        seg[len] = 0;
        e->seg_len[e->n_segs] = len;
        e->segs[e->n_segs++] = seg;
        if (seg[0] == '{' && (len < 3 || seg[len - 1] != '}' || ++n_params > HTTP_MAX_PARAMS))
            return -1;
        p += len;
        if (*p == '/') p++;
    }
    return 0;
}

/* "/a/b" -> {"a", "b"}; "/" -> no segments. A trailing slash is another path
 * (an empty last segment), so it matches no route. */
static void path_split(const char *path, path_segs *ps)
{
    ps->n = -1;
    if (path[0] != '/') return;
    const char *p = path + 1;
    int n = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || n == HTTP_MAX_SEGS) return;
        ps->seg[n] = p;
        ps->len[n++] = len;
        p += len;
        if (*p == '/' && *++p == 0) return;
    }
    ps->n = n;
}

/* Does the path match route `e`? When `req` is non-NULL the parameter values are
 * captured into it. Returns 1 on a match, 0 otherwise, -1 on out of memory. */
static int route_match(const route_ent *e, const path_segs *ps, http_req *req)
{
    if (ps->n != e->n_segs) return 0;
    for (int i = 0; i < ps->n; i++) {
        const char *seg = e->segs[i];
        if (seg[0] != '{' && (e->seg_len[i] != ps->len[i] || memcmp(seg, ps->seg[i], ps->len[i]) != 0))
            return 0;
    }
    for (int i = 0; req && i < ps->n; i++) {
        if (e->segs[i][0] != '{') continue;
        char *v = malloc(ps->len[i] + 1);
        if (!v) return -1;
        memcpy(v, ps->seg[i], ps->len[i]);
        v[ps->len[i]] = 0;
        req->param_names[req->n_params] = e->segs[i];
        req->param_values[req->n_params++] = v;
    }
    return 1;
}

static void req_free_params(http_req *req)
{
    for (int i = 0; i < req->n_params; i++) free(req->param_values[i]);
    req->n_params = 0;
}

/* ---------------------------------------------------------------- per-thread store */

static void store_key_destroy(void *p)
{
    store_close((store *)p);
}

store *http_store(http_req *req)
{
    http_server *srv = req->srv;
    store *st = srv->store_key_ok ? pthread_getspecific(srv->store_key) : NULL;
    if (st) return st;
    char err[256] = "";
    if (srv->store_key_ok && srv->cfg.db_path) st = store_open(srv->cfg.db_path, err, sizeof err);
    if (!st) {
        char q[300];
        LOG(LOG_ERROR, "store open failed", "\"request_id\":\"%s\",\"error\":%s", req->id,
            log_quote(q, sizeof q, err[0] ? err : "no database configured"));
        http_reply_problem(req, 500, "the database could not be opened");
        return NULL;
    }
    if (pthread_setspecific(srv->store_key, st) != 0) {
        store_close(st);
        http_reply_nomem(req);
        return NULL;
    }
    return st;
}

/* ---------------------------------------------------------------- replies */

static int queue(http_req *req, unsigned status, struct MHD_Response *resp,
                 const char *content_type)
{
    int rc = -1;
    if (!resp) goto out;
    if (MHD_add_response_header(resp, "X-Request-Id", req->id) != MHD_YES) goto out;
    if (content_type && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                content_type) != MHD_YES)
        goto out;
    for (http_hdr *h = req->headers; h; h = h->next)
        if (MHD_add_response_header(resp, h->name, h->value) != MHD_YES) goto out;
    if (req->in_body) {
        /* libmicrohttpd 0.9.x accepts a response only before the body or after
         * it: keep it, drop the rest of the body, queue it on the final call. */
        req->pending = resp;
        resp = NULL;
    } else if (MHD_queue_response(req->conn, status, resp) != MHD_YES) {
        goto out;
    }
    req->replied = 1;
    req->status = status;
    rc = 0;
out:
    if (resp) MHD_destroy_response(resp);
    if (rc != 0 && !req->replied) req->status = 500;
    return rc;
}

int http_reply_header(http_req *req, const char *name, const char *value)
{
    http_hdr *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->name = dup_str(name);
    h->value = dup_str(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        free(h);
        return -1;
    }
    h->next = req->headers;
    req->headers = h;
    return 0;
}

int http_reply_bytes(http_req *req, unsigned status, const char *content_type, void *data,
                     size_t len)
{
    if (req->replied) {
        free(data);
        return -1;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, &free);
    if (!resp) {
        free(data);
        return -1;
    }
    return queue(req, status, resp, content_type);
}

int http_reply_static(http_req *req, unsigned status, const char *content_type, const void *data,
                      size_t len)
{
    if (req->replied) return -1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_PERSISTENT);
    return queue(req, status, resp, content_type);
}

int http_reply_empty(http_req *req, unsigned status)
{
    return http_reply_static(req, status, NULL, "", 0);
}

/* ---------------------------------------------------------------- streamed replies */

/* The CLOCK_REALTIME instant `ms` (< 1000) from now, for pthread_cond_timedwait. */
static void deadline_in_ms(struct timespec *until, long ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_nsec += ms * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* MHD's content reader. Suspending here is what MHD documents as the way to
 * return 0 without busy-waiting under its internal polling threads. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_stream *s = cls;
    http_server *srv = s->srv;
    (void)pos;
    if (atomic_load(&srv->draining)) return MHD_CONTENT_READER_END_OF_STREAM;
    uint_fast64_t gen = atomic_load(&srv->wake_gen);
    ssize_t n = max ? s->reader(s->ctx, s->req, buf, max) : 0;
    if (n > 0) return n;
    if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
    /* Under the lock: the ticker and http_server_stop only resume a stream they
     * see suspended, and never one that a stop already ended. News that came while
     * the reader looked (its wake-up resumed only the streams already suspended)
     * is read at once instead of at the next tick. */
    pthread_mutex_lock(&srv->stream_mu);
    int end = srv->streams_closing || atomic_load(&srv->draining);
    if (!end && atomic_load(&srv->wake_gen) == gen) {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&srv->stream_mu);
    return end ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static void stream_unlink(http_stream *s)
{
    http_server *srv = s->srv;
    pthread_mutex_lock(&srv->stream_mu);
    if (s->prev) s->prev->next = s->next;
    else srv->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    srv->n_streams--;
    pthread_mutex_unlock(&srv->stream_mu);
}

/* MHD's free callback: the response is gone, the reader will not run again. */
static void stream_free(void *cls)
{
    http_stream *s = cls;
    stream_unlink(s);
    if (s->free_fn) s->free_fn(s->ctx);
    free(s);
}

/* Resume every suspended stream; the caller holds stream_mu. */
static void streams_resume_all(http_server *srv)
{
    for (http_stream *s = srv->streams; s; s = s->next) {
        if (!s->suspended) continue;
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

/* The ticker: every HTTP_STREAM_TICK_MS (or at once when signalled) the waiting
 * streams are resumed, so their readers look for news. */
static void *stream_ticker_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-stream", 0, 0, 0); /* shown by top -H and in /proc */
    http_server *srv = arg;
    pthread_mutex_lock(&srv->stream_mu);
    while (!srv->ticker_stop) {
        struct timespec until;
        deadline_in_ms(&until, HTTP_STREAM_TICK_MS);
        pthread_cond_timedwait(&srv->stream_cv, &srv->stream_mu, &until);
        streams_resume_all(srv);
    }
    pthread_mutex_unlock(&srv->stream_mu);
    return NULL;
}

void http_server_wake_streams(http_server *srv)
{
    atomic_fetch_add(&srv->wake_gen, 1);
    pthread_mutex_lock(&srv->stream_mu);
    pthread_cond_signal(&srv->stream_cv);
    pthread_mutex_unlock(&srv->stream_mu);
}

int http_reply_stream(http_req *req, unsigned status, const char *content_type,
                      http_stream_fn reader, void (*free_fn)(void *ctx), void *ctx)
{
    http_server *srv = req->srv;
    http_stream *s = NULL;
    int full = 0, ticking = 0;
    if (req->replied) goto fail;
    s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_nomem(req);
        goto fail;
    }
    *s = (http_stream){.srv = srv, .req = req, .conn = req->conn, .reader = reader,
                       .free_fn = free_fn, .ctx = ctx};
    pthread_mutex_lock(&srv->stream_mu);
    ticking = srv->ticker_on && !srv->streams_closing;
    full = !ticking || srv->n_streams >= (int)srv->cfg.max_streams;
    if (!full) {
        s->next = srv->streams;
        if (srv->streams) srv->streams->prev = s;
        srv->streams = s;
        srv->n_streams++;
    }
    pthread_mutex_unlock(&srv->stream_mu);
    if (full) {
        free(s);
        s = NULL;
        http_reply_header(req, "Retry-After", "5");
        http_reply_problem(req, 503, "%s (limit %u); retry later",
                           ticking ? "too many open streams" : "streaming is unavailable",
                           srv->cfg.max_streams);
        goto fail;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, &stream_read, s, &stream_free);
    if (!resp) {
        stream_unlink(s);
        free(s);
        s = NULL;
        http_reply_nomem(req);
        goto fail;
    }
    /* From here the response owns s and ctx: destroying it (also inside queue on
     * failure) runs stream_free. */
    return queue(req, status, resp, content_type);
fail:
    if (free_fn) free_fn(ctx);
    return -1;
}

int http_server_streams(http_server *srv)
{
    if (!srv) return 0;
    pthread_mutex_lock(&srv->stream_mu);
    int n = srv->n_streams;
    pthread_mutex_unlock(&srv->stream_mu);
    return n;
}

/* Out of memory with nothing built: a fixed body still tells the client what
 * happened (http_reply_nomem's answer, whose Retry-After may already be set). */
static int reply_oom_static(http_req *req)
{
    static const char oom[] = "{\"type\":\"about:blank\",\"title\":\"Service "
                              "Unavailable\",\"status\":503,\"detail\":\"out of memory\"}\n";
    int has_retry = 0;
    for (const http_hdr *h = req->headers; h; h = h->next)
        has_retry |= strcasecmp(h->name, "Retry-After") == 0;
    if (!has_retry) http_reply_header(req, "Retry-After", "1");
    return http_reply_static(req, 503, "application/problem+json", oom, sizeof oom - 1);
}

/* Replies 503 out of memory itself when the body cannot be written out. */
static int reply_json_typed(http_req *req, unsigned status, json_t *body, const char *type)
{
    if (req->replied) {
        json_decref(body);
        return -1;
    }
    if (!body) return reply_oom_static(req);
    /* Nine significant digits: every float32 value (weights, outputs, metrics)
     * round-trips, and doubles do not print as 0.12593659700000001. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9));
    size_t len = text ? strlen(text) : 0;
    char *buf = text ? realloc(text, len + 2) : NULL;
    if (!buf) {
        free(text);
        json_decref(body);
        return reply_oom_static(req);
    }
    buf[len++] = '\n';
    json_decref(body);
    return http_reply_bytes(req, status, type, buf, len);
}

int http_reply_json(http_req *req, unsigned status, json_t *body)
{
    return reply_json_typed(req, status, body, "application/json");
}

/* Every byte that does not start a valid sequence becomes '?': problem texts echo
 * client bytes (ids, query values, keys), and Jansson refuses invalid UTF-8, which
 * dropped the detail or the whole problem. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    for (size_t left = strlen(s); *p;) {
        size_t n = nn_utf8_char_len(p, left);
        left -= n ? n : 1;
        if (n) {
            p += n;
        } else {
            *p++ = '?';
        }
    }
}

/* Drop a multi-byte UTF-8 character that a bounded copy cut short at the end of
 * s (so that utf8_repair does not turn its first bytes into '?'). */
static void utf8_trim_tail(char *s)
{
    size_t n = strlen(s), k = 0;
    while (k < n && k < 4 && ((unsigned char)s[n - 1 - k] & 0xC0) == 0x80) k++;
    if (k == n) return;
    unsigned char lead = (unsigned char)s[n - 1 - k];
    size_t want = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (k < want || (lead < 0xC0 && k > 0)) s[n - 1 - k + (lead < 0xC0)] = '\0';
}

/* A text cut to fit a buffer, made valid UTF-8 for JSON: both of the above. */
static void utf8_clean(char *s)
{
    utf8_trim_tail(s);
    utf8_repair(s);
}

int http_reply_problem_errors(http_req *req, unsigned status, const char *detail,
                              json_t *errors)
{
    if (req->replied) {
        json_decref(errors);
        return -1;
    }
    json_t *doc = json_pack("{s:s, s:s, s:i}", "type", "about:blank", "title",
                            http_status_phrase(status), "status", (int)status);
    char text[1024];
    if (detail) {
        snprintf(text, sizeof text, "%s", detail);
        utf8_clean(text);
    }
    if (doc && detail) json_object_set_new(doc, "detail", json_string(text));
    if (doc && errors) json_object_set(doc, "errors", errors);
    json_decref(errors);
    if (!doc) return reply_oom_static(req);
    if (status >= 500 || status == 0)
        LOG(LOG_WARN, "problem", "\"request_id\":\"%s\",\"status\":%u", req->id, status);
    return reply_json_typed(req, status, doc, "application/problem+json");
}

int http_reply_problem(http_req *req, unsigned status, const char *detail_fmt, ...)
{
    char detail[512];
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(detail, sizeof detail, detail_fmt, ap);
        va_end(ap);
    }
    return http_reply_problem_errors(req, status, detail_fmt ? detail : NULL, NULL);
}

int http_reply_nomem(http_req *req)
{
    http_reply_header(req, "Retry-After", "1");
    return http_reply_problem(req, 503, "out of memory");
}

int http_reply_store_error(http_req *req, store *st, int rc)
{
    const char *msg = st ? store_errmsg(st) : "";
    if (!msg || !msg[0]) msg = store_rc_name((store_rc)rc);
    switch ((store_rc)rc) {
    case STORE_NOT_FOUND: return http_reply_problem(req, 404, "%s", msg);
    case STORE_CONFLICT: return http_reply_problem(req, 409, "%s", msg);
    case STORE_INVALID: return http_reply_problem(req, 400, "%s", msg);
    case STORE_BUSY:
        http_reply_header(req, "Retry-After", "1");
        return http_reply_problem(req, 503, "the database is busy; retry shortly");
    case STORE_LIMIT: /* --max-queued reached: the client should slow down */
        http_reply_header(req, "Retry-After", "5");
        return http_reply_problem(req, 429, "%s; retry later", msg);
    case STORE_NOMEM: return http_reply_nomem(req);
    case STORE_FULL: return http_reply_problem(req, 507, "the disk is full: nothing was stored");
    default: {
        char q[600];
        LOG(LOG_ERROR, "store error", "\"request_id\":\"%s\",\"rc\":\"%s\",\"error\":%s", req->id,
            store_rc_name((store_rc)rc), log_quote(q, sizeof q, msg));
        return http_reply_problem(req, 500, "a storage error occurred");
    }
    }
}

int http_problem_add(json_t *errors, const char *pointer, const char *fmt, ...)
{
    /* Both are cut to fit; a problem dropped for a cut character would let bad
     * input pass (callers count problems), so the cut is trimmed instead. */
    char msg[512], ptr[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ptr, sizeof ptr, "%s", pointer);
    utf8_clean(msg);
    utf8_clean(ptr);
    json_t *e = json_pack("{s:s, s:s}", "pointer", ptr, "message", msg);
    if (!e) return -1;
    return json_array_append_new(errors, e) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- request getters */

const char *http_req_id(const http_req *req) { return req->id; }
http_method http_req_method(const http_req *req) { return req->method; }
const char *http_req_path(const http_req *req) { return req->path; }
const char *http_req_media_type(const http_req *req) { return req->media_type; }
void *http_req_app(const http_req *req) { return req->srv->cfg.app; }
const char *http_req_tenant(const http_req *req) { return req->tenant ? req->tenant : ""; }
void http_req_set_tenant(http_req *req, const char *tenant) { req->tenant = tenant; }
struct MHD_Connection *http_req_connection(http_req *req) { return req->conn; }
void *http_req_state(const http_req *req) { return req->state; }

const char *http_req_param(const http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < req->n_params; i++) {
        const char *seg = req->param_names[i]; /* "{name}" */
        if (strlen(seg) == n + 2 && memcmp(seg + 1, name, n) == 0) return req->param_values[i];
    }
    return NULL;
}

const char *http_req_query(const http_req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_req_header(const http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(const http_req *req, size_t *len)
{
    if (len) *len = req->body_len;
    return req->body_len ? req->body : NULL;
}

int http_req_etag_matches(const http_req *req, const char *etag)
{
    size_t n = strlen(etag);
    for (const char *p = http_req_header(req, "If-None-Match"); p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '*') return 1;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

void http_req_set_state(http_req *req, void *state, void (*cleanup)(void *state, int aborted))
{
    req->state = state;
    req->cleanup = cleanup;
}

json_t *http_req_json(http_req *req)
{
    json_error_t jerr;
    if (req->body_len == 0) {
        http_reply_problem(req, 400, "the request body is empty; a JSON document is required");
        return NULL;
    }
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) http_reply_json_error(req, &jerr, req->body, req->body_len);
    return root;
}

int http_reply_json_error(http_req *req, const json_error_t *jerr, const char *text, size_t len)
{
    /* A number past what a double holds is well-formed JSON, with a value out of range:
     * named at its pointer, as any other value out of range. */
    int range = json_error_code(jerr) == json_error_numeric_overflow;
    char ptr[256];
    spec_json_error_pointer(text, len, jerr, ptr, sizeof ptr);
    json_t *errors = json_array();
    if (errors) http_problem_add(errors, ptr, "%s", jerr->text);
    char detail[400];
    snprintf(detail, sizeof detail, "%s at line %d, column %d: %s",
             range ? "a number out of range" : "malformed JSON", jerr->line, jerr->column,
             jerr->text);
    return http_reply_problem_errors(req, range ? 422 : 400, detail, errors);
}

const char *const http_page_query[] = {"limit", "cursor", NULL};

int http_req_page(http_req *req, int default_limit, int max_limit, int *limit,
                  const char **cursor)
{
    const char *s = http_req_query(req, "limit");
    *limit = default_limit;
    *cursor = http_req_query(req, "cursor");
    if (*cursor && (**cursor == 0 || strlen(*cursor) > 200)) {
        json_t *errors = json_array();
        if (errors) http_problem_add(errors, "/cursor", "not a cursor from a previous page");
        http_reply_problem_errors(req, 400, "invalid query parameter cursor", errors);
        return -1;
    }
    if (s) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 1 || v > max_limit) {
            json_t *errors = json_array();
            if (errors)
                http_problem_add(errors, "/limit", "must be an integer from 1 to %d", max_limit);
            http_reply_problem_errors(req, 400, "invalid query parameter limit", errors);
            return -1;
        }
        *limit = (int)v;
    }
    return 0;
}

/* ---------------------------------------------------------------- built-in routes */

static void handle_healthz(http_req *req)
{
    store *st = http_store(req);
    if (!st) return;
    if (store_ping(st) != STORE_OK) {
        http_reply_problem(req, 503, "database unreachable: %s", store_errmsg(st));
        return;
    }
    json_t *body = json_pack("{s:s}", "status", "ok");
    http_reply_json(req, 200, body); /* NULL: 503 out of memory */
}

static void handle_openapi(http_req *req)
{
    const srv_embedded_file *f = srv_embedded_find("api-docs/openapi.yaml");
    if (!f) {
        http_reply_problem(req, 404, "the API document is not embedded in this build");
        return;
    }
    http_reply_static(req, 200, "application/yaml", f->data, f->len);
}

/* ---------------------------------------------------------------- server */

http_server *http_server_new(const http_config *cfg)
{
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv) return NULL;
    srv->cfg = *cfg;
    if (!srv->cfg.host) srv->cfg.host = "127.0.0.1";
    if (!srv->cfg.n_threads) srv->cfg.n_threads = 4;
    if (!srv->cfg.connection_limit) srv->cfg.connection_limit = 1024;
    if (!srv->cfg.connection_timeout_s) srv->cfg.connection_timeout_s = 30;
    if (!srv->cfg.request_timeout_s) srv->cfg.request_timeout_s = 300;
    pthread_mutex_init(&srv->conn_mu, NULL);
    pthread_cond_init(&srv->reaper_cv, NULL);
    pthread_mutex_init(&srv->stream_mu, NULL);
    pthread_cond_init(&srv->stream_cv, NULL);
    if (!srv->cfg.max_streams) srv->cfg.max_streams = 64;
    if (!srv->cfg.connection_memory) srv->cfg.connection_memory = 32 * 1024;
    if (!srv->cfg.max_body_default) srv->cfg.max_body_default = 1024 * 1024;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
    }
    srv->id_seed = seed;
    atomic_init(&srv->id_counter, 0);
    atomic_init(&srv->draining, 0);
    atomic_init(&srv->heavy, 0);
    atomic_init(&srv->inflight, 0);
    if (pthread_key_create(&srv->store_key, store_key_destroy) != 0) {
        free(srv);
        return NULL;
    }
    srv->store_key_ok = 1;
    const http_route own[] = {
        {.method = HTTP_GET, .pattern = "/healthz", .handler = handle_healthz, .any_query = 1},
        {.method = HTTP_GET, .pattern = "/v1/openapi.yaml", .handler = handle_openapi},
    };
    if (http_route_add(srv, own, sizeof own / sizeof own[0]) != 0) {
        http_server_free(srv);
        return NULL;
    }
    return srv;
}

static int route_add_one(http_server *srv, const http_route *route)
{
    if (!route->pattern || !route->handler || srv->daemon) return -1;
    size_t n_query = 0; /* query_scan keeps one bit per name */
    while (route->query && route->query[n_query]) n_query++;
    if (n_query >= sizeof(unsigned long) * CHAR_BIT) return -1;
    if (srv->n_routes == srv->cap_routes) {
        int ncap = srv->cap_routes ? srv->cap_routes * 2 : 16;
        route_ent *n = realloc(srv->routes, (size_t)ncap * sizeof *n);
        if (!n) return -1;
        srv->routes = n;
        srv->cap_routes = ncap;
    }
    route_ent *e = &srv->routes[srv->n_routes];
    memset(e, 0, sizeof *e);
    e->r = *route;
    if (pattern_split(e, route->pattern) != 0) {
        for (int i = 0; i < e->n_segs; i++) free(e->segs[i]);
        return -1;
    }
    srv->n_routes++;
    return 0;
}

int http_route_add(http_server *srv, const http_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (route_add_one(srv, &routes[i]) != 0) return -1;
    return 0;
}

/* Lower-cased media type without parameters. */
static void media_type_of(const char *ct, char *out, size_t size)
{
    size_t n = 0;
    if (ct) {
        while (*ct == ' ' || *ct == '\t') ct++;
        for (; *ct && *ct != ';' && *ct != ' ' && *ct != '\t' && n + 1 < size; ct++)
            out[n++] = (char)((*ct >= 'A' && *ct <= 'Z') ? *ct + 32 : *ct);
    }
    out[n] = 0;
}

/* The charset parameter of a Content-Type, lower-cased into out ("" when absent). */
static void charset_of(const char *ct, char *out, size_t size)
{
    out[0] = 0;
    for (const char *p = ct ? strchr(ct, ';') : NULL; p; p = strchr(p + 1, ';')) {
        const char *k = p + 1;
        while (*k == ' ' || *k == '\t') k++;
        if (strncasecmp(k, "charset=", 8) != 0) continue;
        const char *v = k + 8;
        if (*v == '"') v++;
        size_t n = 0;
        for (; *v && *v != '"' && *v != ';' && *v != ' ' && *v != '\t' && n + 1 < size; v++)
            out[n++] = (char)((*v >= 'A' && *v <= 'Z') ? *v + 32 : *v);
        out[n] = 0;
        return;
    }
}

static void log_access(const http_req *req, int aborted, double seconds)
{
    if (LOG_INFO < log_get_level()) return;
    double ms = seconds * 1e3;
    char qpath[600], qroute[300];
    log_write_batched(LOG_INFO, "request",
                      "\"request_id\":\"%s\",\"method\":\"%s\",\"path\":%s,\"route\":%s,"
                      "\"status\":%u,\"bytes_in\":%zu,\"ms\":%.3f%s",
                      req->id, req->method_name, log_quote(qpath, sizeof qpath, req->path),
                      req->route_pattern ? log_quote(qroute, sizeof qroute, req->route_pattern) : "null",
                      req->replied ? req->status : 0, req->received, ms,
                      aborted ? ",\"aborted\":true" : "");
}

/* ---------------------------------------------------------------- request-time bound */

/* receiving = 1: a new request may begin now (restart its clock); 0: the request
 * arrived whole, its handler and reply are not bounded. */
static void conn_mark(http_server *srv, struct MHD_Connection *conn, int receiving)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_ent *e = ci ? ci->socket_context : NULL;
    if (!e) return;
    pthread_mutex_lock(&srv->conn_mu);
    e->receiving = receiving;
    if (receiving) e->start = clock_mono_s();
    pthread_mutex_unlock(&srv->conn_mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_ent *e = ci ? calloc(1, sizeof *e) : NULL;
        if (!e) return; /* out of memory: this connection is bounded by MHD's idle timeout only */
        e->fd = ci->connect_fd;
        e->receiving = 1;
        e->start = clock_mono_s();
        pthread_mutex_lock(&srv->conn_mu);
        e->next = srv->conns;
        if (srv->conns) srv->conns->prev = e;
        srv->conns = e;
        pthread_mutex_unlock(&srv->conn_mu);
        *socket_context = e;
        return;
    }
    /* CLOSED: MHD calls this before it closes the socket, so the reaper never
     * shuts down a descriptor number reused by another connection. */
    conn_ent *e = *socket_context;
    if (!e) return;
    pthread_mutex_lock(&srv->conn_mu);
    if (e->prev) e->prev->next = e->next;
    else srv->conns = e->next;
    if (e->next) e->next->prev = e->prev;
    pthread_mutex_unlock(&srv->conn_mu);
    free(e);
    *socket_context = NULL;
}

/* Every 200 ms: shut down the sockets of requests that took longer than
 * request_timeout_s to arrive; MHD then sees end-of-file and closes them. */
static void *reaper_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-reaper", 0, 0, 0); /* shown by top -H and in /proc */
    http_server *srv = arg;
    double limit = (double)srv->cfg.request_timeout_s;
    pthread_mutex_lock(&srv->conn_mu);
    while (!srv->reaper_stop) {
        struct timespec until;
        deadline_in_ms(&until, 200);
        pthread_cond_timedwait(&srv->reaper_cv, &srv->conn_mu, &until);
        double now = clock_mono_s();
        for (conn_ent *e = srv->conns; e; e = e->next) {
            double age = now - e->start;
            if (!e->receiving || e->cut || age <= limit) continue;
            e->cut = 1;
            shutdown(e->fd, SHUT_RDWR);
            LOG(LOG_WARN, "request too slow: connection closed", "\"seconds\":%.0f", age);
        }
    }
    pthread_mutex_unlock(&srv->conn_mu);
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_req *req = *req_cls;
    if (!req) return;
    conn_mark(req->srv, conn, 1);
    atomic_fetch_sub(&req->srv->inflight, 1);
    int aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !req->handler_ran;
    double seconds = clock_mono_s() - req->t0;
    log_access(req, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK, seconds);
    if (req->srv->cfg.on_request)
        /* A method fitd does not know is "other": clients cannot mint label values. */
        req->srv->cfg.on_request(req->srv->cfg.on_request_ctx, req->route_pattern,
                                 req->method ? req->method_name : "other",
                                 req->replied ? req->status : 0, seconds);
    if (req->cleanup) req->cleanup(req->state, aborted);
    if (req->pending) MHD_destroy_response(req->pending);
    req_free_params(req);
    for (http_hdr *h = req->headers, *next; h; h = next) {
        next = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    free(req->body);
    free(req->path);
    free(req);
    *req_cls = NULL;
}

/* Run the route's handler; a heavy one only while another pool thread stays free
 * (http_route.heavy). */
static void run_handler(http_server *srv, http_req *req)
{
    int heavy = req->route->r.heavy;
    int cap = srv->cfg.n_threads > 1 ? (int)srv->cfg.n_threads - 1 : 1;
    if (heavy && atomic_fetch_add(&srv->heavy, 1) >= cap) {
        atomic_fetch_sub(&srv->heavy, 1);
        if (http_reply_header(req, "Retry-After", "1") == 0)
            http_reply_problem(req, 503, "%d long requests (predictions, backups) are running, "
                                         "as many as run at once; retry in a moment", cap);
        return;
    }
    req->handler_ran = 1;
    req->route->r.handler(req);
    if (heavy) atomic_fetch_sub(&srv->heavy, 1);
    if (!req->replied) {
        LOG(LOG_ERROR, "handler did not reply", "\"request_id\":\"%s\"", req->id);
        http_reply_problem(req, 500, "the request could not be completed");
    }
}

/* The query's first key that the route does not take, that is repeated, or that
 * has no value ("?limit&..."). Every key kept is one of the route's few names, so
 * one bit per name marks those seen. */
typedef struct query_scan {
    const char *const *takes;
    unsigned long seen;
    const char *bad;
    const char *why;
} query_scan;

static enum MHD_Result scan_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    query_scan *q = cls;
    int k = 0;
    while (q->takes && q->takes[k] && strcmp(q->takes[k], key) != 0) k++;
    if (!q->takes || !q->takes[k]) {
        q->why = "is not a parameter of this route";
    } else if (q->seen & (1ul << k)) {
        q->why = "is given more than once";
    } else if (!value) {
        q->why = "needs a value";
    } else {
        q->seen |= 1ul << k;
        return MHD_YES;
    }
    q->bad = key;
    return MHD_NO;
}

/* A query parameter the route does not take, given twice, or without a value is a
 * 400 naming it (http_route.query): a typo would otherwise be ignored, the first
 * copy would win in silence, and "?limit" would read as no limit. */
static int reply_bad_query(http_req *req)
{
    if (req->route->r.any_query) return 0;
    query_scan q = {.takes = req->route->r.query};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_query_arg, &q);
    if (!q.bad) return 0;
    char ptr[200] = "", takes[200] = "";
    size_t n = 0;
    spec_path_push(ptr, sizeof ptr, &n, q.bad);
    for (const char *const *t = q.takes; t && *t; t++)
        snprintf(takes + strlen(takes), sizeof takes - strlen(takes), "%s%s", takes[0] ? ", " : "", *t);
    json_t *errors = json_array();
    if (errors)
        http_problem_add(errors, ptr, "'%.100s' %s (this route takes %s)", q.bad, q.why,
                         takes[0] ? takes : "none");
    http_reply_problem_errors(req, 400, "invalid query parameter", errors);
    return 1;
}

/* While draining: 503 with Retry-After, whatever the route. */
static enum MHD_Result reply_draining(http_req *req)
{
    if (http_reply_header(req, "Retry-After", "5") != 0) return MHD_NO;
    http_reply_problem(req, 503, "fitd is shutting down; retry in a few seconds");
    return MHD_YES;
}

/* First call for a request: route it and run the checks that need only the
 * headers. Returns MHD_NO only when the connection must be dropped. */
static enum MHD_Result begin_request(http_server *srv, http_req *req, const char *url)
{
    /* Route: the first route whose pattern and method match; collect the methods of
     * every route whose pattern matches for 405's Allow. HEAD runs a GET route
     * (libmicrohttpd sends the headers of its reply without the body). */
    unsigned allow = 0;
    const route_ent *hit = NULL;
    path_segs ps;
    path_split(url, &ps);
    for (int i = 0; i < srv->n_routes; i++) {
        const route_ent *e = &srv->routes[i];
        if (route_match(e, &ps, NULL) != 1) continue;
        if (!req->route_pattern) req->route_pattern = e->r.pattern;
        allow |= (unsigned)e->r.method;
        if (e->r.method == HTTP_GET) allow |= HTTP_HEAD;
        if (!hit && (e->r.method == req->method ||
                     (req->method == HTTP_HEAD && e->r.method == HTTP_GET)))
            hit = e;
    }
    if (!hit) {
        if (!allow) {
            http_reply_problem(req, 404, "no resource at this path");
            return MHD_YES;
        }
        char list[64] = "";
        for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++) {
            if (!(allow & (unsigned)method_names[i].m)) continue;
            if (list[0]) strcat(list, ", ");
            strcat(list, method_names[i].name);
        }
        if (http_reply_header(req, "Allow", list) != 0) return MHD_NO;
        http_reply_problem(req, 405, "%s is not allowed here; allowed: %s", req->method_name,
                           list);
        return MHD_YES;
    }
    req->route = hit;
    req->route_pattern = hit->r.pattern;
    if (route_match(hit, &ps, req) < 0) return MHD_NO;
    if (atomic_load(&srv->draining)) return reply_draining(req);
    /* Authentication before anything about the body: a stranger learns nothing
     * from 413/415 and no upload state is built for them. */
    if (srv->cfg.authenticate && srv->cfg.authenticate(req, srv->cfg.auth_ctx) != 0) {
        if (!req->replied) http_reply_problem(req, 401, "authentication failed");
        return MHD_YES;
    }
    if (reply_bad_query(req)) return MHD_YES;

    const char *ctype = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    media_type_of(ctype, req->media_type, sizeof req->media_type);
    if (hit->r.content_types) {
        int ok = 0;
        for (const char *const *t = hit->r.content_types; *t && !ok; t++)
            ok = strcasecmp(*t, req->media_type) == 0;
        if (!ok) {
            char list[256] = "";
            for (const char *const *t = hit->r.content_types; *t; t++) {
                if (strlen(list) + strlen(*t) + 3 >= sizeof list) break;
                if (list[0]) strcat(list, ", ");
                strcat(list, *t);
            }
            http_reply_problem(req, 415, "Content-Type %s is not accepted here; use %s",
                               req->media_type[0] ? req->media_type : "(none)", list);
            return MHD_YES;
        }
        /* Text bodies are read as UTF-8: another charset would be misread, not
         * refused. (Binary types may carry one, e.g. file -bi's "charset=binary".) */
        char cs[40];
        charset_of(ctype, cs, sizeof cs);
        int text = strncmp(req->media_type, "text/", 5) == 0 ||
                   strcmp(req->media_type, "application/json") == 0;
        if (text && cs[0] && strcmp(cs, "utf-8") != 0 && strcmp(cs, "utf8") != 0 &&
            strcmp(cs, "us-ascii") != 0) {
            http_reply_problem(req, 415, "charset %s is not accepted; send UTF-8", cs);
            return MHD_YES;
        }
    }

    req->limit = hit->r.max_body ? hit->r.max_body : srv->cfg.max_body_default;
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == ERANGE || n > req->limit) {
            http_reply_problem(req, 413, "the body (%s bytes) exceeds this route's limit of %zu bytes",
                               cl, req->limit);
            return MHD_YES;
        }
    }
    if (hit->r.on_begin && hit->r.body != HTTP_BODY_NONE) hit->r.on_begin(req);
    return MHD_YES;
}

/* Bytes past the route's limit that we read and drop after an early reply before
 * closing the connection instead (a client that ignores the answer and keeps
 * sending). A body within the limit is always read to its end: MHD sends the
 * reply only then, and a closed connection would lose it (a 422 for a header
 * error of a large upload). */
#define HTTP_DISCARD_MAX ((size_t)16 << 20)

static int discard_exhausted(const http_req *req)
{
    size_t total = req->received + req->discarded;
    return total > req->limit && total - req->limit > HTTP_DISCARD_MAX;
}

static void body_chunk(http_req *req, const char *data, size_t size)
{
    if (req->replied) { /* an error was answered: discard the rest */
        req->discarded += size;
        return;
    }
    if (size > req->limit - req->received) {
        req->received += size;
        http_reply_problem(req, 413, "the body exceeds this route's limit of %zu bytes",
                           req->limit);
        return;
    }
    req->received += size;
    switch (req->route->r.body) {
    case HTTP_BODY_NONE:
        break;
    case HTTP_BODY_STREAM:
        if (req->route->r.on_body) req->route->r.on_body(req, data, size);
        break;
    case HTTP_BODY_BUFFER:
        if (req->body_len + size + 1 > req->body_cap) {
            size_t ncap = req->body_cap ? req->body_cap : 4096;
            while (ncap < req->body_len + size + 1) ncap *= 2;
            if (ncap > req->limit + 1) ncap = req->limit + 1;
            char *nb = realloc(req->body, ncap);
            if (!nb) {
                http_reply_nomem(req);
                return;
            }
            req->body = nb;
            req->body_cap = ncap;
        }
        memcpy(req->body + req->body_len, data, size);
        req->body_len += size;
        req->body[req->body_len] = 0;
        break;
    }
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* MHD's percent-decoding of the path and query values, except that "%00" becomes
 * C0 80 (NUL's overlong form, which no UTF-8 check accepts): a decoded NUL ended
 * the C string early, so that "DELETE /v1/datasets/<id>%00junk" deleted dataset
 * <id>, and kept as the text "%00" it passed as part of a name. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else if (lo == 0) {
            *w++ = (char)0xC0;
            *w++ = (char)0x80;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **req_cls)
{
    http_server *srv = cls;
    http_req *req = *req_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) return MHD_NO;
        req->srv = srv;
        req->conn = conn;
        req->t0 = clock_mono_s();
        uint64_t n = atomic_fetch_add(&srv->id_counter, 1);
        snprintf(req->id, sizeof req->id, "%016llx",
                 (unsigned long long)splitmix64(srv->id_seed + n));
        req->method = method_from_name(method);
        snprintf(req->method_name, sizeof req->method_name, "%s", method);
        req->path = dup_str(url);
        *req_cls = req;
        atomic_fetch_add(&srv->inflight, 1);
        if (!req->path) return MHD_NO;
        return begin_request(srv, req, url);
    }
    if (*upload_data_size) {
        req->in_body = 1;
        body_chunk(req, upload_data, *upload_data_size);
        req->in_body = 0;
        *upload_data_size = 0;
        return discard_exhausted(req) ? MHD_NO : MHD_YES;
    }
    if (req->pending) {
        struct MHD_Response *resp = req->pending;
        req->pending = NULL;
        enum MHD_Result r = MHD_queue_response(conn, req->status, resp);
        MHD_destroy_response(resp);
        return r;
    }
    conn_mark(srv, conn, 0); /* the request is in: its handler is not bounded */
    /* The whole body has arrived. A request begun before the drain started does
     * not run its handler after it (its cleanup sees aborted: nothing stored). */
    if (!req->replied && atomic_load(&srv->draining) && reply_draining(req) == MHD_NO)
        return MHD_NO; /* no memory for the 503: drop the connection, never run the handler */
    if (!req->replied) run_handler(srv, req);
    return req->replied ? MHD_YES : MHD_NO;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    LOG(LOG_WARN, "libmicrohttpd", "\"detail\":%s", log_quote(q, sizeof q, msg));
}

int http_server_start(http_server *srv, char *errbuf, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* ALLOW_SUSPEND_RESUME: streamed replies wait suspended (http_reply_stream). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->cfg.host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(srv->cfg.port);
    } else if (inet_pton(AF_INET6, srv->cfg.host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(srv->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        if (errbuf) snprintf(errbuf, errlen, "not a numeric IP address: %s", srv->cfg.host);
        return -1;
    }
    /* HTTPS: GnuTLS inside libmicrohttpd, the PEM texts passed in memory. */
    int tls = srv->cfg.tls_cert_pem && srv->cfg.tls_key_pem;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)srv->cfg.tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)srv->cfg.tls_key_pem},
        {MHD_OPTION_END, 0, NULL}};
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            if (errbuf) snprintf(errbuf, errlen, "this libmicrohttpd was built without TLS");
            return -1;
        }
        flags |= MHD_USE_TLS;
    } else {
        tls_opts[0].option = MHD_OPTION_END;
    }
    srv->daemon = MHD_start_daemon(
        flags, srv->cfg.port, NULL, NULL, &on_access, srv, MHD_OPTION_EXTERNAL_LOGGER,
        &mhd_logger, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, srv->cfg.n_threads,
        MHD_OPTION_CONNECTION_LIMIT, srv->cfg.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        srv->cfg.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        srv->cfg.connection_memory, MHD_OPTION_NOTIFY_COMPLETED, &on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, &on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        &unescape_keep_nul, srv, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (srv->daemon) {
        srv->reaper_stop = 0;
        srv->reaper_on = pthread_create(&srv->reaper, NULL, reaper_main, srv) == 0;
        if (!srv->reaper_on) LOG(LOG_WARN, "request-time bound not enforced (no thread)", NULL);
        srv->ticker_stop = 0;
        int ticking = pthread_create(&srv->ticker, NULL, stream_ticker_main, srv) == 0;
        pthread_mutex_lock(&srv->stream_mu); /* requests may already be arriving */
        srv->ticker_on = ticking;
        pthread_mutex_unlock(&srv->stream_mu);
        if (!ticking) LOG(LOG_WARN, "streamed replies unavailable (no thread)", NULL);
    }
    if (!srv->daemon) {
        if (errbuf)
            snprintf(errbuf, errlen, "cannot listen on %s:%u (address in use or not permitted%s)",
                     srv->cfg.host, (unsigned)srv->cfg.port,
                     tls ? ", or the TLS certificate and key were refused" : "");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : srv->cfg.port;
    return 0;
}

void *http_server_app(const http_server *srv) { return srv->cfg.app; }

int http_server_route_count(const http_server *srv) { return srv->n_routes; }

int http_server_route_at(const http_server *srv, int i, const char **method, const char **pattern)
{
    if (i < 0 || i >= srv->n_routes) return -1;
    const http_route *r = &srv->routes[i].r;
    const char *name = NULL;
    for (size_t k = 0; k < sizeof method_names / sizeof method_names[0]; k++)
        if (method_names[k].m == r->method) name = method_names[k].name;
    if (!name) return -1; /* not one method: http_route_add takes any bits */
    if (method) *method = name;
    if (pattern) *pattern = r->pattern;
    return 0;
}

const char *const *http_server_route_query(const http_server *srv, int i, int *any)
{
    int ok = i >= 0 && i < srv->n_routes;
    if (any) *any = ok && srv->routes[i].r.any_query;
    return ok ? srv->routes[i].r.query : NULL;
}

uint16_t http_server_port(const http_server *srv) { return srv->port; }

void http_server_drain(http_server *srv)
{
    if (!srv) return;
    atomic_store(&srv->draining, 1);
    /* Wake the ticker now: waiting streams see the drain and end. */
    pthread_mutex_lock(&srv->stream_mu);
    pthread_cond_signal(&srv->stream_cv);
    pthread_mutex_unlock(&srv->stream_mu);
}

int http_server_inflight(http_server *srv)
{
    return srv ? atomic_load(&srv->inflight) : 0;
}

void http_server_stop(http_server *srv)
{
    if (!srv || !srv->daemon) return;
    if (srv->reaper_on) {
        pthread_mutex_lock(&srv->conn_mu);
        srv->reaper_stop = 1;
        pthread_cond_signal(&srv->reaper_cv);
        pthread_mutex_unlock(&srv->conn_mu);
        pthread_join(srv->reaper, NULL);
        srv->reaper_on = 0;
    }
    /* MHD must not be stopped with a connection suspended: resume every waiting
     * stream and let none suspend again (their readers now end). */
    pthread_mutex_lock(&srv->stream_mu);
    srv->streams_closing = 1;
    srv->ticker_stop = 1;
    streams_resume_all(srv);
    pthread_cond_signal(&srv->stream_cv);
    int ticking = srv->ticker_on;
    srv->ticker_on = 0;
    pthread_mutex_unlock(&srv->stream_mu);
    if (ticking) pthread_join(srv->ticker, NULL);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}

void http_server_free(http_server *srv)
{
    if (!srv) return;
    http_server_stop(srv);
    for (int i = 0; i < srv->n_routes; i++)
        for (int j = 0; j < srv->routes[i].n_segs; j++) free(srv->routes[i].segs[j]);
    free(srv->routes);
    if (srv->store_key_ok) pthread_key_delete(srv->store_key);
    pthread_mutex_destroy(&srv->conn_mu);
    pthread_cond_destroy(&srv->reaper_cv);
    pthread_mutex_destroy(&srv->stream_mu);
    pthread_cond_destroy(&srv->stream_cv);
    free(srv);
}
