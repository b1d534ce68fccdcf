/*
 * test_ops.c — the operator handles against the real fitd binary: `fitd version`
 * (the same text as --version), `fitd migrate` (exit 0, schema version, idempotent),
 * `fitd serve --print-config` (effective values, env twins, flag over env, token
 * file contents never shown; bad values and unknown flags stop start-up), GET
 * /readyz, POST /v1/admin/backup (403 for a non-admin token, 401 without one, 409
 * without --backup-dir) and `fitd backup DEST` taken while a job trains, restored
 * by starting a fresh fitd on the copy (every committed job, its weights by
 * SHA-256 and its dataset are there), and retention (--keep-finished-jobs prunes
 * an old finished job with its weights, never a running or queued one), and the
 * threads' names and priorities (training, BLAS threads included, below request
 * handling).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nettle/sha2.h>

#include "store.h"
#include "support.h"

#define TOK_ADMIN "admin-token-0123456789abcdef"
#define TOK_USER "user-token-0123456789abcdef"

/* ---------------------------------------------------------------- helpers */

static void sha256_hex(const void *data, size_t len, char *hex)
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static char *make_tmpdir(char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/fitd-ops-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(buf));
    return buf;
}

static void rm_rf(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Submit a job on `ds`: small and quick, or long (a wide layer, batch 2). */
static void submit(const it_server *s, const char *ds, int epochs, int long_job, char *id,
                   size_t id_len)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"}, \"model\": {\"input_shape\": [64], \"layers\": ["
             " {\"type\": \"dense\", \"units\": %d, \"activation\": \"relu\"},"
             " {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\"},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": %d, \"seed\": 3}}",
             ds, long_job ? 1024 : 16, epochs, long_job ? 2 : 64);
    it_submit_job(s, spec, id, id_len);
}

/* The job's status ("" when it does not exist: 404). */
static void job_status(const it_server *s, const char *id, char *st, size_t len)
{
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(it_get(s, path, &r), 0);
    st[0] = 0;
    if (r.status == 404) {
        it_resp_free(&r);
        return;
    }
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    snprintf(st, len, "%s", json_string_value(json_object_get(o, "status")));
    json_decref(o);
    it_resp_free(&r);
}

/* SHA-256 of GET /v1/jobs/{id}/weights. */
static void weights_sha(const it_server *s, const char *id, char *hex)
{
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    assert_int_equal(it_get(s, path, &r), 0);
    expect_status(&r, 200);
    assert_true(r.len > 0);
    sha256_hex(r.body, r.len, hex);
    it_resp_free(&r);
}

static void cancel(const it_server *s, const char *id)
{
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    assert_int_equal(it_request(s, "POST", path, NULL, NULL, 0, &r), 0);
    it_resp_free(&r);
}

static int copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *data = read_file(from, &len);
    if (!data) return -1;
    int rc = it_write_file(to, data, len, 0);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- version, migrate */

