/*
 * test_durability.c — what happens when things go wrong, against the real fitd
 * binary: exact resume after kill -9, a job failed after --crash-limit deaths,
 * graceful shutdown (503 while draining, a mid-epoch checkpoint, exit within
 * --shutdown-timeout, exact continuation), the shutdown watchdog ending a batch
 * that outlasts --shutdown-timeout, a diverging job (failed with epoch and batch;
 * metrics and last good checkpoint kept), and start-up refusal of a database that
 * is not SQLite, damaged, or from a newer fitd. "Exact" means: the resumed job's per-epoch records equal an
 * uninterrupted run's (all but `seconds`), one per epoch, and the SHA-256 of its
 * weights' tensor bytes equals the uninterrupted run's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <sqlite3.h>

#include "nn.h"
#include "spec.h"
#include "store.h"
#include "support.h"

static it_server srv;
static char digits_id[64];

/* ---------------------------------------------------------------- the server */

static void fitd_start(const char *const *extra)
{
    const char *args[16];
    int n = 0;
    args[n++] = "--workers";
    args[n++] = "1";
    for (int i = 0; extra && extra[i] && n < 15; i++) args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(it_start(&srv, args), 0);
}

/* kill -9 and reap; the folder and database stay for a restart. */
static void fitd_kill9(void)
{
    assert_true(srv.pid > 0);
    kill(srv.pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(srv.pid, &status, 0), srv.pid);
    assert_true(WIFSIGNALED(status));
    srv.pid = 0;
}

/* Reap fitd, which must exit within limit_s seconds of t0 (scaled for sanitized
 * builds); returns its wait status. */
static int wait_exit(double t0, double limit_s)
{
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(srv.pid, &status, WNOHANG)) == 0 && it_now_s() - t0 < limit_s * it_slow())
        sleep_ms(5);
    assert_int_equal(w, srv.pid);
    srv.pid = 0;
    return status;
}

/* A clean stop (exit 0) that keeps the folder and database for a restart. */
static void fitd_stop_keep(void)
{
    srv.keep_dir = 1;
    assert_int_equal(it_stop(&srv), 0);
    srv.keep_dir = 0;
}

static void upload_digits(void)
{
    assert_int_equal(it_upload_digits(&srv, digits_id, sizeof digits_id), 0);
}

/* A model whose epochs take long enough (tens of ms) to be stopped mid-epoch, with
 * dropout and shuffling so the RNG stream matters for exactness. */
