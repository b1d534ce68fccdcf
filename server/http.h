/*
 * http.h — fitd's HTTP layer: a libmicrohttpd daemon, a route table, body limits
 * and the one way to answer (JSON, bytes, or an RFC 9457 problem).
 *
 * What it does: runs MHD with its internal epoll thread pool (connection limit,
 * connection timeout and per-connection memory limit always set), matches each
 * request against the registered routes (method + path pattern with `{name}`
 * segments), and answers by itself for what is the same on every route:
 *   - unknown path -> 404; known path, other method -> 405 with `Allow`;
 *   - cfg.authenticate (optional, server/auth.c) refuses -> its reply (401);
 *   - Content-Type not among the route's accepted types -> 415;
 *   - body over the route's cap -> 413, from Content-Length before any byte is
 *     read, else while counting bytes as they arrive — never after buffering;
 *   - a reply made while the body streams (413, a parse error from on_body) is
 *     held until the client has sent the rest, which is read and dropped (MHD
 *     0.9.x cannot queue a response mid-body); after 16 MiB of dropped bytes the
 *     connection is closed instead;
 *   - a handler that returns without replying -> 500 problem.
 * Every request gets a 16-hex-digit id, sent back as `X-Request-Id` and written in
 * each log line about it. One access-log line is written when a request ends,
 * with the method, the path, the matched route's pattern ("route"; for a 405 the
 * pattern the path matched, null for a 404 without a route) and the status.
 * GET /healthz and GET /v1/openapi.yaml are built in.
 *
 * What it does not: parse JSON bodies beyond http_req_json, know any resource, or
 * open the database except through the per-thread store handle (http_store).
 *
 * Body modes. HTTP_BODY_BUFFER: the body (capped at the route's max_body) is
 * collected in the request and the handler runs once it is complete
 * (http_req_body). HTTP_BODY_STREAM: on_body receives each chunk as it arrives
 * (never buffered by http), then the handler runs at the end of the body. Use
 * http_req_set_state to keep per-request state; its cleanup runs when MHD
 * reports the request finished, also when the client went away mid-upload
 * (aborted = 1), so nothing partial is ever stored if storing happens in the
 * handler only.
 *
 * Threads: handlers, on_begin, on_body and cleanups run on MHD's pool threads; one
 * request is served by one thread at a time. A request's state needs no locks;
 * anything shared between requests does. Route registration happens before
 * http_server_start only. Jansson's hash seed must be set before threads start
 * (fitd serve does it first thing).
 *
 * Ownership: strings returned by http_req_* getters are borrowed and live until
 * the request ends. http_reply_json steals its json_t; http_reply_bytes takes a
 * malloc'ed buffer and frees it (through MHD's free callback).
 */
#ifndef FITD_HTTP_H
#define FITD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct store store; /* server/store.h */
struct MHD_Connection;

typedef struct http_server http_server;
typedef struct http_req http_req;

/* Methods as bits, so one path can list the methods it allows. */
typedef enum http_method {
    HTTP_GET = 1,
    HTTP_POST = 2,
    HTTP_PUT = 4,
    HTTP_DELETE = 8,
    HTTP_PATCH = 16,
    HTTP_HEAD = 32
} http_method;

typedef enum http_body_mode {
    HTTP_BODY_NONE = 0, /* a body is ignored (read and discarded, still capped) */
    HTTP_BODY_BUFFER,   /* collect up to max_body bytes, then run the handler */
    HTTP_BODY_STREAM    /* hand chunks to on_body as they arrive */
} http_body_mode;

/* A handler answers the request with exactly one http_reply_* call (the first
 * reply wins; later ones are ignored and return -1). */
typedef void (*http_handler)(http_req *req);

/* One route. Pass to http_route_add; the struct is copied, the strings it points
 * to must outlive the server (use literals). */
