/*
 * test_sweeps.c — the /v1/sweeps routes against a real fitd (two workers, two
 * tenants through --auth-tokens, a temporary database): a 12-trial grid sweep on
 * digits.csv whose ranking is checked against each trial job's own metrics and
 * whose results CSV is parsed and checked; successive halving checked trial by
 * trial against the documented rule (max_parallel 1 makes it deterministic, and
 * the trials' timestamps show the cap held); cancel; restart; every error status.
 */
#include <math.h>
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

#include "support.h"

#define TOK_A "sweep-alice-token-0123456789"
#define TOK_B "sweep-bob-token-abcdefghijkl"

static it_server srv; /* requests carry TOK_A unless made through it_as */
static char tmpdir[512];
static char tokens_path[600];
static char digits_id[64];

/* ---------------------------------------------------------------- HTTP */

static it_resp req_as(const it_server *s, const char *method, const char *path, const char *ctype,
                      const char *body, const char *extra_header)
{
    it_resp r;
    const char *h[3] = {NULL, NULL, NULL};
    char ct[128];
    int n = 0;
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h[n++] = ct;
    }
    if (extra_header) h[n++] = extra_header;
    assert_int_equal(it_request(s, method, path, h, body, body ? strlen(body) : 0, &r), 0);
    return r;
}

static it_resp get(const char *path)
{
    return req_as(&srv, "GET", path, NULL, NULL, NULL);
}

static it_resp post_json(const char *path, const char *body)
{
    return req_as(&srv, "POST", path, "application/json", body, NULL);
}

/* Does a problem in `errors` have this pointer and a message containing needle? */
static int has_problem(const json_t *problem, const char *pointer, const char *needle)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(problem, "errors"), i, p) {
        const char *ptr = json_string_value(json_object_get(p, "pointer"));
        const char *msg = json_string_value(json_object_get(p, "message"));
        if (ptr && msg && (!pointer || strcmp(ptr, pointer) == 0) && (!needle || strstr(msg, needle)))
            return 1; /* pointer NULL: any */
    }
    char *all = json_dumps(problem, JSON_INDENT(1));
    fprintf(stderr, "no problem at %s (%s) in %s\n", pointer ? pointer : "(any)", needle ? needle : "",
            all);
    free(all);
    return 0;
}

/* ---------------------------------------------------------------- fixtures */

static const char tokens_text[] = TOK_A " alice\n" TOK_B " bob\n";

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/fitd-sweeps-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tmpdir);
    if (it_write_file(tokens_path, tokens_text, strlen(tokens_text), 0) != 0) return -1;
    const char *args[] = {"--workers", "2", "--max-queued", "100", "--auth-tokens", tokens_path,
                          NULL};
    memset(&srv, 0, sizeof srv);
    snprintf(srv.token, sizeof srv.token, "%s", TOK_A);
    return it_start_with_digits(&srv, args, digits_id, sizeof digits_id);
}

static int group_teardown(void **state)
{
    int rc = it_stop(&srv) == 0 ? 0 : -1;
    char p[700];
    snprintf(p, sizeof p, "%s/tokens", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return rc;
}

/* A sweep body over a small digits model: `params` and `extra` are members
 * (text) added after "method". Returns malloc'ed JSON. */
static char *sweep_body(const char *method, const char *params, const char *extra, int epochs,
                        const char *optimizer)
{
    char *s = malloc(4096);
    assert_non_null(s);
    int n = snprintf(
        s, 4096,
        "{\"name\": \"digits-grid\", \"base\": {"
        " \"data\": {\"train\": \"%s\"},"
        " \"model\": {\"input_shape\": [64], \"layers\": ["
        "   {\"type\": \"dense\", \"units\": 16, \"activation\": \"relu\","
        "    \"kernel_regularizer\": {\"l2\": 0}},"
        "   {\"type\": \"dropout\", \"rate\": 0},"
        "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
        " \"compile\": {\"optimizer\": %s, \"loss\": \"sparse_categorical_crossentropy\","
        "   \"metrics\": [\"accuracy\"]},"
        " \"fit\": {\"epochs\": %d, \"batch_size\": 64, \"validation_split\": 0.2, \"seed\": 3}},"
        " \"method\": \"%s\", \"parameters\": {%s}%s%s}",
        digits_id, optimizer ? optimizer : "\"adam\"", epochs, method, params, extra ? ", " : "",
        extra ? extra : "");
    assert_true(n > 0 && n < 4096);
    return s;
}

static const char grid_params[] = "\"/model/layers/0/kernel_regularizer/l2\": [0, 1e-4, 1e-3, 1e-2],"
                                  "\"/model/layers/1/rate\": [0, 0.2, 0.5]";

/* Submit; checks 202 and Location; copies the id. Returns the body. */
static json_t *submit(const char *body, char *id, size_t len)
{
    it_resp r = post_json("/v1/sweeps", body);
    expect_status(&r, 202);
    json_t *o = body_json(&r);
    const char *sid = json_string_value(json_object_get(o, "id"));
    assert_non_null(sid);
    assert_memory_equal(sid, "swp_", 4);
    snprintf(id, len, "%s", sid);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/sweeps/%s", sid);
    assert_string_equal(r.location, loc);
    it_resp_free(&r);
    return o;
}

/* Poll GET /v1/sweeps/{id} until it finished; returns the final body. */
static json_t *wait_sweep(const char *id, int timeout_s)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/sweeps/%s", id);
    for (int i = 0; i < timeout_s * 10; i++) {
        it_resp r = get(path);
        expect_status(&r, 200);
        json_t *o = body_json(&r);
        it_resp_free(&r);
        const char *st = json_string_value(json_object_get(o, "status"));
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) return o;
        json_decref(o);
        sleep_ms(100);
    }
    it_dump_log(&srv);
    fail_msg("sweep %s did not finish within %d s", id, timeout_s);
    return NULL;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("%s is not a number", key);
    return json_number_value(v);
}