static char *resume_spec(int epochs)
{
    char *s = malloc(1024);
    assert_non_null(s);
    snprintf(s, 1024,
             "{\"name\": \"durable\", \"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": ["
             "   {\"type\": \"dense\", \"units\": 1024, \"activation\": \"relu\","
             "    \"kernel_regularizer\": {\"l2\": 0.0001}},"
             "   {\"type\": \"dropout\", \"rate\": 0.3},"
             "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\","
             "   \"metrics\": [\"accuracy\"]},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": 2, \"validation_split\": 0.2,"
             "   \"shuffle\": true, \"seed\": 11}}",
             digits_id, epochs);
    return s;
}

static void submit(const char *spec, char *id, size_t id_len)
{
    it_submit_job(&srv, spec, id, id_len);
}

static json_t *job_get(const char *id)
{
    return it_job_get(&srv, id);
}

static const char *job_status(const json_t *j)
{
    return json_string_value(json_object_get(j, "status"));
}

static int progress_of(const json_t *j, const char *key)
{
    return (int)json_integer_value(json_object_get(json_object_get(j, "progress"), key));
}

/* Poll until the job is `want`; fails on another final state or the timeout. */
static json_t *wait_job(const char *id, const char *want, double timeout_s)
{
    return it_wait_job(&srv, id, want, timeout_s * it_slow(), 20);
}

/* Poll the live progress until the job runs epoch >= min_epoch at a batch in
 * [lo, hi] (the middle of an epoch). Fails if it ends first. */
static void wait_mid_epoch(const char *id, int min_epoch, int lo, int hi, int *epoch, int *batch)
{
    double t0 = it_now_s();
    for (;;) {
        json_t *o = job_get(id);
        char st[16];
        snprintf(st, sizeof st, "%s", job_status(o));
        int e = progress_of(o, "epoch"), b = progress_of(o, "batch");
        int running = !strcmp(st, "running");
        json_decref(o);
        if (running && e >= min_epoch && b >= lo && b <= hi) {
            *epoch = e;
            *batch = b;
            return;
        }
        if (!running && strcmp(st, "queued") != 0)
            fail_msg("job %s is %s (epoch %d, batch %d) before reaching epoch %d mid-way", id, st,
                     e, b, min_epoch);
        if (it_now_s() - t0 > 60 * it_slow()) fail_msg("job %s never reached epoch %d mid-way", id, min_epoch);
        sleep_ms(2);
    }
}

/* Start fitd (extra args), upload digits, run resume_spec(epochs) to success as
 * the reference `ref`, then submit the same spec again as `id` (ids: 64 bytes). */
static void start_reference_and_job(const char *const *extra, int epochs, char ref[64], char id[64])
{
    fitd_start(extra);
    upload_digits();
    char *spec = resume_spec(epochs);
    submit(spec, ref, 64);
    json_decref(wait_job(ref, "succeeded", 60));
    submit(spec, id, 64);
    free(spec);
}

/* The per-epoch records without `seconds` (a JSON array, decref). */
static json_t *metrics_of(const char *id)
{
    json_t *a = it_job_metrics(&srv, id);
    size_t i;
    json_t *rec;
    json_array_foreach(a, i, rec) json_object_del(rec, "seconds");
    return a;
}

/* Hex SHA-256 of the safetensors' tensor bytes (after the header, whose metadata
 * names the job). */
static void weights_hash(const char *id, char hex[65])
{
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    assert_true(r.len > 8);
    const unsigned char *b = (const unsigned char *)r.body;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    assert_true(hlen < r.len - 8);
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, r.len - 8 - (size_t)hlen, b + 8 + hlen);
    sha256_digest(&c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    it_resp_free(&r);
}

/* Where the worker last resumed the job, from fitd's log ("job resumed" lines
 * carry the epochs done and the batch). Returns 0 if it never resumed. */
static int last_resume(const char *id, int *epoch, int *batch)
{
    char *log = read_file(srv.log_path, NULL), want[160];
    int found = 0;
    assert_non_null(log);
    snprintf(want, sizeof want, "\"job_id\":\"%s\",\"epoch\":", id);
    for (char *line = strstr(log, "\"job resumed\""); line;
         line = strstr(line + 1, "\"job resumed\"")) {
        char *end = strchr(line, '\n'), *at = strstr(line, want);
        if (!at || (end && at > end)) continue;
        *epoch = atoi(at + strlen(want));
        char *b = strstr(at, "\"batch\":");
        assert_non_null(b);
        *batch = atoi(b + 8);
        found = 1;
    }
    free(log);
    return found;
}

/* A resumed job's records and weights equal the reference run's. */
static void expect_same_run(const char *ref_id, const char *id, int epochs)
{
    json_t *a = metrics_of(ref_id), *b = metrics_of(id);
    assert_int_equal(json_array_size(a), (size_t)epochs);
    assert_int_equal(json_array_size(b), (size_t)epochs);
    for (int e = 0; e < epochs; e++) {
        json_t *ra = json_array_get(a, (size_t)e), *rb = json_array_get(b, (size_t)e);
        assert_int_equal(json_integer_value(json_object_get(rb, "epoch")), e + 1);
        if (!json_equal(ra, rb)) {
            char *ta = json_dumps(ra, JSON_COMPACT), *tb = json_dumps(rb, JSON_COMPACT);
            fprintf(stderr, "epoch %d differs:\n  reference %s\n  resumed   %s\n", e + 1, ta, tb);
            free(ta);
            free(tb);
            fail();
        }
    }
    json_decref(a);
    json_decref(b);
    char ha[65], hb[65];
    weights_hash(ref_id, ha);
    weights_hash(id, hb);
    fprintf(stderr, "weights sha256 reference %.16s..., resumed %.16s...\n", ha, hb);
    assert_string_equal(ha, hb);
}

/* The job as the store has it (read straight from the database file). */
static void store_job_read(const char *id, store_job *out)
{
    char err[512];
    store *st = store_open(srv.db, err, sizeof err);
    if (!st) fail_msg("store_open: %s", err);
    assert_int_equal(store_job_get(st, id, out), STORE_OK);
    store_close(st);
}

/* Metrics rows in the database for the job (directly, through SQLite). */
static int db_int(const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(srv.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg) sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---------------------------------------------------------------- raw HTTP */

/* Open a connection and send `head` plus the first `part` bytes of `body`. */
static int raw_begin(const char *head, const char *body, size_t part)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    assert_int_equal(send(fd, body, part, MSG_NOSIGNAL), (ssize_t)part);
    return fd;
}

/* Send the rest and read the whole response (until the server closes or 5 s). */
static char *raw_finish(int fd, const char *rest, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, rest + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 65536, got = 0;
    char *buf = calloc(1, cap + 1);
    assert_non_null(buf);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == cap) break;
    }
    buf[got] = 0;
    close(fd);
    return buf;
}