static void test_version_and_migrate(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL, dir[512], db[700];
    const char *v1[] = {"version", NULL};
    const char *v2[] = {"--version", NULL};
    assert_int_equal(it_run_fitd(v1, &a), 0);
    assert_int_equal(it_run_fitd(v2, &b), 0);
    assert_string_equal(a, b); /* one function prints both */
    assert_non_null(strstr(a, "fitd "));
    assert_non_null(strstr(a, "(git "));
    assert_non_null(strstr(a, "sqlite "));
    assert_non_null(strstr(a, "openblas core "));
    free(a);
    free(b);
    const char *v3[] = {"version", "extra", NULL};
    assert_int_equal(it_run_fitd(v3, &a), 2);
    free(a);

    /* migrate creates the folder and database, applies, reports the version. */
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/sub/fitd.db", dir);
    const char *m[] = {"migrate", "--db", db, NULL};
    for (int round = 0; round < 2; round++) { /* idempotent */
        assert_int_equal(it_run_fitd(m, &a), 0);
        const char *p = strstr(a, "schema version ");
        assert_non_null(p);
        assert_true(atoi(p + 15) >= 1);
        free(a);
    }
    store *st = store_open(db, NULL, 0);
    assert_non_null(st);
    int version = 0;
    assert_int_equal(store_schema_version(st, &version), STORE_OK);
    assert_true(version >= 1);
    store_close(st);
    /* The environment twin names the database too. */
    setenv("FITD_DB", db, 1);
    const char *m2[] = {"migrate", NULL};
    assert_int_equal(it_run_fitd(m2, &a), 0);
    assert_non_null(strstr(a, db));
    free(a);
    unsetenv("FITD_DB");
    /* Not a database: refused with a message. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.db", dir);
    assert_int_equal(it_write_file(bad, "not a database at all, just text......", 38, 0), 0);
    const char *m3[] = {"migrate", "--db", bad, NULL};
    assert_int_equal(it_run_fitd(m3, &a), 1);
    assert_non_null(strstr(a, bad));
    free(a);
    rm_rf(dir);
}

/* ---------------------------------------------------------------- print-config */

static void test_print_config(void **state)
{
    (void)state;
    char dir[512], tokens[700], *out = NULL;
    make_tmpdir(dir, sizeof dir);
    snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    const char tok_text[] = TOK_ADMIN " ops\n";
    assert_int_equal(it_write_file(tokens, tok_text, strlen(tok_text), 0), 0);

    setenv("FITD_BACKUP_DIR", "/env/backups", 1);
    setenv("FITD_WORKERS", "3", 1);
    const char *args[] = {"serve", "--print-config", "--auth-tokens", tokens, "--workers", "5",
                          "--keep-finished-jobs", "1.5", "--admin-tenant", "ops", NULL};
    assert_int_equal(it_run_fitd(args, &out), 0);
    unsetenv("FITD_BACKUP_DIR");
    unsetenv("FITD_WORKERS");
    assert_non_null(strstr(out, "\nbackup-dir = /env/backups\n")); /* env twin */
    assert_non_null(strstr(out, "\nworkers = 5\n"));               /* flag wins */
    assert_non_null(strstr(out, "\nkeep-finished-jobs = 1.5\n"));
    assert_non_null(strstr(out, "\nadmin-tenant = ops\n"));
    assert_non_null(strstr(out, tokens));        /* the path may be shown */
    assert_null(strstr(out, TOK_ADMIN));         /* its contents never */
    assert_non_null(strstr(out, "listen = 127.0.0.1:8080\n"));

    /* Every key printed is a flag of --help, and each of those has a FITD_ twin. */
    char *help = NULL;
    const char *h[] = {"--help", NULL};
    assert_int_equal(it_run_fitd(h, &help), 0);
    int keys = 0;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        char *eq = strstr(line, " = ");
        assert_non_null(eq);
        char flag[80], needle[100];
        snprintf(flag, sizeof flag, "%.*s", (int)(eq - line), line);
        snprintf(needle, sizeof needle, "  --%s ", flag);
        const char *hl = strstr(help, needle);
        if (!hl) fail_msg("--print-config key %s is not in --help", flag);
        const char *hnl = strchr(hl, '\n');
        const char *twin = strstr(hl, "FITD_");
        if (!twin || (hnl && twin > hnl)) fail_msg("--%s has no environment twin", flag);
        keys++;
        line = nl ? nl + 1 : NULL;
    }
    assert_true(keys >= 20);
    free(help);
    free(out);

    /* Bad values and unknown flags stop start-up with a message (exit 2). */
    const char *bad1[] = {"serve", "--keep-finished-jobs", "-1", NULL};
    assert_int_equal(it_run_fitd(bad1, &out), 2);
    assert_non_null(strstr(out, "--keep-finished-jobs"));
    free(out);
    const char *bad2[] = {"serve", "--no-such-flag", NULL};
    assert_int_equal(it_run_fitd(bad2, &out), 2);
    assert_non_null(strstr(out, "--no-such-flag"));
    free(out);
    setenv("FITD_KEEP_FINISHED_JOBS", "soon", 1);
    const char *bad3[] = {"serve", "--print-config", NULL};
    assert_int_equal(it_run_fitd(bad3, &out), 2);
    unsetenv("FITD_KEEP_FINISHED_JOBS");
    assert_non_null(strstr(out, "FITD_KEEP_FINISHED_JOBS"));
    free(out);
    rm_rf(dir);
}

/* ---------------------------------------------------------------- readyz, admin auth */