static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

/* ---------------------------------------------------------------- the results CSV */

/* Text a spreadsheet would run as a formula is written with a leading ': a swept
 * job name "=1+1" is the cell "'=1+1"; numbers, negative ones too, stay as they are. */
static void test_results_csv_defuses_formulas(void **state)
{
    char id[64], path[160];
    char *body = sweep_body("grid", "\"/name\": [\"=1+1\", \"@x\", \"plain\"],"
                                    "\"/model/layers/0/kernel_regularizer/l2\": [0]",
                            NULL, 1, NULL);
    json_decref(submit(body, id, sizeof id));
    free(body);
    json_decref(wait_sweep(id, 120));
    snprintf(path, sizeof path, "/v1/sweeps/%s/results", id);
    it_resp r = req_as(&srv, "GET", path, NULL, NULL, "Accept: text/csv");
    expect_status(&r, 200);
    assert_non_null(strstr(r.body, ",\"'=1+1\","));
    assert_non_null(strstr(r.body, ",\"'@x\","));
    assert_non_null(strstr(r.body, ",plain,"));
    assert_null(strstr(r.body, ",=1+1"));
    assert_null(strstr(r.body, ",'0"));
    it_resp_free(&r);
}

/* ---------------------------------------------------------------- the grid */

/* One CSV line split on commas (the grid's fields hold none). */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static int column(char **head, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(head[i], name) == 0) return i;
    fail_msg("no column %s", name);
    return -1;
}