typedef struct http_route {
    http_method method;
    const char *pattern;  /* "/v1/jobs/{id}/cancel": literal segments and {name} */
    http_handler handler; /* required: runs once the whole body has arrived */
    http_body_mode body;
    size_t max_body;      /* bytes; 0 = the server's max_body_default */
    /* Accepted media types (NULL-terminated, compared case-insensitively without
     * parameters, e.g. "application/json"); NULL = any, including none. A request
     * with a body whose Content-Type is missing or not listed gets 415. */
    const char *const *content_types;
    /* Optional, STREAM and BUFFER modes: runs after the checks above passed and
     * before any body byte. Return 0 to go on; non-zero after replying (e.g. a bad
     * query parameter) — the body is then discarded. */
    int (*on_begin)(http_req *req);
    /* STREAM mode only: one chunk of the body. Return 0 to go on; non-zero after
     * replying (a parse error): the rest of the body is discarded and the handler
     * does not run. */
    int (*on_body)(http_req *req, const char *data, size_t len);
    /* Non-zero: the handler holds its pool thread for long (a prediction, a
     * backup). At most n_threads - 1 such handlers run at once (1 with a single
     * thread), so a new connection finds a thread free to accept it; past that
     * the reply is a 503 with Retry-After: 1. A connection stays with the thread
     * that accepted it, so a keep-alive one whose thread runs a heavy handler
     * still waits for it. */
    int heavy;
    /* The query parameters it takes (NULL-terminated; NULL: none). Any other, a
     * repeated one or one without a value is a 400 naming it: a typo such as
     * ?stauts=running must not be ignored in silence. */
    const char *const *query;
    /* Non-zero: the query is not looked at (the dashboard's pages, the probes,
     * /metrics: they take none, and a cache-buster or a scraper's parameter means
     * nothing to them). */
    int any_query;
} http_route;

/* Server settings. Zero fields take the defaults in brackets. */
typedef struct http_config {
    const char *host;              /* numeric IPv4/IPv6 address ["127.0.0.1"] */
    uint16_t port;                 /* 0 = ephemeral; see http_server_port */
    unsigned n_threads;            /* MHD pool threads [4] */
    unsigned connection_limit;     /* [1024] */
    unsigned connection_timeout_s; /* idle seconds before MHD closes [30] */
    /* Seconds a connection may take to deliver one request's headers and body in
     * total [300]. MHD's timeout above is an idle timeout that every received byte
     * resets, so a client trickling a byte a second would hold its connection for
     * ever; past this bound the socket is shut down (the clock restarts when a
     * request completes, and stops while its handler and reply run). */
    unsigned request_timeout_s;
    size_t connection_memory;      /* MHD per-connection memory limit [32 KiB] */
    size_t max_body_default;       /* cap for routes with max_body 0 [1 MiB] */
    const char *db_path;           /* for http_store's per-thread connections */
    void *app;                     /* returned by http_req_app (e.g. the srv_config) */
    /* Optional. Runs for every request that matched a route (an unknown path
     * still gets 404 and a wrong method 405 first), before the 415/413 checks
     * and before any body byte or on_begin. It decides which paths it guards,
     * sets the tenant (http_req_set_tenant) and returns 0, or replies (401) and
     * returns non-zero: the body is then discarded. NULL: every tenant is "". */
    int (*authenticate)(http_req *req, void *auth_ctx);
    void *auth_ctx;
    /* Optional HTTPS (libmicrohttpd with GnuTLS): the PEM certificate chain and
     * private key, NUL-terminated, borrowed until http_server_free. Both or
     * neither; NULL = plain HTTP. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    /* Streamed replies (http_reply_stream) open at once [64]; more get 503. */
    unsigned max_streams;
    /* Optional: called once per request when it ends (where the access log is
     * written), on the MHD thread, with the matched route's pattern (NULL: no
     * route matched), the method name ("other" for one not in http_method), the
     * status sent (0 = none) and the seconds since the request began. Must be
     * thread-safe and quick (e.g. metrics_on_request with on_request_ctx = the
     * metrics handle). */
    void (*on_request)(void *ctx, const char *route, const char *method, unsigned status,
                       double seconds);
    void *on_request_ctx;
} http_config;

/* Create a server (not yet listening). `cfg` is copied; its strings must outlive
 * the server. Returns NULL on out of memory. Free with http_server_free. */
http_server *http_server_new(const http_config *cfg);

/* Register n routes (before http_server_start). Returns 0, or -1 on out of memory
 * or a malformed pattern. Register the same pattern once per method. */
int http_route_add(http_server *srv, const http_route *routes, size_t n);

/* Bind and start MHD's threads. Returns 0, or -1 with a message in
 * errbuf (may be NULL) when the address cannot be bound. */
int http_server_start(http_server *srv, char *errbuf, size_t errlen);

/* The bound port (useful when cfg.port was 0); 0 before start. */
uint16_t http_server_port(const http_server *srv);

/* The `app` pointer of the config (for route registration code). */
void *http_server_app(const http_server *srv);

/* The route table, built-in routes (GET /healthz, GET /v1/openapi.yaml) included,
 * in registration order: for checking it against api-docs/openapi.yaml. */
int http_server_route_count(const http_server *srv);
/* Route i's method name ("GET") and pattern ("/v1/jobs/{id}"), both borrowed for
 * the server's lifetime. Returns 0, or -1 if i is out of range or the route's
 * method is not exactly one http_method. */