/* ---------------------------------------------------------------- running fitd */

/* Run `fitd serve ARGS` to its end (a refusal), capturing its output. Fails the
 * test if it is still running after 20 s (it did not refuse). Returns the exit
 * status (-1 for a signal). */
static int run_fitd_refusal(const char *const *args, char **output)
{
    char out_path[] = "/tmp/fitd-refusal-XXXXXX";
    int fd = mkstemp(out_path);
    assert_true(fd >= 0);
    const char *argv[32];
    int n = 0;
    argv[n++] = it_fitd_bin();
    argv[n++] = "serve";
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fd);
    int status = 0, done = 0;
    for (double t0 = it_now_s(); it_now_s() - t0 < 20 * it_slow(); sleep_ms(20))
        if (waitpid(pid, &status, WNOHANG) == pid) {
            done = 1;
            break;
        }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    *output = read_file(out_path, NULL);
    unlink(out_path);
    if (!done) fail_msg("fitd did not refuse to start: %s", *output ? *output : "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv.keep_dir = 0;
    if (srv.pid <= 0 && !srv.dir[0]) return 0;
    int running = srv.pid > 0;
    int rc = it_stop(&srv); /* -1 when nothing was running */
    return !running || rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

/* kill -9 twice while a job trains (in its first epoch, before any checkpoint, and
 * mid-way through a later one); after each restart it resumes from its last
 * committed epoch. It ends with exactly one record per epoch, equal to those of an
 * uninterrupted run with the same seed, and bit-identical weights. */
static void test_resume_after_kill9(void **state)
{
    (void)state;
    enum { EPOCHS = 6 };
    char ref[64], id[64];
    int e1, b1, e2, b2;
    start_reference_and_job(NULL, EPOCHS, ref, id);
    wait_mid_epoch(id, 1, 100, 500, &e1, &b1);
    fitd_kill9();
    /* Dead: the database says running, with metrics rows 1..epochs_done only. */
    store_job j = {0};
    store_job_read(id, &j);
    assert_int_equal(j.status, STORE_JOB_RUNNING);
    assert_int_equal(db_int("SELECT count(*) FROM job_metrics WHERE job_id = ?1", id),
                     j.epochs_done);
    assert_int_equal(j.epochs_done, e1 - 1);
    store_job_free(&j);
    fprintf(stderr, "killed at epoch %d, batch %d\n", e1, b1);

    fitd_start(NULL);
    wait_mid_epoch(id, e1 + 2, 100, 500, &e2, &b2);
    fitd_kill9();
    fprintf(stderr, "killed at epoch %d, batch %d\n", e2, b2);
    fitd_start(NULL);
    /* It resumed from the checkpoint of the last committed epoch. */
    int re = -1, rb = -1;
    for (int i = 0; i < 500 && !last_resume(id, &re, &rb); i++) sleep_ms(10);
    assert_int_equal(re, e2 - 1);
    assert_int_equal(rb, 0);

    json_t *o = wait_job(id, "succeeded", 60);
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 3);
    json_decref(o);
    expect_same_run(ref, id, EPOCHS);

    /* Killed after its last epoch's commit, before its finish: the database then
     * holds it running with that epoch's checkpoint and no weights (the finish
     * undone below). The restart finishes it: the same weights, and its progress
     * says the last epoch is whole (it said batch 0 of it). */
    fitd_stop_keep();
    it_db_exec(srv.db,
               "UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = '%s';"
               "DELETE FROM job_weights WHERE job_id = '%s'",
               id, id);
    fitd_start(NULL);
    o = wait_job(id, "succeeded", 60);
    assert_int_equal(progress_of(o, "epoch"), EPOCHS);
    assert_int_equal(progress_of(o, "batch"), progress_of(o, "batches"));
    json_decref(o);
    expect_same_run(ref, id, EPOCHS);
}

/* A job that fitd keeps dying under (here kill -9, as the out-of-memory killer
 * would) in the same epoch: after the default --crash-limit of 3 such deaths since
 * its last committed epoch, the next start fails it, saying why, instead of
 * starting it again; its last good weights (epoch 1's checkpoint) stay readable,
 * and fitd serves on. */