static void test_grid_sweep_ranking_and_results(void **state)
{
    char id[64], path[160];
    char *body = sweep_body("grid", grid_params,
                            "\"objective\": {\"metric\": \"val_loss\", \"mode\": \"min\"}, "
                            "\"max_parallel\": 2",
                            3, NULL);
    json_t *sub = submit(body, id, sizeof id);
    free(body);
    assert_int_equal(json_integer_value(json_object_get(sub, "n_trials")), 12);
    assert_int_equal(json_array_size(json_object_get(sub, "trials")), 12);
    assert_string_equal(json_string_value(json_object_get(sub, "method")), "grid");
    json_decref(sub);

    json_t *w = wait_sweep(id, 240);
    assert_string_equal(json_string_value(json_object_get(w, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(w, "counts"), "succeeded")),
                     12);
    json_t *trials = json_object_get(w, "trials");
    assert_int_equal(json_array_size(trials), 12);
    int seen[12] = {0};
    double prev = -INFINITY;
    size_t i;
    json_t *t;
    json_array_foreach(trials, i, t) {
        int k = (int)json_integer_value(json_object_get(t, "trial"));
        assert_true(k >= 0 && k < 12);
        seen[k]++;
        /* the grid's order: l2 varies slowest */
        const json_t *params = json_object_get(t, "params");
        const double l2s[] = {0, 1e-4, 1e-3, 1e-2}, rates[] = {0, 0.2, 0.5};
        double l2 = num(params, "/model/layers/0/kernel_regularizer/l2");
        double rate = num(params, "/model/layers/1/rate");
        assert_true(l2 == l2s[k / 3] && rate == rates[k % 3]);
        /* the job ran exactly these settings */
        const char *job_id = json_string_value(json_object_get(t, "job_id"));
        json_t *job = it_job_get(&srv, job_id);
        json_t *layers = json_object_get(json_object_get(json_object_get(job, "spec"), "model"),
                                         "layers");
        assert_true(num(json_array_get(layers, 1), "rate") == rate);
        char *spec_text = json_dumps(json_array_get(layers, 0), JSON_COMPACT);
        if (l2 > 0) assert_non_null(strstr(spec_text, l2 == 1e-4 ? "0.0001" : l2 == 1e-3 ? "0.001" : "0.01"));
        free(spec_text);
        json_decref(job);
        /* objective = the job's own best val_loss, at its epoch; final losses */
        json_t *m = it_job_metrics(&srv, job_id);
        assert_int_equal(json_array_size(m), 3);
        double best = INFINITY;
        int best_epoch = 0;
        size_t e;
        json_t *rec;
        json_array_foreach(m, e, rec) {
            double v = num(rec, "val_loss");
            if (v < best) {
                best = v;
                best_epoch = (int)json_integer_value(json_object_get(rec, "epoch"));
            }
        }
        const json_t *last = json_array_get(m, 2);
        assert_true(close_to(num(t, "objective"), best));
        assert_int_equal(json_integer_value(json_object_get(t, "best_epoch")), best_epoch);
        assert_true(close_to(num(t, "loss"), num(last, "loss")));
        assert_true(close_to(num(t, "val_loss"), num(last, "val_loss")));
        assert_true(close_to(num(t, "gap"), num(last, "val_loss") - num(last, "loss")));
        json_decref(m);
        /* ranked best first */
        assert_true(num(t, "objective") >= prev);
        prev = num(t, "objective");
    }
    for (int k = 0; k < 12; k++) assert_int_equal(seen[k], 1);
    assert_true(json_equal(json_object_get(w, "best"), json_array_get(trials, 0)));

    /* results as JSON: the same order */
    snprintf(path, sizeof path, "/v1/sweeps/%s/results", id);
    it_resp r = get(path);
    expect_status(&r, 200);
    json_t *res = body_json(&r);
    it_resp_free(&r);
    json_t *rows = json_object_get(res, "rows");
    assert_int_equal(json_array_size(rows), 12);
    json_array_foreach(rows, i, t) {
        const json_t *tr = json_array_get(trials, i);
        assert_string_equal(json_string_value(json_object_get(t, "job_id")),
                            json_string_value(json_object_get(tr, "job_id")));
        assert_int_equal(json_integer_value(json_object_get(t, "rank")), (json_int_t)i + 1);
        assert_true(num(t, "/model/layers/1/rate") ==
                    num(json_object_get(tr, "params"), "/model/layers/1/rate"));
    }
    json_decref(res);

    /* results as CSV: header, 12 rows, one column per swept path and metric */
    r = req_as(&srv, "GET", path, NULL, NULL, "Accept: text/csv");
    expect_status(&r, 200);
    assert_non_null(strstr(r.content_type, "text/csv"));
    char *lines[32];
    int n_lines = 0;
    for (char *p = r.body; *p && n_lines < 32;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = 0;
        lines[n_lines++] = p;
        p = nl + 1;
    }
    assert_int_equal(n_lines, 13);
    char *head[64], *f[64];
    int nh = split_csv(lines[0], head, 64);
    int c_rank = column(head, nh, "rank"), c_job = column(head, nh, "job_id"),
        c_l2 = column(head, nh, "/model/layers/0/kernel_regularizer/l2"),
        c_rate = column(head, nh, "/model/layers/1/rate"), c_obj = column(head, nh, "objective"),
        c_vl = column(head, nh, "val_loss"), c_loss = column(head, nh, "loss"),
        c_acc = column(head, nh, "val_accuracy"), c_gap = column(head, nh, "gap"),
        c_status = column(head, nh, "status");
    for (int l = 1; l < n_lines; l++) {
        assert_int_equal(split_csv(lines[l], f, 64), nh);
        const json_t *tr = json_array_get(trials, (size_t)l - 1);
        assert_int_equal(atoi(f[c_rank]), l);
        assert_string_equal(f[c_job], json_string_value(json_object_get(tr, "job_id")));
        assert_string_equal(f[c_status], "succeeded");
        const json_t *params = json_object_get(tr, "params");
        assert_true(close_to(strtod(f[c_l2], NULL),
                             num(params, "/model/layers/0/kernel_regularizer/l2")));
        assert_true(close_to(strtod(f[c_rate], NULL), num(params, "/model/layers/1/rate")));
        assert_true(close_to(strtod(f[c_obj], NULL), num(tr, "objective")));
        assert_true(close_to(strtod(f[c_vl], NULL), num(tr, "val_loss")));
        assert_true(close_to(strtod(f[c_loss], NULL), num(tr, "loss")));
        assert_true(close_to(strtod(f[c_gap], NULL), num(tr, "gap")));
        double acc = strtod(f[c_acc], NULL);
        assert_true(acc >= 0 && acc <= 1);
    }
    it_resp_free(&r);

    /* finished: cancel is 409 */
    snprintf(path, sizeof path, "/v1/sweeps/%s/cancel", id);
    r = req_as(&srv, "POST", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);

    /* sweeps are rows: a restart serves the same ranking */
    srv.keep_dir = 1;
    assert_int_equal(it_stop(&srv), 0);
    srv.keep_dir = 0;
    const char *args[] = {"--workers", "2", "--max-queued", "100", "--auth-tokens", tokens_path,
                          NULL};
    assert_int_equal(it_start(&srv, args), 0);
    snprintf(path, sizeof path, "/v1/sweeps/%s", id);
    r = get(path);
    expect_status(&r, 200);
    json_t *again = body_json(&r);
    it_resp_free(&r);
    assert_true(json_equal(json_object_get(again, "trials"), trials));
    json_decref(again);
    json_decref(w);
}

/* ---------------------------------------------------------------- halving */

/* fitd killed between a halted trial's rung commit and its finish leaves it
 * running with its rung checkpoint; the database is put back in that state (the
 * finish's status and time undone) and fitd restarted: the trial must end
 * cancelled, at the same epoch with the same reason, not train on (the verdict
 * once lived only in the killed process; now the rung commit carries it). */