int http_server_route_at(const http_server *srv, int i, const char **method, const char **pattern);
/* Route i's query parameters (http_route.query; NULL: none, or i out of range);
 * *any set when the route does not look at its query (http_route.any_query). */
const char *const *http_server_route_query(const http_server *srv, int i, int *any);

/* Graceful shutdown, first step: from now on every request to a route (new ones,
 * and those whose body was still arriving, before their handler runs) is answered 503
 * problem with Retry-After: 5; handlers already running finish normally; open
 * streamed replies end within one HTTP_STREAM_TICK_MS. The
 * listening socket stays open so clients get an answer, not a refused connection.
 * Thread-safe; idempotent. */
void http_server_drain(http_server *srv);
/* Requests begun and not yet completed (for waiting out the drain). Thread-safe. */
int http_server_inflight(http_server *srv);

/* Stop accepting, finish in-flight requests, join the threads. Idempotent. */
void http_server_stop(http_server *srv);

/* Stop if running and release everything. NULL allowed. */
void http_server_free(http_server *srv);

/* ---------------------------------------------------------------- the request */

const char *http_req_id(const http_req *req);      /* 16 hex digits */
http_method http_req_method(const http_req *req);
const char *http_req_path(const http_req *req);    /* without the query string */
/* The value of a {name} segment of the matched pattern, or NULL. */
const char *http_req_param(const http_req *req, const char *name);
/* A query-string argument (decoded), or NULL if absent. */
const char *http_req_query(const http_req *req, const char *key);
/* A request header (case-insensitive name), or NULL. */
const char *http_req_header(const http_req *req, const char *name);
/* The Content-Type's media type, lower-cased, without parameters ("" if none). */
const char *http_req_media_type(const http_req *req);
/* BUFFER mode: the body and its length (NUL-terminated; NULL/0 when empty). */
const char *http_req_body(const http_req *req, size_t *len);
/* The `app` pointer of http_config. */
void *http_req_app(const http_req *req);
/* The tenant the authenticate hook set ("" when none did: no authentication). */
const char *http_req_tenant(const http_req *req);
/* For the authenticate hook: `tenant` is borrowed and must outlive the request. */
void http_req_set_tenant(http_req *req, const char *tenant);
/* The MHD connection, e.g. for MHD_create_post_processor in a STREAM route. */
struct MHD_Connection *http_req_connection(http_req *req);

/* Per-request state for the route's callbacks. `cleanup` (may be NULL) runs once
 * when the request ends, with aborted = 1 if it did not complete normally (client
 * gone, timeout, or the handler never ran). Setting new state replaces the old
 * without running its cleanup. */
void http_req_set_state(http_req *req, void *state, void (*cleanup)(void *state, int aborted));
void *http_req_state(const http_req *req);

/* The calling thread's store connection, opened lazily with cfg.db_path and
 * closed when the thread exits (a pthread key destructor). Not shared between
 * threads; do not close it. On failure it replies 500 and returns NULL: the
 * handler then simply returns. */
store *http_store(http_req *req);

/* Does the request's If-None-Match (a list of entity tags, or "*") name `etag`
 * (quoted, e.g. "\"abc\"")? Weak comparison (RFC 9110 13.1.2): W/ prefixes are
 * ignored. 0 when the header is absent. The caller then replies 304. */
int http_req_etag_matches(const http_req *req, const char *etag);

/* BUFFER mode: the body parsed as JSON (new reference, the caller decrefs). On an
 * empty or unreadable body it replies (http_reply_json_error) and returns NULL. */
json_t *http_req_json(http_req *req);
/* The reply for the JSON text (len bytes) Jansson could not load: 422 for a number
 * out of range (1e400, an integer past 64 bits), its error at the number's JSON
 * Pointer, else 400 malformed at ""; both name line and column. */
int http_reply_json_error(http_req *req, const json_error_t *jerr, const char *text, size_t len);

/* The query parameters http_req_page reads ("limit", "cursor"): a list route's
 * http_route.query. */
extern const char *const http_page_query[];
/* Pagination from ?limit=&cursor=. *limit defaults to default_limit and must be
 * 1..max_limit; *cursor is the borrowed cursor string or NULL. Returns 0, or -1
 * after replying 400 problem (errors pointer "/limit"). */
int http_req_page(http_req *req, int default_limit, int max_limit, int *limit,
                  const char **cursor);

/* ---------------------------------------------------------------- replies */

/* Add a header to the reply that will be queued next (Location, Retry-After,
 * ETag, ...). Both strings are copied. Returns 0 or -1 (out of memory). */