static void test_readyz_and_admin_auth(void **state)
{
    (void)state;
    char dir[512], tokens[700], backups[700];
    make_tmpdir(dir, sizeof dir);
    snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    snprintf(backups, sizeof backups, "%s/backups", dir);
    const char tok_text[] = TOK_ADMIN " ops\n" TOK_USER " alice\n";
    assert_int_equal(it_write_file(tokens, tok_text, strlen(tok_text), 0), 0);

    it_server s = {0};
    const char *args[] = {"--workers", "1", "--auth-tokens", tokens, "--admin-tenant", "ops",
                          "--backup-dir", backups, NULL};
    assert_int_equal(it_start(&s, args), 0);
    it_resp r;
    /* /readyz needs no token. */
    assert_int_equal(it_get(&s, "/readyz", &r), 0);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ready");
    json_decref(o);
    it_resp_free(&r);

    assert_int_equal(it_request(&s, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    json_decref(assert_problem(&r, 401));
    it_resp_free(&r);
    it_server user = it_as(&s, TOK_USER);
    assert_int_equal(it_request(&user, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    json_decref(assert_problem(&r, 403));
    it_resp_free(&r);
    struct stat sb;
    assert_int_not_equal(stat(backups, &sb), 0); /* nothing was written */

    it_server admin = it_as(&s, TOK_ADMIN);
    assert_int_equal(it_request(&admin, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    expect_status(&r, 200);
    o = body_json(&r);
    const char *path = json_string_value(json_object_get(o, "path"));
    assert_non_null(path);
    assert_true(strncmp(path, backups, strlen(backups)) == 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((long long)sb.st_size,
                     (long long)json_integer_value(json_object_get(o, "bytes")));
    assert_non_null(json_string_value(json_object_get(o, "created_at")));
    json_decref(o);
    it_resp_free(&r);

    /* What backups killed half-way left (a temporary file and its journal) goes at
     * the next backup; a temporary file a live backup holds (flock, as another
     * fitd sharing the folder would) stays. */
    char dead[800], dead_journal[820], live[800];
    snprintf(dead, sizeof dead, "%s/fitd-20260101T000000Z-0000dead.db.tmp", backups);
    snprintf(dead_journal, sizeof dead_journal, "%s-journal", dead);
    snprintf(live, sizeof live, "%s/fitd-20260101T000000Z-00000001.db.tmp", backups);
    assert_int_equal(it_write_file(dead, "partial", 7, 0), 0);
    assert_int_equal(it_write_file(dead_journal, "journal", 7, 0), 0);
    assert_int_equal(it_write_file(live, "in progress", 11, 0), 0);
    int held = open(live, O_RDWR);
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX), 0);
    assert_int_equal(it_request(&admin, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    expect_status(&r, 200);
    it_resp_free(&r);
    assert_int_not_equal(stat(dead, &sb), 0);
    assert_int_not_equal(stat(dead_journal, &sb), 0);
    assert_int_equal(stat(live, &sb), 0);
    close(held);
    assert_int_equal(it_stop(&s), 0);

    /* Without --backup-dir (and without auth): 409. */
    it_server plain = {0};
    const char *pargs[] = {"--workers", "1", NULL};
    assert_int_equal(it_start(&plain, pargs), 0);
    assert_int_equal(it_request(&plain, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    json_t *p = assert_problem(&r, 409);
    assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "--backup-dir"));
    json_decref(p);
    it_resp_free(&r);
    assert_int_equal(it_stop(&plain), 0);
    rm_rf(dir);
}

/* While shutting down, /readyz answers 503 + Retry-After (a half-sent upload keeps
 * the drain waiting so the window is wide); the process still exits 0. */
static void test_readyz_while_draining(void **state)
{
    (void)state;
    it_server s = {0};
    const char *args[] = {"--workers", "1", "--shutdown-timeout", "3", NULL};
    assert_int_equal(it_start(&s, args), 0);
    it_resp r;
    assert_int_equal(it_get(&s, "/readyz", &r), 0);
    expect_status(&r, 200);
    it_resp_free(&r);

    const char head[] = "POST /v1/datasets?name=late&label=y HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: text/csv\r\nContent-Length: 1000\r\n\r\ny,a\n1,2\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    sleep_ms(100);

    kill(s.pid, SIGTERM);
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 400; i++) {
        it_resp_free(&r);
        if (it_get(&s, "/readyz", &r) != 0 || r.status == 503) break;
        sleep_ms(5);
    }
    json_decref(assert_problem(&r, 503));
    assert_string_equal(r.retry_after, "5");
    it_resp_free(&r);
    close(fd);
    int status = 0;
    assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    s.pid = 0;
    it_stop(&s); /* the access log and the folder */
}

/* ---------------------------------------------------------------- backup and restore */

#define N_DONE 2

static void test_backup_while_training_and_restore(void **state)
{
    (void)state;
    char dir[512], backups[700], cli_dest[700], ds[64], done[N_DONE][64], busy[64];
    char sha[N_DONE][65], ds_sha[65], *out = NULL;
    make_tmpdir(dir, sizeof dir);
    snprintf(backups, sizeof backups, "%s/backups", dir);
    snprintf(cli_dest, sizeof cli_dest, "%s/cli-backup.db", dir);

    it_server s = {0};
    const char *args[] = {"--workers", "1", "--backup-dir", backups, NULL};
    assert_int_equal(it_start(&s, args), 0);
    assert_int_equal(it_upload_digits(&s, ds, sizeof ds), 0);
    for (int i = 0; i < N_DONE; i++) {
        submit(&s, ds, 2, 0, done[i], sizeof done[i]);
        json_decref(it_wait_job(&s, done[i], "succeeded", 60 * it_slow(), 50));
        weights_sha(&s, done[i], sha[i]);
    }
    {
        it_resp r;
        char path[128];
        snprintf(path, sizeof path, "/v1/datasets/%s", ds);
        assert_int_equal(it_get(&s, path, &r), 0);
        expect_status(&r, 200);
        json_t *o = body_json(&r);
        snprintf(ds_sha, sizeof ds_sha, "%s", json_string_value(json_object_get(o, "sha256")));
        json_decref(o);
        it_resp_free(&r);
    }
    /* A long job trains (commits epochs) while both backups are taken. */
    submit(&s, ds, 200, 1, busy, sizeof busy);
    json_decref(it_wait_job(&s, busy, "running", 60 * it_slow(), 50));
    it_resp r;
    assert_int_equal(it_request(&s, "POST", "/v1/admin/backup", NULL, NULL, 0, &r), 0);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    char api_dest[1200];
    snprintf(api_dest, sizeof api_dest, "%s", json_string_value(json_object_get(o, "path")));
    json_decref(o);
    it_resp_free(&r);
    const char *b[] = {"backup", cli_dest, "--db", s.db, NULL};
    assert_int_equal(it_run_fitd(b, &out), 0);
    assert_non_null(strstr(out, "\"bytes\":"));
    free(out);
    assert_int_equal(it_run_fitd(b, &out), 1); /* never overwrites */
    assert_non_null(strstr(out, "already exists"));
    free(out);
    char st[32];
    job_status(&s, busy, st, sizeof st);
    assert_string_equal(st, "running"); /* training was not disturbed */
    cancel(&s, busy);
    assert_int_equal(it_stop(&s), 0);

    /* Restore each backup: a fresh fitd on a copy finds everything committed. */
    const char *sources[] = {api_dest, cli_dest};
    for (int k = 0; k < 2; k++) {
        it_server rs = {0};
        make_tmpdir(rs.dir, sizeof rs.dir);
        char db[700];
        snprintf(db, sizeof db, "%s/fitd.db", rs.dir);
        assert_int_equal(copy_file(sources[k], db), 0);
        const char *rargs[] = {"--workers", "1", NULL};
        assert_int_equal(it_start(&rs, rargs), 0);
        for (int i = 0; i < N_DONE; i++) {
            char hex[65];
            job_status(&rs, done[i], st, sizeof st);
            assert_string_equal(st, "succeeded");
            weights_sha(&rs, done[i], hex);
            assert_string_equal(hex, sha[i]);
        }
        /* The job that was training is there too, back in the queue (or running). */
        job_status(&rs, busy, st, sizeof st);
        assert_true(strcmp(st, "queued") == 0 || strcmp(st, "running") == 0);
        cancel(&rs, busy);
        char path[128];
        snprintf(path, sizeof path, "/v1/datasets/%s", ds);
        assert_int_equal(it_get(&rs, path, &r), 0);
        expect_status(&r, 200);
        o = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(o, "sha256")), ds_sha);
        json_decref(o);
        it_resp_free(&r);
        assert_int_equal(it_stop(&rs), 0);
    }
    rm_rf(dir);
}

/* ---------------------------------------------------------------- retention */

static void test_retention(void **state)
{
    (void)state;
    char ds[64], old_job[64], running[64], queued[64], st[32];
    it_server s = {0};
    /* 0.00003 days = 2.6 s; the timer runs every 200 ms. */
    setenv("FITD_TEST_RETENTION_INTERVAL_MS", "200", 1);
    const char *args[] = {"--workers", "1", "--keep-finished-jobs", "0.00003", NULL};
    assert_int_equal(it_start(&s, args), 0);
    unsetenv("FITD_TEST_RETENTION_INTERVAL_MS");
    assert_int_equal(it_upload_digits(&s, ds, sizeof ds), 0);
    submit(&s, ds, 1, 0, old_job, sizeof old_job);
    json_decref(it_wait_job(&s, old_job, "succeeded", 60 * it_slow(), 50));
    double finished = it_now_s();
    submit(&s, ds, 500, 1, running, sizeof running);
    submit(&s, ds, 1, 0, queued, sizeof queued);
    json_decref(it_wait_job(&s, running, "running", 60 * it_slow(), 50));

    /* Finished 2.6 s ago at most a couple of timer periods later: gone, weights too. */
    double end = it_now_s() + 30 * it_slow();
    do {
        job_status(&s, old_job, st, sizeof st);
        if (!st[0]) break;
        sleep_ms(100);
    } while (it_now_s() < end);
    assert_string_equal(st, "");
    assert_true(it_now_s() - finished >= 1.5); /* not before its time */
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", old_job);
    assert_int_equal(it_get(&s, path, &r), 0);
    expect_status(&r, 404);
    it_resp_free(&r);
    /* Long past the age limit, running and queued jobs stay. */
    sleep_ms(3000);
    job_status(&s, running, st, sizeof st);
    assert_string_equal(st, "running");
    job_status(&s, queued, st, sizeof st);
    assert_string_equal(st, "queued");
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    assert_int_equal(it_get(&s, path, &r), 0);
    expect_status(&r, 200); /* datasets are not pruned */
    it_resp_free(&r);
    cancel(&s, queued);
    cancel(&s, running);
    char *log = read_file(s.log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "retention: pruned finished jobs"));
    free(log);
    assert_int_equal(it_stop(&s), 0);
}


/* ---------------------------------------------------------------- thread priorities */

/* Every thread of the process: name (comm) and nice value (field 19 of stat). */
typedef struct { long tid; char name[32]; int nice; } thread_info;

static int list_threads(pid_t pid, thread_info *out, int cap)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; n < cap && (e = readdir(d)) != NULL;) {
        long tid = strtol(e->d_name, NULL, 10);
        if (tid <= 0) continue;
        char path[128], buf[1024];
        thread_info *t = &out[n];
        t->tid = tid;
        snprintf(path, sizeof path, "%s/%ld/comm", dir, tid);
        char *text = read_file(path, NULL);
        if (!text) continue; /* the thread ended meanwhile */
        snprintf(t->name, sizeof t->name, "%s", text);
        t->name[strcspn(t->name, "\n")] = 0;
        free(text);
        snprintf(path, sizeof path, "%s/%ld/stat", dir, tid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* Fields after the parenthesised name: state is field 3, nice field 19. */
        const char *p = strrchr(buf, ')');
        assert_non_null(p);
        int field = 2;
        for (p++; *p && field < 19; p++)
            if (*p == ' ') field++;
        t->nice = atoi(p);
        n++;
    }
    closedir(d);
    return n;
}

/* Request handling keeps the process's priority; the training worker, its helper
 * threads and any thread a library started before main (OpenBLAS' pool) run below
 * it, so training cannot starve the HTTP threads. */
static void test_thread_priorities(void **state)
{
    (void)state;
    it_server s;
    memset(&s, 0, sizeof s);
    const char *args[] = {"--workers", "1", NULL};
    assert_int_equal(it_start(&s, args), 0);
    thread_info t[64];
    int n = list_threads(s.pid, t, 64), workers = 0, http = 0;
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "thread %ld %-16s nice %d\n", t[i].tid, t[i].name, t[i].nice);
        if (t[i].tid == (long)s.pid) {
            assert_int_equal(t[i].nice, 0); /* main */
        } else if (strcmp(t[i].name, "fitd-worker") == 0 || strcmp(t[i].name, "fitd-par") == 0) {
            workers += strcmp(t[i].name, "fitd-worker") == 0;
            assert_int_equal(t[i].nice, 10); /* a worker and the threads its jobs split over */
        } else if (strncmp(t[i].name, "MHD-", 4) == 0) {
            http++;
            assert_int_equal(t[i].nice, 0);
        } else if (strncmp(t[i].name, "fitd-", 5) == 0) {
            assert_int_equal(t[i].nice, 0); /* log, stream ticker, reaper */
        } else {
            assert_int_equal(t[i].nice, 10); /* a library's (BLAS) thread */
        }
    }
    assert_int_equal(workers, 1);
    assert_true(http >= 1);
    assert_int_equal(it_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_migrate),
        cmocka_unit_test(test_print_config),
        cmocka_unit_test(test_readyz_and_admin_auth),
        cmocka_unit_test(test_readyz_while_draining),
        cmocka_unit_test(test_backup_while_training_and_restore),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_thread_priorities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