static void halted_trial_survives_a_crash(const char *sweep_id)
{
    char path[160], job[64] = "", error[400] = "";
    snprintf(path, sizeof path, "/v1/sweeps/%s", sweep_id);
    it_resp r = get(path);
    expect_status(&r, 200);
    json_t *w = body_json(&r);
    it_resp_free(&r);
    size_t i;
    json_t *t;
    int epochs_done = 0;
    json_array_foreach(json_object_get(w, "trials"), i, t) {
        json_t *j = it_job_get(&srv, json_string_value(json_object_get(t, "job_id")));
        if (!job[0] && strcmp(json_string_value(json_object_get(j, "status")), "cancelled") == 0) {
            snprintf(job, sizeof job, "%s", json_string_value(json_object_get(j, "id")));
            snprintf(error, sizeof error, "%s", json_string_value(json_object_get(j, "error")));
            epochs_done = (int)json_integer_value(json_object_get(t, "epochs_done"));
        }
        json_decref(j);
    }
    json_decref(w);
    assert_true(job[0] && epochs_done > 0);

    srv.keep_dir = 1;
    assert_int_equal(it_stop(&srv), 0);
    srv.keep_dir = 0;
    it_db_exec(srv.db, "UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = '%s'",
               job);
    const char *args[] = {"--workers", "2", "--max-queued", "100", "--auth-tokens", tokens_path,
                          NULL};
    assert_int_equal(it_start(&srv, args), 0);

    json_t *j = it_wait_job(&srv, job, "cancelled", 60, 25);
    assert_string_equal(json_string_value(json_object_get(j, "error")), error);
    json_t *m = it_job_metrics(&srv, job);
    assert_int_equal(json_array_size(m), (size_t)epochs_done);
    json_decref(m);
    json_decref(j);
    json_decref(wait_sweep(sweep_id, 60));
}

/* Trials ordered so that later ones learn slower: successive halving (min_epochs
 * 1, eta 2: rungs at epochs 1, 2 and 4 of 6) must stop some. With max_parallel 1
 * they run one after the other in trial order, so the rule can be replayed here
 * from each trial job's own metrics. */
static void test_halving_follows_the_rule(void **state)
{
    char id[64];
    char *body = sweep_body("grid",
                            "\"/compile/optimizer/learning_rate\": [0.01, 0.003, 0.001, 0.0003, "
                            "0.0001, 0.00003]",
                            "\"max_parallel\": 1, \"early_stop\": {\"method\": \"halving\", "
                            "\"min_epochs\": 1, \"eta\": 2}",
                            6, "{\"name\": \"adam\", \"learning_rate\": 0.001}");
    json_t *sub = submit(body, id, sizeof id);
    free(body);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(sub, "early_stop"), "min_epochs")),
                     1);
    json_decref(sub);
    json_t *w = wait_sweep(id, 240);
    json_t *trials = json_object_get(w, "trials");
    assert_int_equal(json_array_size(trials), 6);

    /* per trial index: val_loss by epoch, status, epochs done, timestamps */
    double vl[6][7];
    int done[6], stopped = 0;
    json_t *jobs[6];
    size_t i;
    json_t *t;
    json_array_foreach(trials, i, t) {
        int k = (int)json_integer_value(json_object_get(t, "trial"));
        jobs[k] = it_job_get(&srv, json_string_value(json_object_get(t, "job_id")));
        json_t *m = it_job_metrics(&srv, json_string_value(json_object_get(t, "job_id")));
        done[k] = (int)json_array_size(m);
        assert_int_equal(json_integer_value(json_object_get(t, "epochs_done")), done[k]);
        for (int e = 0; e < done[k]; e++) vl[k][e + 1] = num(json_array_get(m, (size_t)e), "val_loss");
        json_decref(m);
    }
    /* max_parallel 1: trial k started after trial k-1 finished (RFC 3339 text
     * with milliseconds in UTC compares as time) */
    for (int k = 1; k < 6; k++) {
        const char *prev_end = json_string_value(json_object_get(jobs[k - 1], "finished_at"));
        const char *start = json_string_value(json_object_get(jobs[k], "started_at"));
        assert_non_null(prev_end);
        assert_non_null(start);
        assert_true(strcmp(start, prev_end) >= 0);
    }
    /* replay the rule */
    for (int k = 0; k < 6; k++) {
        int expect_stop_at = 0;
        for (int r = 1; r < 6 && !expect_stop_at; r *= 2) {
            if (r > done[k]) break;
            int n = 0, better = 0;
            for (int j = 0; j <= k; j++) {
                if (done[j] < r) continue;
                n++;
                better += vl[j][r] < vl[k][r];
            }
            int keep = n >= 2 ? n / 2 : n;
            if (better + 1 > keep) expect_stop_at = r;
        }
        const char *status = json_string_value(json_object_get(jobs[k], "status"));
        if (expect_stop_at) {
            stopped++;
            assert_string_equal(status, "cancelled");
            assert_int_equal(done[k], expect_stop_at);
            const char *err = json_string_value(json_object_get(jobs[k], "error"));
            assert_non_null(err);
            assert_non_null(strstr(err, "successive halving"));
        } else {
            assert_string_equal(status, "succeeded");
            assert_int_equal(done[k], 6);
        }
        json_decref(jobs[k]);
    }
    assert_true(stopped >= 1);
    assert_string_equal(json_string_value(json_object_get(w, "status")), "succeeded");
    json_decref(w);
    halted_trial_survives_a_crash(id);
}