int http_reply_header(http_req *req, const char *name, const char *value);

/* Reply with `body` serialized as application/json. Steals the reference (also
 * on failure). A NULL body, or one that cannot be written out for lack of memory,
 * is answered 503 out of memory instead. Returns 0, or -1 if a reply was already
 * queued or none could be. */
int http_reply_json(http_req *req, unsigned status, json_t *body);

/* Reply with `len` bytes of `data` (malloc'ed; ownership passes to MHD, which
 * frees it — also on failure). */
int http_reply_bytes(http_req *req, unsigned status, const char *content_type, void *data,
                     size_t len);

/* Reply with a static or otherwise long-lived buffer (not copied, not freed). */
int http_reply_static(http_req *req, unsigned status, const char *content_type, const void *data,
                      size_t len);

/* Reply without a body (204, 202 without a document, ...). */
int http_reply_empty(http_req *req, unsigned status);

/* Reply application/problem+json (RFC 9457) with type "about:blank", title the
 * standard reason phrase of `status`, status and detail (printf format; may be
 * NULL). */
int http_reply_problem(http_req *req, unsigned status, const char *detail_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* 503 "out of memory" with Retry-After: running out is the machine's state, not
 * the request's fault, and a retry may well succeed. Every such reply is this one. */
int http_reply_nomem(http_req *req);

/* The same with an `errors` array of {"pointer", "message"} objects (stolen;
 * may be NULL). Validation failures use 422 with every problem listed. */
int http_reply_problem_errors(http_req *req, unsigned status, const char *detail,
                              json_t *errors);

/* Reply for a failed store call: `rc` is a store_rc (store.h) and the detail is
 * store_errmsg(st). NOT_FOUND 404, CONFLICT 409, INVALID 400, BUSY 503 with
 * Retry-After: 1, LIMIT 503 with Retry-After: 5, FULL 507, anything else 500. */
int http_reply_store_error(http_req *req, store *st, int rc);

/* ---------------------------------------------------------------- streamed replies
 *
 * A streamed reply (Server-Sent Events) has no length: its body is produced by a
 * reader that http calls on an MHD pool thread whenever the client can take more
 * bytes (chunked under HTTP/1.1). The reader must never block. When it has nothing
 * to send it returns 0: http then suspends the connection (MHD_suspend_connection,
 * so no thread spins or waits on it) and a timer thread resumes it every
 * HTTP_STREAM_TICK_MS, when the reader is asked again. A waiting stream costs a
 * connection slot and its state, no thread. While suspended MHD does not notice a
 * client that went away; the next write fails and ends the request, so a reader
 * that writes something now and then (a keep-alive) bounds how long a vanished
 * client is held. A stream ends when the reader returns HTTP_STREAM_END, when the
 * write fails, at http_server_drain (within one tick) and at http_server_stop.
 */
#define HTTP_STREAM_TICK_MS 250
#define HTTP_STREAM_END ((ssize_t)-1)

/* Copy at most `max` (> 0) bytes into buf and return their count; 0 = nothing now
 * (asked again within a tick); HTTP_STREAM_END = the body is complete. `req` is
 * the request (for http_store, http_req_id; a reply call is ignored), valid during
 * the call. One call at a time per stream, on any of MHD's pool threads. */
typedef ssize_t (*http_stream_fn)(void *ctx, http_req *req, char *buf, size_t max);

/* Reply `status` with a body streamed by `reader`. `ctx` is passed to it and
 * released with free_fn (may be NULL) once the stream is over, also when this
 * call fails; free_fn runs after the request ended and must not use it. At most
 * cfg.max_streams streams are open at once: past it the reply is a 503 problem
 * with Retry-After: 5. Returns 0, or -1 after replying 503 (over the limit, out
 * of memory) or when a reply was already queued. */
int http_reply_stream(http_req *req, unsigned status, const char *content_type,
                      http_stream_fn reader, void (*free_fn)(void *ctx), void *ctx);

/* News arrived (a job committed an epoch or ended): ask every waiting stream's
 * reader now rather than at its next tick. Thread-safe; the ticker does the work. */
void http_server_wake_streams(http_server *srv);

/* Streamed replies open now. Thread-safe. */
int http_server_streams(http_server *srv);

/* Append {"pointer": pointer, "message": printf(fmt, ...)} to `errors` (a JSON
 * array). Returns 0 or -1 on out of memory. */
int http_problem_add(json_t *errors, const char *pointer, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The standard reason phrase for a status ("Not Found"); "Unknown" otherwise. */
const char *http_status_phrase(unsigned status);

#endif
