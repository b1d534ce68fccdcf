/*
 * support.h — helpers shared by the unit and integration tests (cmocka).
 *
 * Include after <stdarg.h>, <stddef.h>, <setjmp.h> and <cmocka.h>.
 */
#ifndef FITD_TEST_SUPPORT_H
#define FITD_TEST_SUPPORT_H

#include <stddef.h>

/* Fail the test unless |a[i] - b[i]| <= atol + rtol * |b[i]| for every i; the
 * message names `label`, the worst index and its difference. */
#define assert_close(a, b, n, atol, rtol, label) \
    support_assert_close((a), (b), (n), (atol), (rtol), (label), __FILE__, __LINE__)
void support_assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                          const char *label, const char *file, int line);

/* Path of a file under tests/fixtures/ (static buffer, valid until the next call).
 * Tests run from the repository root; FITD_FIXTURES overrides the folder. */
const char *fixture_path(const char *name);

/* Read a whole file into a malloc'ed, NUL-terminated buffer; NULL on failure. */
char *read_file(const char *path, size_t *len);

/* ---------------------------------------------------------------- integration tests
 *
 * A real fitd (path from FITD_BIN, default build/fitd) on an ephemeral loopback
 * port with a database in a fresh mkdtemp folder; libcurl requests against it.
 * Prefix it_ (the libfitd.a linked into every test binary owns http_*).
 */
#include <jansson.h>
#include <sys/types.h>

typedef struct it_server {
    pid_t pid;
    unsigned port;
    char dir[512];      /* the temp folder (database, port file, log) */
    char db[600];
    char log_path[600]; /* fitd's stderr */
    int keep_dir;       /* it_stop leaves dir in place (for a restart) */
    /* Set before it_start (they stay for every request): */
    int tls;            /* requests use https://, verifying against ca_file */
    char ca_file[600];  /* PEM of the CA (or self-signed certificate) to trust */
    char token[256];    /* "" or a bearer token sent as Authorization (unless the
                           request's own headers hold an Authorization header) */
} it_server;

/* A copy of `s` whose requests carry `token` ("" = none): for calling one server
 * as several tenants. Never pass the copy to it_stop. */
it_server it_as(const it_server *s, const char *token);

/* The fitd binary to run (FITD_BIN or build/fitd). */
const char *it_fitd_bin(void);

/* Start fitd in a new temp folder with `--listen 127.0.0.1:0 --db DIR/fitd.db
 * --port-file DIR/port` and the NULL-terminated extra args (may be NULL), then wait
 * until GET /healthz answers 200. Returns 0, or -1 (with fitd's log printed).
 * When s->dir is already set (a restart), that folder and database are reused. */
int it_start(it_server *s, const char *const *extra_args);

/* SIGTERM, wait (kill after 30 s), and remove the temp folder unless keep_dir.
 * Before removing it, when env FITD_ACCESS_LOG names a file, append to it one
 * "METHOD ROUTE STATUS" line per request in fitd's access log (ROUTE "-" when no
 * route matched): tests/run.sh checks these against api-docs/openapi.yaml.
 * Returns fitd's exit status (0 for a clean stop; a sanitizer report makes it
 * non-zero), or -1 if it had to be killed. */
int it_stop(it_server *s);

/* Print fitd's log (for a failing test). */
void it_dump_log(const it_server *s);

/* A response: status, selected headers, and the body (malloc'ed, NUL-terminated). */
typedef struct it_resp {
    long status;
    char *body;
    size_t len;
    char content_type[128];
    char location[256];
    char allow[128];
    char request_id[64];
    char retry_after[32];
    char etag[128];
    char www_authenticate[160];
} it_resp;
void it_resp_free(it_resp *r);

/* One request to the server. `headers` is a NULL-terminated list of "Name: value"
 * (may be NULL); body may be NULL. method "GET" with a body is sent as given.
 * Returns 0 once a response was received, -1 on a transport error. */
int it_request(const it_server *s, const char *method, const char *path,
               const char *const *headers, const void *body, size_t len, it_resp *out);

/* A request whose body is streamed with chunked transfer encoding: `total` bytes
 * of `fill` (repeated pattern), produced chunk by chunk. *sent receives the bytes
 * actually read by libcurl (the server may answer and stop reading early). */
int it_request_chunked(const it_server *s, const char *method, const char *path,
                       const char *const *headers, const void *fill, size_t fill_len,
                       size_t total, it_resp *out, size_t *sent);

/* Shorthands: it_get / it_delete / it_post_json (Content-Type: application/json). */
int it_get(const it_server *s, const char *path, it_resp *out);
int it_delete(const it_server *s, const char *path, it_resp *out);
int it_post_json(const it_server *s, const char *path, const char *json, it_resp *out);

/* The body parsed as JSON (new reference) or NULL. */
json_t *it_json(const it_resp *r);

/* Send raw bytes on a fresh TCP connection, wait hold_ms (so the server starts
 * on the request), then close it without reading — an aborted request. Returns 0
 * or -1. */
int it_raw_send_close(const it_server *s, const void *data, size_t len, long hold_ms);

/* Run `fitd args...` (NULL-terminated, without the program name), capture stdout
 * and stderr together into *output (malloc'ed), and return the exit status (-1 if
 * it could not be run or was killed by a signal). */
int it_run_fitd(const char *const *args, char **output);

/* Assert a problem+json reply with this status: content type, "status" member
 * equal, "title" and "type" present. Returns the parsed body (the caller decrefs). */
#define assert_problem(resp, code) support_assert_problem((resp), (code), __FILE__, __LINE__)
json_t *support_assert_problem(const it_resp *r, long status, const char *file, int line);

/* Build a multipart/form-data body from parts (name, filename or NULL, data,
 * len); *content_type receives the header value with the boundary (static).
 * Returns a malloc'ed body. */
typedef struct it_part {
    const char *name;
    const char *filename;
    const void *data;
    size_t len;
} it_part;
char *it_multipart(const it_part *parts, int n, size_t *len, const char **content_type);

/* Write a buffer to a file; 0 or -1. gzip-compress it when `gzip`. */
int it_write_file(const char *path, const void *data, size_t len, int gzip);
/* Compress a buffer as a gzip stream (malloc'ed). */
void *it_gzip(const void *data, size_t len, size_t *out_len);

#endif