/* ---------------------------------------------------------------- cancel, list */

static void test_cancel_and_list(void **state)
{
    char id[64], path[160];
    char *body = sweep_body("random",
                            "\"/model/layers/1/rate\": {\"min\": 0, \"max\": 0.5}, "
                            "\"/model/layers/0/units\": {\"min\": 8, \"max\": 64, \"scale\": \"log\"}",
                            "\"n_trials\": 4, \"seed\": 11, \"max_parallel\": 1", 3000, NULL);
    json_t *sub = submit(body, id, sizeof id);
    free(body);
    json_t *trials = json_object_get(sub, "trials");
    assert_int_equal(json_array_size(trials), 4);
    size_t i;
    json_t *t;
    json_array_foreach(trials, i, t) {
        const json_t *params = json_object_get(t, "params");
        double rate = num(params, "/model/layers/1/rate");
        const json_t *units = json_object_get(params, "/model/layers/0/units");
        assert_true(rate >= 0 && rate <= 0.5);
        assert_true(json_is_integer(units));
        assert_true(json_integer_value(units) >= 8 && json_integer_value(units) <= 64);
    }
    json_decref(sub);
    /* wait until the first trial runs, then cancel everything */
    snprintf(path, sizeof path, "/v1/sweeps/%s", id);
    for (int tries = 0;; tries++) {
        it_resp r = get(path);
        json_t *o = body_json(&r);
        it_resp_free(&r);
        json_int_t running = json_integer_value(
            json_object_get(json_object_get(o, "counts"), "running"));
        json_decref(o);
        if (running == 1) break;
        assert_true(tries < 600);
        sleep_ms(100);
    }
    /* a sweep with trials queued or running cannot be deleted */
    it_resp r = req_as(&srv, "DELETE", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/sweeps/%s/cancel", id);
    r = req_as(&srv, "POST", path, NULL, NULL, NULL);
    expect_status(&r, 202);
    json_t *o = body_json(&r);
    assert_true(json_is_true(json_object_get(o, "cancel_requested")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "counts"), "queued")), 0);
    json_decref(o);
    it_resp_free(&r);
    json_t *w = wait_sweep(id, 60);
    assert_string_equal(json_string_value(json_object_get(w, "status")), "cancelled");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(w, "counts"), "cancelled")),
                     4);
    json_decref(w);
    r = req_as(&srv, "POST", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);

    /* the list pages like /v1/jobs, newest first */
    r = get("/v1/sweeps?limit=1");
    expect_status(&r, 200);
    o = body_json(&r);
    it_resp_free(&r);
    json_t *items = json_object_get(o, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")), id);
    assert_null(json_object_get(json_array_get(items, 0), "trials"));
    const char *next = json_string_value(json_object_get(o, "next_cursor"));
    assert_non_null(next);
    char url[200];
    snprintf(url, sizeof url, "/v1/sweeps?limit=100&cursor=%s", next);
    json_decref(o);
    r = get(url);
    expect_status(&r, 200);
    o = body_json(&r);
    it_resp_free(&r);
    json_array_foreach(json_object_get(o, "items"), i, t)
        assert_string_not_equal(json_string_value(json_object_get(t, "id")), id);
    assert_true(json_is_null(json_object_get(o, "next_cursor")));
    json_decref(o);

    /* finished: DELETE takes the sweep and its trial jobs */
    snprintf(path, sizeof path, "/v1/sweeps/%s", id);
    r = get(path);
    o = body_json(&r);
    it_resp_free(&r);
    char job[64];
    snprintf(job, sizeof job, "/v1/jobs/%s",
             json_string_value(json_object_get(json_array_get(json_object_get(o, "trials"), 0), "job_id")));
    json_decref(o);
    r = get(job);
    expect_status(&r, 200);
    it_resp_free(&r);
    /* A finished trial alone cannot go: the sweep's ranking would change untraced. */
    r = req_as(&srv, "DELETE", job, NULL, NULL, NULL);
    o = assert_problem(&r, 409);
    assert_non_null(strstr(json_string_value(json_object_get(o, "detail")), "is a trial of sweep"));
    json_decref(o);
    it_resp_free(&r);
    r = get(job);
    expect_status(&r, 200);
    it_resp_free(&r);
    r = req_as(&srv, "DELETE", path, NULL, NULL, NULL);
    expect_status(&r, 204);
    it_resp_free(&r);
    const char *gone[] = {path, job};
    for (int k = 0; k < 2; k++) {
        r = get(gone[k]);
        json_decref(assert_problem(&r, 404));
        it_resp_free(&r);
    }
    r = req_as(&srv, "DELETE", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

/* ---------------------------------------------------------------- errors */

static int64_t count_items(const it_server *s, const char *path)
{
    it_resp r = req_as(s, "GET", path, NULL, NULL, NULL);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    it_resp_free(&r);
    int64_t n = (int64_t)json_array_size(json_object_get(o, "items"));
    json_decref(o);
    return n;
}

static void expect_422(const char *body, const char *pointer, const char *needle)
{
    it_resp r = post_json("/v1/sweeps", body);
    json_t *p = assert_problem(&r, 422);
    if (!has_problem(p, pointer, needle)) fail_msg("for %s", body);
    json_decref(p);
    it_resp_free(&r);
}

static void test_errors(void **state)
{
    int64_t sweeps_before = count_items(&srv, "/v1/sweeps?limit=1000");
    int64_t jobs_before = count_items(&srv, "/v1/jobs?limit=1000");
    char *b;

    /* a pointer that does not resolve in the base */
    b = sweep_body("grid", "\"/model/layers/9/rate\": [0.1]", NULL, 1, NULL);
    expect_422(b, "/parameters/~1model~1layers~19~1rate", "is an array of 3 items");
    free(b);
    /* one bad value among good ones: the path and the value are named */
    b = sweep_body("grid", "\"/model/layers/1/rate\": [0, 0.2, 1.5]", NULL, 1, NULL);
    expect_422(b, "/parameters/~1model~1layers~11~1rate", "1.5");
    free(b);
    /* a value that breaks another field of the spec: the path is named with it */
    b = sweep_body("grid", "\"/model/layers/2/units\": [10, 5]", NULL, 1, NULL);
    expect_422(b, "/parameters/~1model~1layers~12~1units", "value 5");
    free(b);
    /* the base's own mistakes point into /base */
    b = sweep_body("grid", "\"/model/layers/1/rate\": [0.1]", "\"colour\": 5", 1, NULL);
    expect_422(b, "/colour", "unknown field");
    free(b);
    b = sweep_body("grid", "\"/fit/epochs\": [1, 2]", NULL, 1, "\"nadam-9\"");
    expect_422(b, "/base/compile/optimizer", NULL);
    free(b);
    b = sweep_body("grid", "\"/data/train\": [\"ds_doesnotexist\"]", NULL, 1, NULL);
    expect_422(b, "/parameters/~1data~1train", "does not exist");
    free(b);
    /* an objective the records will not hold */
    b = sweep_body("grid", "\"/fit/epochs\": [1]", "\"objective\": {\"metric\": \"val_auc\"}", 1,
                   NULL);
    expect_422(b, "/objective/metric", "not in the epoch records");
    free(b);
    /* regularization_loss has no val_ twin (this was accepted, and never ranked) */
    b = sweep_body("grid", "\"/fit/epochs\": [1]",
                   "\"objective\": {\"metric\": \"val_regularization_loss\"}", 1, NULL);
    expect_422(b, "/objective/metric", "not in the epoch records");
    free(b);
    b = sweep_body("random", "\"/fit/epochs\": [1]", NULL, 1, NULL);
    expect_422(b, "/n_trials", NULL);
    free(b);
    /* Long non-ASCII keys: their pointers and messages are cut to fit, and a cut
     * inside a character must not drop the problem (that let the sweep through,
     * or reached a 503 when its trials were built). */
    char key[1200] = "/model/";
    for (int i = 0; i < 115; i++) strcat(key, "\xc3\xa9");
    strcat(key, "/xy");
    char params[1300];
    snprintf(params, sizeof params, "\"%s\": [1]", key);
    b = sweep_body("grid", params, NULL, 1, NULL);
    expect_422(b, NULL, NULL);
    free(b);
    key[0] = 0;
    for (int i = 0; i < 300; i++) strcat(key, "\xc3\xa9");
    snprintf(params, sizeof params, "\"%s\": [1]", key);
    b = sweep_body("grid", params, NULL, 1, NULL);
    expect_422(b, NULL, NULL);
    free(b);
    /* nothing was stored by any of them */
    assert_int_equal(count_items(&srv, "/v1/sweeps?limit=1000"), sweeps_before);
    assert_int_equal(count_items(&srv, "/v1/jobs?limit=1000"), jobs_before);

    /* 429: more trials than --max-queued lets in */
    b = sweep_body("random", "\"/model/layers/1/rate\": {\"min\": 0, \"max\": 0.5}",
                   "\"n_trials\": 101", 1, NULL);
    it_resp r = post_json("/v1/sweeps", b);
    json_decref(assert_problem(&r, 429));
    it_resp_free(&r);
    free(b);

    /* 400 malformed JSON, 415 wrong media type, 401 no token */
    r = post_json("/v1/sweeps", "{\"method\": ");
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);
    r = req_as(&srv, "POST", "/v1/sweeps", "text/plain", "{}", NULL);
    json_decref(assert_problem(&r, 415));
    it_resp_free(&r);
    /* 413: over --max-body-json (1 MiB), refused from Content-Length */
    size_t big_len = (size_t)2 << 20;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    big[big_len] = 0;
    r = post_json("/v1/sweeps", big);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    free(big);
    /* 401 on every route without a token */
    it_server anon = it_as(&srv, "");
    static const char *const routes[][2] = {
        {"GET", "/v1/sweeps"},           {"POST", "/v1/sweeps"},
        {"GET", "/v1/sweeps/swp_x"},     {"POST", "/v1/sweeps/swp_x/cancel"},
        {"GET", "/v1/sweeps/swp_x/results"}, {"DELETE", "/v1/sweeps/swp_x"}};
    for (int k = 0; k < 6; k++) {
        int post = strcmp(routes[k][0], "POST") == 0 && k == 1;
        r = req_as(&anon, routes[k][0], routes[k][1], post ? "application/json" : NULL,
                   post ? "{}" : NULL, NULL);
        expect_status(&r, 401);
        it_resp_free(&r);
    }
    /* 400 bad cursor and limit */
    r = get("/v1/sweeps?cursor=not-a-cursor");
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);
    r = get("/v1/sweeps?limit=0");
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);

    /* 404: unknown ids, and another tenant's sweep looks exactly the same */
    static const char *const paths[] = {"/v1/sweeps/swp_nope", "/v1/sweeps/swp_nope/results"};
    for (int k = 0; k < 2; k++) {
        r = get(paths[k]);
        json_decref(assert_problem(&r, 404));
        it_resp_free(&r);
    }
    r = req_as(&srv, "POST", "/v1/sweeps/swp_nope/cancel", NULL, NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);

    char id[64], path[160];
    b = sweep_body("grid", "\"/model/layers/1/rate\": [0.1]", NULL, 1, NULL);
    json_decref(submit(b, id, sizeof id));
    free(b);
    it_server bob = it_as(&srv, TOK_B);
    const char *suffix[] = {"", "/results"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/v1/sweeps/%s%s", id, suffix[k]);
        r = req_as(&bob, "GET", path, NULL, NULL, NULL);
        json_decref(assert_problem(&r, 404));
        it_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/sweeps/%s/cancel", id);
    r = req_as(&bob, "POST", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/sweeps/%s", id);
    r = req_as(&bob, "DELETE", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(count_items(&bob, "/v1/sweeps"), 0);
    /* and bob cannot sweep over alice's dataset */
    b = sweep_body("grid", "\"/model/layers/1/rate\": [0.1]", NULL, 1, NULL);
    r = req_as(&bob, "POST", "/v1/sweeps", "application/json", b, NULL);
    json_t *p = assert_problem(&r, 422);
    assert_true(has_problem(p, "/base/data/train", "does not exist"));
    json_decref(p);
    it_resp_free(&r);
    free(b);
    json_decref(wait_sweep(id, 60));
}

/* ---------------------------------------------------------------- chart.svg */

/* The chart's label of a trial: "l2=0.001 rate=0.5" (the last token of each
 * swept pointer, values as %g). */
static void label_of(const json_t *params, char *out, size_t len)
{
    const char *key;
    json_t *v;
    size_t n = 0;
    out[0] = 0;
    json_object_foreach((json_t *)params, key, v)
        n += (size_t)snprintf(out + n, len - n, "%s%s=%g", n ? " " : "", strrchr(key, '/') + 1,
                              json_number_value(v));
}

static void expect_400(const char *path, const char *pointer)
{
    it_resp r = get(path);
    json_t *p = assert_problem(&r, 400);
    assert_true(has_problem(p, pointer, NULL));
    json_decref(p);
    it_resp_free(&r);
}

static void test_chart_svg(void **state)
{
    char grid[64], line[64], path[200], want[200];
    char *body = sweep_body("grid",
                            "\"/model/layers/0/kernel_regularizer/l2\": [0, 1e-3],"
                            "\"/model/layers/1/rate\": [0, 0.5]",
                            "\"max_parallel\": 2", 2, NULL);
    json_decref(submit(body, grid, sizeof grid));
    free(body);
    /* Unsorted on purpose: the chart orders the values. */
    body = sweep_body("grid", "\"/model/layers/0/kernel_regularizer/l2\": [0.03, 0.0001, 0.003]",
                      "\"max_parallel\": 2", 2, NULL);
    json_decref(submit(body, line, sizeof line));
    free(body);

    /* A job knows its sweep; a job submitted alone has none. */
    json_t *w = wait_sweep(grid, 120);
    json_t *trials = json_object_get(w, "trials");
    assert_int_equal(json_array_size(trials), 4);
    json_t *job = it_job_get(&srv, json_string_value(json_object_get(json_array_get(trials, 2), "job_id")));
    assert_string_equal(json_string_value(json_object_get(job, "sweep_id")), grid);
    json_decref(job);
    char job_body[512];
    snprintf(job_body, sizeof job_body,
             "{\"data\": {\"train\": \"%s\"}, \"model\": {\"input_shape\": [64], \"layers\": "
             "[{\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}, "
             "\"compile\": {\"optimizer\": \"adam\", \"loss\": "
             "\"sparse_categorical_crossentropy\"}, \"fit\": {\"epochs\": 1}}",
             digits_id);
    it_resp r = post_json("/v1/jobs", job_body);
    expect_status(&r, 202);
    job = body_json(&r);
    it_resp_free(&r);
    assert_true(json_is_null(json_object_get(job, "sweep_id")));
    json_decref(job);

    /* Trials view, two parameters: a category per trial labelled with its
     * settings, the ranked best named in the legend. */
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg", grid);
    char *svg = it_get_svg(&srv, path);
    size_t i;
    json_t *t;
    json_array_foreach(trials, i, t) {
        char label[128];
        label_of(json_object_get(t, "params"), label, sizeof label);
        snprintf(want, sizeof want, ">%s</text>", label);
        if (!strstr(svg, want)) fail_msg("no category %s in\n%.4000s", want, svg);
    }
    char best[128];
    label_of(json_object_get(json_object_get(w, "best"), "params"), best, sizeof best);
    snprintf(want, sizeof want, ">best: %s</text>", best);
    assert_non_null(strstr(svg, want));
    assert_non_null(strstr(svg, "val_loss at best epoch"));
    free(svg);

    /* ?view=trials is the default; another metric of the records is fine. */
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg?view=trials&metric=val_accuracy", grid);
    svg = it_get_svg(&srv, path);
    assert_non_null(strstr(svg, "val_accuracy at best epoch"));
    free(svg);

    /* Curves: one line per trial (each trial's 2 epochs), the best in the legend. */
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg?view=curves", grid);
    svg = it_get_svg(&srv, path);
    assert_int_equal(it_count_str(svg, "<polyline"), 4);
    snprintf(want, sizeof want, ">%s (best)</text>", best);
    assert_non_null(strstr(svg, want));
    int best_epoch = (int)json_integer_value(
        json_object_get(json_object_get(w, "best"), "best_epoch"));
    snprintf(want, sizeof want, "best epoch %d", best_epoch);
    assert_non_null(strstr(svg, want));
    free(svg);
    json_decref(w);

    /* One numeric parameter: the axis names it, its values in ascending order. */
    json_decref(wait_sweep(line, 120));
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg", line);
    svg = it_get_svg(&srv, path);
    assert_non_null(strstr(svg, "/model/layers/0/kernel_regularizer/l2"));
    const char *a = strstr(svg, ">0.0001</text>"), *b = strstr(svg, ">0.003</text>"),
               *c = strstr(svg, ">0.03</text>");
    assert_true(a && b && c && a < b && b < c);
    free(svg);

    /* 400 naming the query parameter; 404 for a missing or another tenant's sweep. */
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg?view=bars", grid);
    expect_400(path, "/view");
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg?metric=nope", grid);
    expect_400(path, "/metric");
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg?metric=", grid);
    expect_400(path, "/metric");
    r = get("/v1/sweeps/swp_00000000000000000000000000/chart.svg");
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    it_server bob = it_as(&srv, TOK_B);
    snprintf(path, sizeof path, "/v1/sweeps/%s/chart.svg", grid);
    r = req_as(&bob, "GET", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    it_server anonymous = it_as(&srv, "");
    r = req_as(&anonymous, "GET", path, NULL, NULL, NULL);
    json_decref(assert_problem(&r, 401));
    it_resp_free(&r);
}

/* The README's "sweeps" block, run as written against a fitd without tokens: the
 * results CSV lists the 12 trials, all succeeded, best first; the chart is saved. */
static void test_readme_block(void **state)
{
    (void)state;
    it_server plain = {0};
    assert_int_equal(it_start(&plain, NULL), 0);
    char *out = it_run_readme_block(&plain, "<!-- sweeps:");
    const char *csv = strstr(out, "rank,trial,job_id,status,");
    if (!csv) fail_msg("no results CSV in the README block's output:\n%s", out);
    int rows = 0;
    double prev = -1;
    for (const char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        int rank = 0;
        char status[16] = "";
        assert_int_equal(sscanf(line + 1, "%d,%*d,%*[^,],%15[^,]", &rank, status), 2);
        assert_int_equal(rank, rows + 1);
        assert_string_equal(status, "succeeded");
        /* objective (column 8) never decreases down the ranking (mode min) */
        const char *c = line + 1;
        for (int k = 0; k < 7 && c; k++) c = strchr(c, ',') ? strchr(c, ',') + 1 : NULL;
        assert_non_null(c);
        double obj = strtod(c, NULL);
        assert_true(obj >= prev);
        prev = obj;
        rows++;
    }
    assert_int_equal(rows, 12);
    char svg[700];
    snprintf(svg, sizeof svg, "%s/sweep.svg", plain.dir);
    size_t len = 0;
    char *text = read_file(svg, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "<svg"));
    free(text);
    free(out);
    assert_int_equal(it_stop(&plain), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chart_svg),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_grid_sweep_ranking_and_results),
        cmocka_unit_test(test_results_csv_defuses_formulas),
        cmocka_unit_test(test_halving_follows_the_rule),
        cmocka_unit_test(test_cancel_and_list),
        cmocka_unit_test(test_readme_block),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