static void test_crash_limit(void **state)
{
    (void)state;
    char id[64], spec[1024];
    fitd_start(NULL);
    upload_digits();
    /* Batch 1 through two 1536-unit layers: an epoch takes seconds. */
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"}, \"model\": {\"input_shape\": [64], \"layers\": ["
             " {\"type\": \"dense\", \"units\": 1536, \"activation\": \"relu\"},"
             " {\"type\": \"dense\", \"units\": 1536, \"activation\": \"relu\"},"
             " {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 0.0001},"
             "   \"loss\": \"sparse_categorical_crossentropy\"},"
             " \"fit\": {\"epochs\": 3, \"batch_size\": 1}}",
             digits_id);
    submit(spec, id, sizeof id);
    for (int death = 1; death <= 3; death++) {
        /* Killed in the first half of epoch 2, after epoch 1 committed. */
        for (double t0 = it_now_s();; sleep_ms(5)) {
            json_t *o = job_get(id);
            int e = progress_of(o, "epoch"), b = progress_of(o, "batch");
            int half = progress_of(o, "batches") / 2;
            int running = !strcmp(job_status(o), "running");
            json_decref(o);
            if (running && e == 2 && b >= 1 && b <= half) break;
            if (e > 2) fail_msg("job %s passed epoch 2 (death %d)", id, death);
            if (it_now_s() - t0 > 120 * it_slow()) fail_msg("job %s never ran epoch 2", id);
        }
        fitd_kill9();
        store_job j = {0};
        store_job_read(id, &j);
        assert_int_equal(j.status, STORE_JOB_RUNNING);
        assert_int_equal(j.epochs_done, 1);
        assert_int_equal(j.attempts, death);
        store_job_free(&j);
        fitd_start(NULL);
    }
    /* Failed by the start-up recovery, before any worker could claim it. */
    json_t *o = job_get(id);
    assert_string_equal(job_status(o), "failed");
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 3);
    const char *err = json_string_value(json_object_get(o, "error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "fitd stopped 3 times"));
    assert_non_null(strstr(err, "after epoch 1 and before another completed"));
    assert_non_null(strstr(err, "--crash-limit 3"));
    json_decref(o);
    /* Epoch 1's weights, from its checkpoint. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint?format=json", id);
    it_resp r;
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    assert_string_equal(it_header(&r, "Fitd-Checkpoint-Epoch", path, sizeof path), "1");
    json_t *w = it_json(&r);
    assert_int_equal(json_array_size(json_object_get(json_object_get(w, "dense_1/kernel"), "data")),
                     1536);
    json_decref(w);
    it_resp_free(&r);
    /* The service goes on: a new job trains to the end. */
    char *ok = resume_spec(1);
    char id2[64];
    submit(ok, id2, sizeof id2);
    free(ok);
    json_decref(wait_job(id2, "succeeded", 60));
}

/* SIGTERM while one batch runs far past --shutdown-timeout (a batch of 8192
 * samples through two 4096-unit layers takes seconds): the watchdog ends the
 * process at the timeout with exit 1, saying so in the log, where a drain would
 * have waited for the batch and exited 0. The job is left running, and the next
 * start queues it again. */
static void test_shutdown_watchdog(void **state)
{
    (void)state;
    static const char *const args[] = {"--shutdown-timeout", "1", NULL};
    fitd_start(args);
    /* 8192 rows of 64 features and a label, as CSV (beyond a JSON body's limit). */
    size_t cap = 8192 * (64 * 8 + 4) + 1024, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    len += (size_t)snprintf(csv, cap, "f");
    for (int c = 1; c < 64; c++) len += (size_t)snprintf(csv + len, cap - len, ",f%d", c);
    len += (size_t)snprintf(csv + len, cap - len, ",label\n");
    uint32_t lcg = 1;
    for (int row = 0; row < 8192; row++) {
        for (int c = 0; c < 64; c++) {
            lcg = lcg * 1664525u + 1013904223u;
            len += (size_t)snprintf(csv + len, cap - len, "%.4f,", (double)(lcg >> 8) / 16777216.0);
        }
        len += (size_t)snprintf(csv + len, cap - len, "%d\n", row % 10);
    }
    assert_true(len < cap);
    char ds[64], spec[1024], id[64];
    assert_int_equal(it_upload_csv(&srv, "/v1/datasets?name=wide&label=label", csv, len, ds,
                                   sizeof ds),
                     0);
    free(csv);
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"}, \"model\": {\"input_shape\": [64], \"layers\": ["
             " {\"type\": \"dense\", \"units\": 4096, \"activation\": \"relu\"},"
             " {\"type\": \"dense\", \"units\": 4096, \"activation\": \"relu\"},"
             " {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 0.0001},"
             "   \"loss\": \"sparse_categorical_crossentropy\"},"
             " \"fit\": {\"epochs\": 3, \"batch_size\": 8192}}",
             ds);
    submit(spec, id, sizeof id);
    /* Half a second after the live progress shows epoch 2, its only batch runs
     * (before that, the job could stop between epochs or before its first batch;
     * the batch takes seconds, the watchdog's deadline is 1 s after the signal). */
    int epoch = 0, batch = 0;
    wait_mid_epoch(id, 2, 0, 0, &epoch, &batch);
    assert_int_equal(epoch, 2);
    sleep_ms(500);
    kill(srv.pid, SIGTERM);
    int status = wait_exit(it_now_s(), 30);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 1) it_dump_log(&srv);
    assert_int_equal(WEXITSTATUS(status), 1);
    char *log = read_file(srv.log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "shutdown timeout: exiting with work unfinished"));
    free(log);
    store_job j = {0};
    store_job_read(id, &j);
    assert_int_equal(j.status, STORE_JOB_RUNNING);
    store_job_free(&j);
    /* The next start queues it again (and a worker takes it up). */
    fitd_start(NULL);
    json_t *o = job_get(id);
    assert_true(!strcmp(job_status(o), "queued") || !strcmp(job_status(o), "running"));
    json_decref(o);
    fitd_kill9();
}

