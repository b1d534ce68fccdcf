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

/* Sleep `ms` milliseconds (resumed after a signal). */
void sleep_ms(long ms);

/* ---------------------------------------------------------------- integration tests
 *
 * A real fitd (path from FITD_BIN, default build/fitd) on an ephemeral loopback
 * port with a database in a fresh mkdtemp folder; libcurl requests against it.
 * Prefix it_ (the libfitd.a linked into every test binary owns http_*).
 */
#include <jansson.h>
#include <sys/types.h>

#include "spec.h"

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
    char headers[8192]; /* every header line of the final response, as received
                           ("Name: value\r\n"...; cut at the size) */
    size_t headers_len;
} it_resp;
void it_resp_free(it_resp *r);

/* The value of response header `name` (case-insensitive, leading blanks trimmed)
 * copied into out, "" when absent. Returns out. */
const char *it_header(const it_resp *r, const char *name, char *out, size_t cap);

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

/* When FITD_RESPONSE_LOG names a file, append one JSON line for this response:
 * {"method", "path" (without the query), "status", "type" (Content-Type), and for
 * a JSON type "body" (the parsed body, when at most 1 MiB) or "body_error": true
 * (a body that is not JSON)}, plus the members of `extra` (stolen, may be NULL;
 * an event stream's "events"). tests/openapi_responses.py checks the lines against
 * api-docs/openapi.yaml after every integration test ran. it_request records each
 * of its responses; a test with its own client calls this. Thread-safe. */
void it_record_response(const char *method, const char *path, long status,
                        const char *content_type, const void *body, size_t len, json_t *extra);

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

/* FITD_TEST_SLOW if set (make tsan: 10), else 4 under a sanitized build
 * (FITD_TEST_SANITIZED, several times slower), else 1: multiply a timeout by it. */
double it_slow(void);

/* Seconds on the monotonic clock. */
double it_now_s(void);

/* The Keras model documents under tests/fixtures/keras/, one per version family. */
#define N_KERAS_FIXTURES 7
extern const char *const keras_fixtures[N_KERAS_FIXTURES];

/* tests/fixtures/keras/NAME parsed as JSON, duplicate keys rejected (a new
 * reference, the caller decrefs); fails the test, printing why, when it cannot. */
json_t *keras_fixture(const char *name);

/* Assert the response status (on failure print the status and the body's start). */
#define expect_status(resp, want) support_expect_status((resp), (want), __FILE__, __LINE__)
void support_expect_status(const it_resp *r, long want, const char *file, int line);

/* The body parsed as JSON (a new reference, the caller decrefs); fails the test
 * when it is not JSON. */
#define body_json(resp) support_body_json((resp), __FILE__, __LINE__)
json_t *support_body_json(const it_resp *r, const char *file, int line);

/* GET path: asserts 200 and a JSON body; returns it (the caller decrefs). */
json_t *it_get_json(const it_server *s, const char *path);

/* Run SQL (printf format) on the database file at db_path, as a test that sets
 * up a state by hand does (a stopped fitd's, or a running one's: 5 s busy
 * timeout); asserts it ran. Returns the rows its last statement changed. */
int it_db_exec(const char *db_path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* GET /v1/jobs/{id}: asserts 200 and returns the job (the caller decrefs). */
json_t *it_job_get(const it_server *s, const char *id);

/* GET /v1/jobs/{id}/metrics: asserts 200 and a JSON array of epoch records;
 * returns it (the caller decrefs). */
json_t *it_job_metrics(const it_server *s, const char *id);

/* A fresh temp folder (under TMPDIR or /tmp) into `dir`, holding a file `text`
 * for --auth-tokens whose path goes to `tokens`; fails the test when it cannot.
 * The caller removes both. */
void it_tokens_dir(char *dir, size_t dir_len, char *tokens, size_t tokens_len, const char *text);

/* POST body (len bytes, Content-Type ctype) to path and copy the created
 * resource's id into `id`. Returns 0, or -1 (with the reason printed) unless the
 * answer was `want` (201, or 202 for a job) with an id. */
int it_post_id(const it_server *s, const char *path, const char *ctype, const char *body,
               size_t len, long want, char *id, size_t id_len);

/* it_post_id of csv as text/csv to path ("/v1/datasets?name=...&label=..."). */
int it_upload_csv(const it_server *s, const char *path, const char *csv, size_t len, char *id,
                  size_t id_len);

/* Upload tests/fixtures/digits.csv as dataset "digits" (label column "label") and
 * copy its id into `id`. Returns 0, or -1 (with the reason printed) unless the
 * answer was 201 with an id: usable in a group setup as in a test. */
int it_upload_digits(const it_server *s, char *id, size_t id_len);

/* A job's stored checkpoint (read straight from fitd's database) restored into a
 * new trainer built from the job's stored spec, on dataset ds_id: the state a
 * resume starts from. it_restore_checkpoint fails the test on any error; free
 * with it_restored_free. */
typedef struct it_restored {
    spec_job sj;      /* the job's spec, parsed */
    nn_dataset ds;
    nn_model *model;  /* the restored weights */
    nn_trainer *trainer;
    int epoch;        /* the checkpoint's epoch */
} it_restored;
void it_restore_checkpoint(const char *db, const char *job_id, const char *ds_id, it_restored *out);
void it_restored_free(it_restored *r);

/* A cmocka group teardown for a group setup that put its it_server in *state:
 * it_stop; -1 unless fitd exited 0 (under ASan, also no leaks). */
int it_group_teardown(void **state);

/* it_start, then it_upload_digits: 0, or -1 when either failed (for a group setup). */
int it_start_with_digits(it_server *s, const char *const *extra_args, char *id, size_t id_len);

/* GET a chart: asserts 200, image/svg+xml and that xmllint (libxml2's parser)
 * accepts it. Returns the body (malloc'ed, the caller frees). */
char *it_get_svg(const it_server *s, const char *path);

/* How many times `needle` occurs in `s` (overlapping occurrences count). */
int it_count_str(const char *s, const char *needle);

/* POST the JSON job `spec` to /v1/jobs; asserts 202 and copies the job id into `id`. */
void it_submit_job(const it_server *s, const char *spec, char *id, size_t id_len);

/* Poll GET /v1/jobs/{id} every poll_ms until its status is `want` (any final
 * state when want is NULL); fails the test when it ends in another final state
 * (succeeded, failed, cancelled) or after timeout_s (not scaled: see it_slow).
 * Returns the job (the caller decrefs). */
json_t *it_wait_job(const it_server *s, const char *id, const char *want, double timeout_s,
                    long poll_ms);

/* Run the README.md shell block that follows the first `marker` (e.g. "<!-- events:")
 * as written, with its FITD= line pointed at `s`: bash, a 300 s timeout, in s->dir
 * with the repository's tests/ linked in (so @tests/fixtures/... resolves; run
 * from the repository root). Fails the test, printing the output and fitd's log,
 * when the block exits non-zero. Returns stdout+stderr (malloc'ed, the caller frees). */
char *it_run_readme_block(const it_server *s, const char *marker);

#endif