/* SIGTERM to fitd (started with --shutdown-timeout timeout_s) while job `id` is
 * mid-epoch (epoch >= min_epoch) and two uploads are half sent: fitd answers every
 * request 503 with Retry-After (also the upload whose body completes: it is not
 * stored) and exits 0 within the timeout although one upload never completes.
 * *epoch and *batch: the progress seen just before the signal. */
static void sigterm_mid_epoch(const char *id, int min_epoch, int timeout_s, int *epoch,
                              int *batch)
{
    char head[256];
    size_t csv_len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &csv_len);
    assert_non_null(csv);
    snprintf(head, sizeof head,
             "POST /v1/datasets?name=late&label=label HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: text/csv\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             csv_len);
    wait_mid_epoch(id, min_epoch, 150, 550, epoch, batch);
    int finishing = raw_begin(head, csv, csv_len / 2);
    int hanging = raw_begin(head, csv, csv_len / 3);
    sleep_ms(100); /* both uploads are in flight before the signal */
    /* Signal right after seeing the job mid-epoch again: an epoch of this job takes
     * about 0.15 s on an idle machine, so the 100 ms above can carry it to the
     * epoch's end, where the stop is (correctly) a plain requeue. */
    wait_mid_epoch(id, min_epoch, 150, 450, epoch, batch);

    double t0 = it_now_s();
    kill(srv.pid, SIGTERM);
    /* Draining: a new request gets 503 + Retry-After (once the signal is seen). */
    it_resp r = {0};
    for (int i = 0; i < 200; i++) {
        it_resp_free(&r);
        if (it_get(&srv, "/v1/jobs", &r) != 0 || r.status == 503) break;
        sleep_ms(5);
    }
    json_decref(assert_problem(&r, 503));
    assert_string_equal(r.retry_after, "5");
    it_resp_free(&r);
    /* The upload begun before the signal: its handler does not run. */
    char *resp = raw_finish(finishing, csv + csv_len / 2, csv_len - csv_len / 2);
    if (strncmp(resp, "HTTP/1.1 503", 12) != 0) fail_msg("upload while draining: %.300s", resp);
    assert_non_null(strstr(resp, "Retry-After: 5"));
    free(resp);

    int status = wait_exit(t0, 30);
    double took = it_now_s() - t0;
    close(hanging);
    free(csv);
    fprintf(stderr, "stopped at epoch %d, batch %d: exit %d after %.2f s\n", *epoch, *batch,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, took);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(took <= timeout_s + 0.5);
}

/* SIGTERM while a job is mid-epoch (sigterm_mid_epoch): the job stores a
 * mid-epoch checkpoint and goes back to queued. Restarted, it continues from that
 * batch and ends exactly like an uninterrupted run. */
static void test_graceful_shutdown(void **state)
{
    (void)state;
    enum { EPOCHS = 10, TIMEOUT_S = 3, TRIES = 3 };
    static const char *const args[] = {"--shutdown-timeout", "3", NULL};
    char ref[64], id[64];
    int epoch, batch, tries = 0;
    start_reference_and_job(args, EPOCHS, ref, id);

    store_job j = {0};
    for (int min_epoch = 3;; min_epoch = j.epochs_done + 1) {
        store_job_free(&j);
        if (tries++ > 0) fitd_start(args);
        sigterm_mid_epoch(id, min_epoch, TIMEOUT_S, &epoch, &batch);
        /* Queued again with its checkpoint; nothing of the late upload. */
        store_job_read(id, &j);
        if (j.status != STORE_JOB_QUEUED || (j.batch <= 0 && tries == TRIES)) it_dump_log(&srv);
        assert_int_equal(j.status, STORE_JOB_QUEUED);
        assert_int_equal(j.has_checkpoint, 1);
        assert_true(j.epochs_done >= epoch - 1);
        assert_int_equal(j.checkpoint_epoch, j.epochs_done);
        assert_int_equal(db_int("SELECT count(*) FROM job_metrics WHERE job_id = ?1", id),
                         j.epochs_done);
        assert_int_equal(db_int("SELECT count(*) FROM datasets", NULL), 1);
        if (j.batch > 0 || tries == TRIES) break;
        /* The worker met the stop between two epochs (committing one takes a good
         * share of an epoch on an idle machine): requeued at that boundary, whose
         * checkpoint is the resume point. Correct, but not the mid-epoch stop under
         * test: again. */
        assert_int_equal(j.epoch, j.epochs_done);
        fprintf(stderr, "stopped at the boundary after epoch %d: again\n", j.epochs_done);
    }
    /* A mid-epoch checkpoint: the position of the batch the worker stopped at. */
    assert_true(j.batch > 0);
    int stopped_batch = j.batch, stopped_epochs = j.epochs_done;
    store_job_free(&j);

    fitd_start(args);
    json_t *o = wait_job(id, "succeeded", 60);
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), tries + 1);
    json_decref(o);
    expect_same_run(ref, id, EPOCHS);
    /* It continued from the stored batch (the worker logs where it resumed). */
    int re = -1, rb = -1;
    assert_int_equal(last_resume(id, &re, &rb), 1);
    assert_int_equal(re, stopped_epochs);
    assert_int_equal(rb, stopped_batch);
}

/* A second SIGTERM while the first one's drain waits (here for an upload that
 * never completes): fitd exits at once with status 1; the job it was training is
 * resumed at the next start. */
static void test_second_signal(void **state)
{
    (void)state;
    static const char *const args[] = {"--shutdown-timeout", "30", NULL};
    char id[64], head[256];
    int epoch, batch;
    fitd_start(args);
    upload_digits();
    char *spec = resume_spec(50);
    submit(spec, id, sizeof id);
    free(spec);
    wait_mid_epoch(id, 1, 50, 600, &epoch, &batch);
    snprintf(head, sizeof head,
             "POST /v1/datasets?name=never&label=label HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\n");
    int hanging = raw_begin(head, "p0,label\n", 9);
    sleep_ms(100);
    double t0 = it_now_s();
    kill(srv.pid, SIGTERM);
    sleep_ms(300); /* draining: the upload holds it open for up to 29 s */
    kill(srv.pid, SIGTERM);
    int status = wait_exit(t0, 20);
    double took = it_now_s() - t0;
    close(hanging);
    fprintf(stderr, "second signal: exit %d after %.2f s\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, took);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(took < 2.0 * it_slow());
    char *log = read_file(srv.log_path, NULL);
    assert_non_null(log);
    /* Taken by the watchdog, or by a library's thread (the handler): either says so. */
    assert_non_null(strstr(log, "exiting at once"));
    free(log);
    fitd_start(args);
    json_decref(wait_job(id, "running", 20));
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    expect_status(&r, 202);
    it_resp_free(&r);
    json_decref(wait_job(id, "cancelled", 20));
}

/* A diverging job fails naming the epoch and batch; the records of the epochs
 * before it and the checkpoint of the last good epoch stay readable, also across a
 * restart (recovery drops only succeeded and cancelled jobs' checkpoints), and that
 * checkpoint restores into a trainer with finite weights. */
static void test_numeric_fault(void **state)
{
    (void)state;
    char id[64], spec[1024];
    fitd_start(NULL);
    upload_digits();
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": [{\"type\": \"dense\", \"units\": 1}]},"
             " \"compile\": {\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 4e-4},"
             "   \"loss\": \"mse\"},"
             " \"fit\": {\"epochs\": 40, \"batch_size\": 16, \"shuffle\": false}}",
             digits_id);
    submit(spec, id, sizeof id);
    json_t *o = wait_job(id, "failed", 60);
    const char *err = json_string_value(json_object_get(o, "error"));
    assert_non_null(err);
    fprintf(stderr, "diverged: %s\n", err);
    const char *at = strstr(err, "at epoch ");
    assert_non_null(at);
    int bad_epoch = atoi(at + 9);
    assert_non_null(strstr(at, ", batch "));
    assert_true(bad_epoch >= 2);
    json_decref(o);

    for (int round = 0; round < 2; round++) {
        json_t *m = metrics_of(id);
        assert_int_equal(json_array_size(m), (size_t)(bad_epoch - 1));
        for (size_t e = 0; e < json_array_size(m); e++) {
            json_t *loss = json_object_get(json_array_get(m, e), "loss");
            assert_true(json_is_number(loss) && isfinite(json_number_value(loss)));
        }
        json_decref(m);

        store_job j = {0};
        store_job_read(id, &j);
        assert_int_equal(j.status, STORE_JOB_FAILED);
        assert_int_equal(j.has_checkpoint, 1);
        assert_int_equal(j.checkpoint_epoch, bad_epoch - 1);

        /* The checkpoint restores into a trainer built from the stored spec. */
        it_restored rs;
        it_restore_checkpoint(srv.db, id, digits_id, &rs);
        assert_int_equal(nn_trainer_epoch(rs.trainer), bad_epoch - 1);
        const float *p = nn_model_params_const(rs.model);
        for (size_t i = 0; i < nn_model_param_count(rs.model); i++) assert_true(isfinite(p[i]));
        it_restored_free(&rs);
        store_job_free(&j);

        if (round == 0) { /* again after a restart (start-up recovery) */
            fitd_stop_keep();
            fitd_start(NULL);
        }
    }
}

/* A file that is not a SQLite database: fitd refuses to start, names the file and
 * the problem, and leaves the file as it was. */
static void test_refuse_not_sqlite(void **state)
{
    (void)state;
    char dir[] = "/tmp/fitd-dur-XXXXXX", path[128], *out = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notes.db", dir);
    char text[4096];
    for (size_t i = 0; i < sizeof text; i++) text[i] = "these are my notes, not a database\n"[i % 35];
    assert_int_equal(it_write_file(path, text, sizeof text, 0), 0);
    const char *args[] = {"--db", path, "--listen", "127.0.0.1:0", NULL};
    int rc = run_fitd_refusal(args, &out);
    fprintf(stderr, "exit %d: %s", rc, out);
    assert_true(rc > 0 && rc != 127);
    assert_non_null(strstr(out, path));
    assert_non_null(strstr(out, "not a SQLite database"));
    size_t len = 0;
    char *after = read_file(path, &len);
    assert_int_equal(len, sizeof text);
    assert_memory_equal(after, text, sizeof text);
    free(after);
    free(out);
    unlink(path);
    rmdir(dir);
}

/* A real fitd database with damaged pages: refused, naming the file and saying
 * it is damaged. */
static void test_refuse_damaged(void **state)
{
    (void)state;
    char *out = NULL;
    fitd_start(NULL);
    upload_digits(); /* some hundred pages of data */
    fitd_stop_keep();

    /* Overwrite pages 2..9 (tables' root pages among them) with noise. */
    int page = db_int("PRAGMA page_size", NULL);
    assert_true(page >= 512);
    int fd = open(srv.db, O_WRONLY);
    assert_true(fd >= 0);
    unsigned char *noise = malloc((size_t)page * 8);
    assert_non_null(noise);
    uint32_t x = 12345;
    for (size_t i = 0; i < (size_t)page * 8; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (unsigned char)(x >> 24);
    }
    assert_int_equal(pwrite(fd, noise, (size_t)page * 8, page), (ssize_t)page * 8);
    close(fd);
    free(noise);

    const char *args[] = {"--db", srv.db, "--listen", "127.0.0.1:0", NULL};
    int rc = run_fitd_refusal(args, &out);
    fprintf(stderr, "exit %d: %s", rc, out);
    assert_true(rc > 0 && rc != 127);
    assert_non_null(strstr(out, srv.db));
    assert_true(strstr(out, "damaged") != NULL || strstr(out, "malformed") != NULL);
    free(out);
}

/* Another connection holds the database's write lock past SQLite's busy timeout
 * (5 s) while a job trains: its epoch commits wait and are tried again, and the job
 * ends as if nothing happened. Before, the commit's "database is locked" failed the
 * job (or, at its final write, left it running with no worker). */
static void test_busy_database(void **state)
{
    (void)state;
    enum { EPOCHS = 12 };
    fitd_start(NULL);
    upload_digits();
    char *spec = resume_spec(EPOCHS), id[64];
    submit(spec, id, sizeof id);
    free(spec);
    int epoch = 0, batch = 0;
    wait_mid_epoch(id, 2, 1, 1000000, &epoch, &batch);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(srv.db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    /* Held until a write of the job has waited out the busy timeout and said it
     * retries (however long an epoch takes here), and a little longer. */
    double t0 = it_now_s();
    for (int met = 0; !met;) {
        sleep_ms(100);
        char *log = read_file(srv.log_path, NULL);
        met = log && strstr(log, "database busy: retrying") != NULL;
        free(log);
        if (!met && it_now_s() - t0 > 120 * it_slow()) fail_msg("no write of the job met the lock");
    }
    sleep_ms(1500);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    json_decref(wait_job(id, "succeeded", 120));
    assert_int_equal(db_int("SELECT count(*) FROM job_metrics WHERE job_id = ?1", id), EPOCHS);
}

/* A job submitted while the server drains (its handler was waiting on the write
 * lock when SIGTERM came): the handler tells the pool after the workers stopped.
 * The pool must still be there: it was freed at once, a use after free
 * (AddressSanitizer reports it under make asan). fitd exits 0 and the job is
 * queued for the next start. */
typedef struct late_post {
    const char *spec;
    long status;
} late_post;

static void *post_late(void *arg)
{
    late_post *lp = arg;
    it_resp r;
    lp->status = it_post_json(&srv, "/v1/jobs", lp->spec, &r) == 0 ? r.status : -1;
    it_resp_free(&r);
    return NULL;
}

static void test_request_in_flight_at_stop(void **state)
{
    (void)state;
    static const char *const args[] = {"--shutdown-timeout", "20", NULL};
    fitd_start(args);
    upload_digits();
    char *spec = resume_spec(3);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(srv.db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    late_post lp = {spec, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_late, &lp), 0);
    sleep_ms(300); /* the handler waits for the lock */
    kill(srv.pid, SIGTERM);
    sleep_ms(700); /* draining: the workers are stopped */
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    pthread_join(t, NULL);
    int status = wait_exit(it_now_s(), 30);
    fprintf(stderr, "late submit: %ld, fitd exit %d\n", lp.status,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) it_dump_log(&srv);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(lp.status, 202);
    free(spec);
    assert_int_equal(db_int("SELECT count(*) FROM jobs WHERE status = 'queued'", NULL), 1);
}

/* A second server on a database another one serves: refused at once, naming the
 * database, and the first keeps its jobs (the second requeued the first's running
 * jobs at its start and trained them a second time). Once the first is gone, by
 * kill -9 too, the database can be served again. */
static void test_refuse_second_server(void **state)
{
    (void)state;
    char *out = NULL;
    fitd_start(NULL);
    char port[32];
    snprintf(port, sizeof port, "127.0.0.1:%u", srv.port);
    const char *args[] = {"--db", srv.db, "--listen", port, NULL};
    int rc = run_fitd_refusal(args, &out);
    fprintf(stderr, "exit %d: %s", rc, out);
    assert_true(rc > 0 && rc != 127);
    assert_non_null(strstr(out, "another fitd is serving"));
    assert_non_null(strstr(out, srv.db));
    free(out);
    it_resp r;
    assert_int_equal(it_get(&srv, "/healthz", &r), 0); /* the first serves on */
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
    fitd_kill9(); /* the folder stays */
    fitd_start(NULL);
}

/* A database whose schema_migrations records a version this binary does not
 * know (written by a newer fitd): refused, naming the file and both versions. */
static void test_refuse_newer_schema(void **state)
{
    (void)state;
    char *out = NULL;
    fitd_start(NULL);
    fitd_stop_keep();
    it_db_exec(srv.db, "INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (9999, '9999_from_the_future.sql', '2030-01-01')");

    const char *args[] = {"--db", srv.db, "--listen", "127.0.0.1:0", NULL};
    int rc = run_fitd_refusal(args, &out);
    fprintf(stderr, "exit %d: %s", rc, out);
    assert_true(rc > 0 && rc != 127);
    assert_non_null(strstr(out, srv.db));
    assert_non_null(strstr(out, "newer"));
    assert_non_null(strstr(out, "9999"));
    free(out);
    /* Nothing was changed: the future version is still the newest recorded. */
    assert_int_equal(db_int("SELECT max(version) FROM schema_migrations", NULL), 9999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_after_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_not_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_second_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_in_flight_at_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
