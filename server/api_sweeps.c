/*
 * api_sweeps.c — the /v1/sweeps routes: submit, list, read, cancel, results.
 *
 * A submission expands the sweep into its trials (server/sweep.h) and validates
 * every trial's spec with api_job_prepare, the same function POST /v1/jobs uses,
 * before anything is stored; the first bad trial rejects the sweep with 422, a
 * problem about a swept path naming "/parameters/<path>" and the value. Then the
 * sweep and all its jobs are inserted in one transaction (202 after COMMIT).
 * Reads derive the status, counts and ranking from the trial jobs.
 * GET /v1/sweeps/{id}/chart.svg draws the trials with server/svg.h; it lives here
 * because it shares the sweep lookup and the one ranking (rank_trials) with the
 * JSON routes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "record.h"
#include "spec.h"
#include "store.h"
#include "svg.h"
#include "sweep.h"

static const char *const json_types[] = {"application/json", NULL};

static pool *app_pool(http_req *req)
{
    const api_ctx *ctx = http_req_app(req);
    return ctx ? ctx->pool : NULL;
}

/* ---------------------------------------------------------------- the resource */

/* One trial as JSON: its job, settings, objective and final losses. */
static json_t *trial_json(const store_trial *t)
{
    json_t *params = t->params_json ? json_loads(t->params_json, 0, NULL) : NULL;
    json_t *last = t->last_metrics_json ? json_loads(t->last_metrics_json, 0, NULL) : NULL;
    double loss = record_num(last, "loss"), val_loss = record_num(last, "val_loss");
    json_decref(last);
    return json_pack("{s:i, s:s, s:o, s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "trial",
                     t->index, "job_id", t->job_id, "params", params ? params : json_object(),
                     "status", store_job_status_name(t->status), "epochs", t->epochs,
                     "epochs_done", t->epochs_done, "best_epoch",
                     t->best_epoch > 0 ? json_integer(t->best_epoch) : json_null(), "objective",
                     t->has_objective ? record_json_number(t->objective) : json_null(), "loss",
                     record_json_number(loss), "val_loss", record_json_number(val_loss), "gap",
                     record_json_number(val_loss - loss), "error",
                     t->error ? json_string(t->error) : json_null());
}

/* Trial order best first (sweep_rank); *order malloc'ed. Returns -1 on OOM. */
static int rank_trials(const store_sweep *w, const store_trial *trials, size_t n, size_t **order)
{
    double *obj = calloc(n ? n : 1, sizeof *obj);
    int *has = calloc(n ? n : 1, sizeof *has);
    *order = calloc(n ? n : 1, sizeof **order);
    if (!obj || !has || !*order) {
        free(obj);
        free(has);
        free(*order);
        *order = NULL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        obj[i] = trials[i].objective;
        has[i] = trials[i].has_objective;
    }
    sweep_rank(obj, has, n, w->mode_max, *order);
    free(obj);
    free(has);
    return 0;
}

/* The sweep summary (the list's items); with `trials` also the ranked trials and
 * the best one. New reference or NULL (OOM). */
static json_t *sweep_json(const store_sweep *w, const store_trial *trials, size_t n, int full)
{
    json_t *req = w->request_json ? json_loads(w->request_json, 0, NULL) : NULL;
    json_t *o = NULL, *list = NULL;
    size_t *order = NULL;
    json_t *counts = json_object();
    for (int k = 0; counts && k < STORE_JOB_STATUS_COUNT; k++)
        json_object_set_new(counts, store_job_status_name((store_job_status)k),
                            json_integer(w->counts[k]));
    json_t *early = w->halving_min_epochs > 0
                        ? json_pack("{s:s, s:i, s:i}", "method", "halving", "min_epochs",
                                    w->halving_min_epochs, "eta", w->halving_eta)
                        : json_null();
    const json_t *method = json_object_get(req, "method"),
                 *params = json_object_get(req, "parameters");
    o = json_pack("{s:s, s:o, s:s, s:O, s:{s:s, s:s}, s:o, s:i, s:o, s:O, s:o, s:b, s:s}", "id",
                  w->id, "name", w->name ? json_string(w->name) : json_null(), "status",
                  sweep_status(w->counts, w->cancel_requested), "method",
                  method ? method : json_null(), "objective", "metric", w->metric, "mode",
                  w->mode_max ? "max" : "min", "max_parallel",
                  w->max_parallel > 0 ? json_integer(w->max_parallel) : json_null(), "n_trials",
                  w->n_trials, "early_stop", early, "parameters", params ? params : json_null(),
                  "counts", counts, "cancel_requested", w->cancel_requested, "created_at",
                  w->created_at);
    json_decref(req);
    if (!o || !full) return o;
    list = json_array();
    if (!list || rank_trials(w, trials, n, &order)) goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *t = trial_json(&trials[order[i]]);
        if (!t || json_array_append_new(list, t)) goto fail;
    }
    const json_t *best = n && trials[order[0]].has_objective ? json_array_get(list, 0) : NULL;
    if (json_object_set(o, "best", best ? (json_t *)best : json_null()) ||
        json_object_set_new(o, "trials", list))
        goto fail;
    free(order);
    return o;
fail:
    free(order);
    json_decref(list);
    json_decref(o);
    return NULL;
}

/* Load the sweep named by {id}; replies and returns -1 when it cannot (another
 * tenant's sweep answers exactly as a missing one). */
static int load_sweep(http_req *req, store *st, store_sweep *w)
{
    const char *id = http_req_param(req, "id");
    store_rc rc = store_sweep_get(st, id ? id : "", w);
    if (rc == STORE_OK && strcmp(w->tenant, http_req_tenant(req)) != 0) {
        store_sweep_free(w);
        rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_NOT_FOUND || rc == STORE_INVALID) {
        http_reply_problem(req, 404, "sweep %s not found", id ? id : "");
        return -1;
    }
    if (rc != STORE_OK) {
        api_reply_store_error(req, st, rc, "sweep");
        return -1;
    }
    return 0;
}

/* Reply with the full sweep (reloaded, with its trials). */
static void reply_sweep(http_req *req, store *st, unsigned status, const store_sweep *w)
{
    store_trial *trials = NULL;
    size_t n = 0;
    store_rc rc = store_sweep_trials(st, w, &trials, &n);
    if (rc != STORE_OK) {
        api_reply_store_error(req, st, rc, "sweep trials");
        return;
    }
    json_t *o = sweep_json(w, trials, n, 1);
    store_trial_list_free(trials, n);
    http_reply_json(req, status, o); /* NULL: 503 out of memory */
}

/* ---------------------------------------------------------------- POST /v1/sweeps */

/* The swept parameter a problem pointer (into a trial spec) falls under, or -1. */
static int param_of(const sweep_def *d, const char *pointer)
{
    for (int p = 0; p < d->n_params; p++) {
        size_t n = strlen(d->params[p].pointer);
        if (strncmp(pointer, d->params[p].pointer, n) == 0 && (pointer[n] == 0 || pointer[n] == '/'))
            return p;
    }
    return -1;
}

/* Rewrite trial i's problems (pointers into its spec) into pointers into the
 * sweep request: a swept path's problem names the path and the trial's value. */
static void trial_problems(const sweep_def *d, int i, const json_t *params, const json_t *terr,
                           json_t *errors)
{
    size_t k;
    json_t *p;
    char *settings = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_array_foreach(terr, k, p) {
        const char *ptr = json_string_value(json_object_get(p, "pointer"));
        const char *msg = json_string_value(json_object_get(p, "message"));
        if (!ptr) ptr = "";
        int at = param_of(d, ptr);
        if (at >= 0) {
            char where[600];
            json_t *v = json_object_get(params, d->params[at].pointer);
            char *value = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            sweep_param_pointer(d->params[at].pointer, where, sizeof where);
            http_problem_add(errors, where, "trial %d: value %s: %s%s%s", i, value ? value : "?",
                             strcmp(ptr, d->params[at].pointer) ? ptr : "",
                             strcmp(ptr, d->params[at].pointer) ? ": " : "", msg ? msg : "");
            free(value);
        } else {
            char where[400];
            snprintf(where, sizeof where, "/base%s", ptr);
            http_problem_add(errors, where, "trial %d %s: %s", i, settings ? settings : "",
                             msg ? msg : "");
        }
    }
    free(settings);
}

typedef struct submit_state {
    sweep_def def;
    api_job_draft *drafts;
    store_job_new *rows;
    char **params;
    int n; /* drafts and params filled */
} submit_state;

static void trials_free(submit_state *s)
{
    for (int i = 0; i < s->n; i++) {
        api_job_draft_free(&s->drafts[i]);
        free(s->params[i]);
    }
    free(s->drafts);
    free(s->rows);
    free(s->params);
    s->drafts = NULL;
    s->rows = NULL;
    s->params = NULL;
    s->n = 0;
}

static void submit_state_free(submit_state *s)
{
    trials_free(s);
    sweep_def_free(&s->def);
}

/* Expand and validate every trial. Returns 0, 1 after adding problems to errors
 * (the sweep is rejected), -1 after replying. */
static int prepare_trials(http_req *req, store *st, submit_state *s, json_t *errors)
{
    const sweep_def *d = &s->def;
    int ret = -1;
    json_t *params = NULL, *spec = NULL, *terr = NULL;
    char why[300];
    s->drafts = calloc((size_t)d->n_trials, sizeof *s->drafts);
    s->rows = calloc((size_t)d->n_trials, sizeof *s->rows);
    s->params = calloc((size_t)d->n_trials, sizeof *s->params);
    if (!s->drafts || !s->rows || !s->params) goto nomem;
    for (int i = 0; i < d->n_trials; i++) {
        params = sweep_trial_params(d, i);
        spec = params ? sweep_trial_spec(d, params) : NULL;
        terr = json_array();
        if (!spec || !terr) goto nomem;
        int vrc = api_job_prepare(req, st, spec, terr, &s->drafts[i]);
        if (vrc < 0) goto out; /* replied */
        if (vrc == 0 && !sweep_objective_valid(d->metric, &s->drafts[i].job, why, sizeof why)) {
            http_problem_add(errors, "/objective/metric", "%s", why);
            api_job_draft_free(&s->drafts[i]);
            ret = 1;
            goto out;
        }
        if (vrc > 0) {
            trial_problems(d, i, params, terr, errors);
            ret = 1;
            goto out;
        }
        s->params[i] = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);
        s->n = i + 1;
        if (!s->params[i]) goto nomem;
        s->rows[i] = api_job_draft_row(req, &s->drafts[i]);
        json_decref(params);
        json_decref(spec);
        json_decref(terr);
        params = spec = terr = NULL;
    }
    ret = 0;
    goto out;
nomem:
    http_reply_nomem(req);
out:
    json_decref(params);
    json_decref(spec);
    json_decref(terr);
    return ret;
}

static void handle_submit(http_req *req)
{
    submit_state s = {0};
    json_t *root = NULL, *errors = NULL;
    char *request = NULL;
    store_sweep w = {0};
    store *st = http_store(req);
    if (!st) return;
    root = http_req_json(req);
    if (!root) goto out; /* replied 400 */
    errors = json_array();
    if (!errors) {
        http_reply_nomem(req);
        goto out;
    }
    int prc = sweep_parse(root, &s.def, errors);
    if (prc == SWEEP_NOMEM) {
        http_reply_nomem(req);
        goto out;
    }
    if (prc == SWEEP_INVALID) {
        http_reply_problem_errors(req, 422, "the sweep is invalid", errors);
        errors = NULL;
        goto out;
    }
    int trc = prepare_trials(req, st, &s, errors);
    if (trc < 0) goto out;
    if (trc > 0) {
        http_reply_problem_errors(req, 422, "a trial of the sweep is invalid", errors);
        errors = NULL;
        goto out;
    }
    request = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!request) {
        http_reply_nomem(req);
        goto out;
    }
    const api_ctx *ctx = http_req_app(req);
    store_sweep_new in = {
        .tenant = http_req_tenant(req),
        .name = s.def.name[0] ? s.def.name : NULL,
        .request_json = request,
        .metric = s.def.metric,
        .mode_max = s.def.mode_max,
        .max_parallel = s.def.max_parallel,
        .halving_min_epochs = s.def.halving ? s.def.min_epochs : 0,
        .halving_eta = s.def.halving ? s.def.eta : 0,
        .n_trials = (size_t)s.def.n_trials,
        .trials = s.rows,
        .trial_params = (const char *const *)s.params,
        .max_queued = ctx && ctx->cfg ? ctx->cfg->max_queued : 0,
    };
    store_rc rc = store_sweep_insert(st, &in, &w);
    if (rc == STORE_NOT_FOUND) { /* a dataset or the init source went since we checked: */
        char msg[256];              /* the same checks again name it at its pointer */
        snprintf(msg, sizeof msg, "%s", store_errmsg(st));
        trials_free(&s);
        trc = prepare_trials(req, st, &s, errors);
        if (trc < 0) goto out;
        if (trc == 0) http_problem_add(errors, "/base", "%s", msg);
        http_reply_problem_errors(req, 422, "a trial of the sweep is invalid", errors);
        errors = NULL;
        goto out;
    }
    if (rc != STORE_OK) {
        api_reply_store_error(req, st, rc, "sweep");
        goto out;
    }
    /* One wake-up per trial that may start now (pool_notify caps at the workers). */
    int startable = s.def.max_parallel > 0 ? s.def.max_parallel : s.def.n_trials;
    for (int i = 0; i < startable && i < 64; i++) pool_notify(app_pool(req));
    LOG(LOG_INFO, "sweep queued", "\"request_id\":\"%s\",\"sweep_id\":\"%s\",\"trials\":%d",
        http_req_id(req), w.id, s.def.n_trials);
    char location[64];
    snprintf(location, sizeof location, "/v1/sweeps/%s", w.id);
    http_reply_header(req, "Location", location);
    reply_sweep(req, st, 202, &w);
out:
    store_sweep_free(&w);
    free(request);
    submit_state_free(&s);
    json_decref(errors);
    json_decref(root);
}

/* ---------------------------------------------------------------- GET */

static void handle_list(http_req *req)
{
    store_sweep *items = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX] = "";
    store_list_query q;
    store *st = http_store(req);
    if (!st || api_list_query(req, &q)) return;
    store_rc rc = store_sweep_list(st, &q, &items, &n, next);
    if (rc != STORE_OK) {
        api_reply_list_error(req, st, rc, "sweeps");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *o = sweep_json(&items[i], NULL, 0, 0);
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            list = NULL;
        }
    }
    store_sweep_list_free(items, n);
    api_reply_list(req, list, next);
}

static void handle_get(http_req *req)
{
    store_sweep w = {0};
    store *st = http_store(req);
    if (!st) return;
    if (load_sweep(req, st, &w) == 0) reply_sweep(req, st, 200, &w);
    store_sweep_free(&w);
}

static void handle_cancel(http_req *req)
{
    store_sweep w = {0};
    store_idbuf *running = NULL;
    size_t n = 0;
    store *st = http_store(req);
    if (!st) return;
    if (load_sweep(req, st, &w)) return;
    store_rc rc = store_sweep_cancel(st, w.id, &running, &n);
    if (rc == STORE_CONFLICT) {
        http_reply_problem(req, 409, "sweep %s has already finished", w.id);
        goto out;
    }
    if (rc != STORE_OK) {
        api_reply_store_error(req, st, rc, "sweep");
        goto out;
    }
    for (size_t i = 0; i < n; i++) pool_cancel(app_pool(req), running[i].id);
    LOG(LOG_INFO, "sweep cancel requested",
        "\"request_id\":\"%s\",\"sweep_id\":\"%s\",\"running\":%zu", http_req_id(req), w.id, n);
    store_sweep_free(&w);
    if (load_sweep(req, st, &w) == 0) reply_sweep(req, st, 202, &w);
out:
    free(running);
    store_sweep_free(&w);
}

/* DELETE /v1/sweeps/{id}: a finished sweep with its trial jobs. */
static void handle_delete(http_req *req)
{
    store_sweep w = {0};
    store *st = http_store(req);
    if (!st) return;
    if (load_sweep(req, st, &w)) return; /* 404 unless it exists and is ours */
    store_rc rc = store_sweep_delete(st, w.id);
    if (rc != STORE_OK) api_reply_store_error(req, st, rc, "sweep"); /* 409: the store's reason */
    else http_reply_empty(req, 204);
    store_sweep_free(&w);
}

/* ---------------------------------------------------------------- results */

/* Write one CSV field (RFC 4180 quoting when needed); `sep` before it unless first. */
static void csv_field(FILE *f, int first, const json_t *v)
{
    char num[64];
    char *text = NULL;
    const char *s = "";
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.9g", json_real_value(v));
        s = num;
    } else if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (v && !json_is_null(v)) {
        s = text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) s = "";
    }
    if (!first) fputc(',', f);
    /* Text a spreadsheet would run as a formula gets a leading ' (OWASP's advice
     * for CSV injection); numbers are written above and never start with one. */
    int formula = s != num && s[0] && strchr("=+-@\t\r", s[0]);
    if (formula || strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        if (formula) fputc('\'', f);
        for (const char *c = s; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    free(text);
}

/* The results table: columns (rank, trial, job_id, status, each swept path,
 * best_epoch, objective, each metric of the final epoch records, gap) and one
 * object per trial, best first. New reference or NULL. */
static json_t *results_table(const store_sweep *w, const store_trial *trials, size_t n,
                             json_t **columns_out)
{
    json_t *cols = json_array(), *rows = json_array(), *req = NULL;
    size_t *order = NULL;
    if (!cols || !rows || rank_trials(w, trials, n, &order)) goto fail;
    static const char *const head[] = {"rank", "trial", "job_id", "status"};
    for (int k = 0; k < 4; k++) json_array_append_new(cols, json_string(head[k]));
    req = w->request_json ? json_loads(w->request_json, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(req, "parameters"), key, v)
        json_array_append_new(cols, json_string(key));
    json_array_append_new(cols, json_string("best_epoch"));
    json_array_append_new(cols, json_string("objective"));
    size_t first_metric = json_array_size(cols);
    for (size_t i = 0; i < n; i++) {
        json_t *last = trials[i].last_metrics_json
                           ? json_loads(trials[i].last_metrics_json, 0, NULL)
                           : NULL;
        json_object_foreach(last, key, v) {
            if (strcmp(key, "epoch") == 0) continue;
            int seen = 0;
            for (size_t c = first_metric; c < json_array_size(cols); c++)
                seen |= strcmp(json_string_value(json_array_get(cols, c)), key) == 0;
            if (!seen) json_array_append_new(cols, json_string(key));
        }
        json_decref(last);
    }
    json_array_append_new(cols, json_string("gap"));
    for (size_t r = 0; r < n; r++) {
        const store_trial *t = &trials[order[r]];
        json_t *tj = trial_json(t);
        json_t *last = t->last_metrics_json ? json_loads(t->last_metrics_json, 0, NULL) : NULL;
        json_t *row = json_object();
        if (!tj || !row) {
            json_decref(tj);
            json_decref(last);
            json_decref(row);
            goto fail;
        }
        json_object_set_new(row, "rank", json_integer((json_int_t)r + 1));
        json_object_set(row, "trial", json_object_get(tj, "trial"));
        json_object_set(row, "job_id", json_object_get(tj, "job_id"));
        json_object_set(row, "status", json_object_get(tj, "status"));
        json_object_foreach(json_object_get(tj, "params"), key, v) json_object_set(row, key, v);
        json_object_set(row, "best_epoch", json_object_get(tj, "best_epoch"));
        json_object_set(row, "objective", json_object_get(tj, "objective"));
        for (size_t c = first_metric; c + 1 < json_array_size(cols); c++) {
            const char *m = json_string_value(json_array_get(cols, c));
            json_t *mv = json_object_get(last, m);
            json_object_set(row, m, mv ? mv : json_null());
        }
        json_object_set(row, "gap", json_object_get(tj, "gap"));
        json_decref(tj);
        json_decref(last);
        if (json_array_append_new(rows, row)) goto fail;
    }
    free(order);
    json_decref(req);
    *columns_out = cols;
    return rows;
fail:
    free(order);
    json_decref(req);
    json_decref(cols);
    json_decref(rows);
    return NULL;
}

/* The table as CSV: a header of the column names, then one line per row.
 * malloc'ed text (free), NULL on out of memory. */
static char *results_csv(const json_t *cols, const json_t *rows, size_t *len)
{
    char *text = NULL;
    size_t c, r;
    json_t *col, *row;
    FILE *f = open_memstream(&text, len);
    if (!f) return NULL;
    json_array_foreach(cols, c, col) csv_field(f, c == 0, col);
    fputc('\n', f);
    json_array_foreach(rows, r, row) {
        json_array_foreach(cols, c, col) csv_field(f, c == 0,
                                                   json_object_get(row, json_string_value(col)));
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        return NULL;
    }
    return text;
}

static void handle_results(http_req *req)
{
    store_sweep w = {0};
    store_trial *trials = NULL;
    json_t *cols = NULL, *rows = NULL;
    size_t n = 0;
    store *st = http_store(req);
    if (!st) return;
    if (load_sweep(req, st, &w)) return;
    store_rc rc = store_sweep_trials(st, &w, &trials, &n);
    if (rc != STORE_OK) {
        api_reply_store_error(req, st, rc, "sweep trials");
        goto out;
    }
    rows = results_table(&w, trials, n, &cols);
    if (!rows) {
        http_reply_nomem(req);
        goto out;
    }
    if (api_accepts_csv(req)) {
        size_t len = 0;
        char *text = results_csv(cols, rows, &len);
        if (!text) {
            http_reply_nomem(req);
            goto out;
        }
        http_reply_bytes(req, 200, "text/csv; charset=utf-8", text, len);
    } else {
        json_t *o = json_pack("{s:s, s:{s:s, s:s}, s:s, s:O, s:O}", "sweep_id", w.id, "objective",
                              "metric", w.metric, "mode", w.mode_max ? "max" : "min", "status",
                              sweep_status(w.counts, w.cancel_requested), "columns", cols, "rows",
                              rows);
        http_reply_json(req, 200, o); /* NULL: 503 out of memory */
    }
out:
    json_decref(cols);
    json_decref(rows);
    store_trial_list_free(trials, n);
    store_sweep_free(&w);
}

/* ---------------------------------------------------------------- chart.svg */

/* The metric at the trial's best epoch (that of its objective), or NAN. */
static double value_at_best(const store_trial *t, const record_curve *c)
{
    for (int i = 0; t->best_epoch > 0 && i < c->n; i++)
        if ((int)c->x[i] == t->best_epoch) return c->y[0][i];
    return NAN;
}

/* A swept value as label text: numbers with %g, strings bare, else JSON. */
static void value_text(const json_t *v, char *out, size_t len)
{
    if (json_is_number(v)) {
        snprintf(out, len, "%g", json_number_value(v));
    } else if (json_is_string(v)) {
        snprintf(out, len, "%s", json_string_value(v));
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, len, "%s", s ? s : "?");
        free(s);
    }
}

/* "l2=0.001 rate=0.2": each swept pointer's last token and the trial's value
 * (only the value when `bare`). */
static void trial_label(const json_t *params, int bare, char *out, size_t len)
{
    const char *key;
    json_t *v;
    size_t n = 0;
    out[0] = 0;
    json_object_foreach((json_t *)params, key, v) {
        char val[64];
        const char *slash = strrchr(key, '/');
        value_text(v, val, sizeof val);
        if (n >= len) break;
        if (bare) n += (size_t)snprintf(out + n, len - n, "%s", val);
        else n += (size_t)snprintf(out + n, len - n, "%s%s=%s", n ? " " : "",
                                   slash ? slash + 1 : key, val);
    }
    if (!out[0]) snprintf(out, len, "trial");
}

typedef struct chart_state {
    store_trial *trials;
    size_t n;
    size_t *order;        /* ranking, best first (rank_trials) */
    record_curve *curves; /* each trial's values of the charted metric */
    json_t **params;      /* each trial's {pointer: value} (NULL when unreadable) */
    char (*labels)[128];
    size_t *shown;        /* display order: indices into trials */
    json_t *keys;
} chart_state;

static void chart_state_free(chart_state *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->curves) record_curve_free(&s->curves[i]);
        if (s->params) json_decref(s->params[i]);
    }
    free(s->curves);
    free(s->params);
    free(s->labels);
    free(s->shown);
    free(s->order);
    json_decref(s->keys);
    store_trial_list_free(s->trials, s->n);
}

/* One swept parameter whose values are all numbers: the category axis is that
 * parameter, its values in ascending order. */
static int single_numeric(const store_sweep *w, const chart_state *s, char *name, size_t len)
{
    json_t *req = w->request_json ? json_loads(w->request_json, 0, NULL) : NULL;
    json_t *params = json_object_get(req, "parameters");
    int ok = json_object_size(params) == 1;
    if (ok) snprintf(name, len, "%s", json_object_iter_key(json_object_iter(params)));
    for (size_t i = 0; ok && i < s->n; i++)
        ok = s->params[i] && json_object_size(s->params[i]) == 1 &&
             json_is_number(json_object_iter_value(json_object_iter(s->params[i])));
    json_decref(req);
    return ok;
}

static double first_param(const json_t *params)
{
    return json_number_value(json_object_iter_value(json_object_iter((json_t *)params)));
}

/* Fill the display order: by the single numeric parameter, else trial order. */
static void display_order(chart_state *s, int numeric)
{
    for (size_t i = 0; i < s->n; i++) s->shown[i] = i;
    for (size_t i = 1; numeric && i < s->n; i++) /* insertion sort: stable, n is small */
        for (size_t k = i; k > 0 && first_param(s->params[s->shown[k - 1]]) >
                                        first_param(s->params[s->shown[k]]); k--) {
            size_t t = s->shown[k];
            s->shown[k] = s->shown[k - 1];
            s->shown[k - 1] = t;
        }
}

/* 400 naming ?metric=, listing what the trials record. */
static void reply_bad_chart_metric(http_req *req, const store_sweep *w, const json_t *keys,
                                   const char *metric)
{
    char list[512];
    size_t n = (size_t)snprintf(list, sizeof list, "%s", w->metric);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)keys, key, v) if (n < sizeof list && strcmp(key, w->metric))
        n += (size_t)snprintf(list + n, sizeof list - n, ", %s", key);
    json_t *errors = json_array();
    if (errors)
        http_problem_add(errors, "/metric", "unknown metric \"%.100s\"; this sweep records: %s",
                         metric, list);
    http_reply_problem_errors(req, 400, "invalid query parameter metric", errors);
}

/* The trials as a category chart: the metric at each trial's best epoch. */
static char *chart_trials(const store_sweep *w, chart_state *s, const char *metric,
                          const char *title, size_t *len)
{
    char axis[256] = "", y_label[128], hl_label[200];
    int numeric = s->n > 0 && single_numeric(w, s, axis, sizeof axis);
    display_order(s, numeric);
    double *values = calloc(s->n ? s->n : 1, sizeof *values);
    const char **labels = calloc(s->n ? s->n : 1, sizeof *labels);
    char *svg = NULL;
    if (!values || !labels) goto out;
    int best = s->n && s->trials[s->order[0]].has_objective ? (int)s->order[0] : -1;
    int highlight = -1;
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->shown[k];
        values[k] = value_at_best(&s->trials[i], &s->curves[i]);
        labels[k] = s->labels[i];
        if ((int)i == best) highlight = (int)k;
    }
    snprintf(y_label, sizeof y_label, "%s at best epoch", metric);
    snprintf(hl_label, sizeof hl_label, "best: %s", best >= 0 ? s->labels[best] : "");
    /* The axis names the parameter: its categories need only the values. */
    for (size_t i = 0; numeric && i < s->n; i++)
        trial_label(s->params[i], 1, s->labels[i], sizeof s->labels[i]);
    svg_chart chart = {.title = title,
                       .x_label = numeric ? axis : "trial",
                       .y_label = y_label,
                       .note = "no trial has finished an epoch yet"};
    svg_categories cat = {.labels = labels,
                          .values = values,
                          .n = (int)s->n,
                          .style = numeric ? SVG_CAT_POINTS : SVG_CAT_BARS,
                          .highlight = highlight,
                          .series_name = metric,
                          .highlight_label = hl_label};
    svg = svg_category_chart(&chart, &cat, len);
out:
    free(values);
    free(labels);
    return svg;
}

/* Every trial's curve of the metric per epoch; the best solid in the accent
 * colour, the others dashed in the other colours. */
static char *chart_curves(chart_state *s, const char *metric, const char *title, size_t *len)
{
    char mark[200], best_name[160];
    svg_series *series = calloc(s->n ? s->n : 1, sizeof *series);
    if (!series) return NULL;
    int best = s->n && s->trials[s->order[0]].has_objective ? (int)s->order[0] : -1;
    int other = 0;
    for (size_t i = 0; i < s->n; i++) {
        const record_curve *c = &s->curves[s->order[i]];
        svg_series *se = &series[i];
        se->name = s->labels[s->order[i]];
        se->x = c->x;
        se->y = c->y[0];
        se->n = c->n;
        if ((int)s->order[i] == best) {
            snprintf(best_name, sizeof best_name, "%s (best)", s->labels[best]);
            se->name = best_name;
            se->color = 1; /* svg.c's accent */
            se->dash = 0;
        } else {
            /* Not 4 either: that orange is too close to the accent. 5 colours x
             * 3 dashes give 15 distinct lines. */
            static const int others[] = {0, 2, 3, 5, 6};
            se->color = others[other % 5];
            se->dash = 1 + other % 3;
            other++;
        }
    }
    int best_epoch = best >= 0 ? s->trials[best].best_epoch : 0;
    snprintf(mark, sizeof mark, "best epoch %d", best_epoch);
    svg_chart chart = {.title = title,
                       .x_label = "epoch",
                       .y_label = metric,
                       .x_integer = 1,
                       .note = "no trial has finished an epoch yet",
                       .has_mark = best_epoch > 0,
                       .mark_x = best_epoch,
                       .mark_label = mark};
    char *svg = svg_line_chart(&chart, series, (int)s->n, len);
    free(series);
    return svg;
}

/* Load the trials, their ranking, labels and per-epoch values of `metric`.
 * Returns 0, or -1 after replying. */
static int chart_load(http_req *req, store *st, const store_sweep *w, const char *metric,
                      chart_state *s)
{
    store_rc rc = store_sweep_trials(st, w, &s->trials, &s->n);
    if (rc != STORE_OK) {
        s->trials = NULL;
        s->n = 0;
        api_reply_store_error(req, st, rc, "sweep trials");
        return -1;
    }
    size_t m = s->n ? s->n : 1;
    s->curves = calloc(m, sizeof *s->curves);
    s->params = calloc(m, sizeof *s->params);
    s->labels = calloc(m, sizeof *s->labels);
    s->shown = calloc(m, sizeof *s->shown);
    s->keys = json_object();
    if (!s->curves || !s->params || !s->labels || !s->shown || !s->keys ||
        rank_trials(w, s->trials, s->n, &s->order))
        goto nomem;
    for (size_t i = 0; i < s->n; i++) {
        const store_trial *t = &s->trials[i];
        s->params[i] = t->params_json ? json_loads(t->params_json, 0, NULL) : NULL;
        trial_label(s->params[i], 0, s->labels[i], sizeof s->labels[i]);
        s->curves[i].keys[0] = metric;
        s->curves[i].n_keys = 1;
        /* The keys recorded only tell whether another metric exists (or list them). */
        s->curves[i].seen = strcmp(metric, w->metric) ? s->keys : NULL;
        rc = store_job_metrics(st, t->job_id, 0, record_curve_row, &s->curves[i]);
        if (s->curves[i].failed) goto nomem;
        if (rc != STORE_OK && rc != STORE_NOT_FOUND) { /* a deleted trial has no records */
            api_reply_store_error(req, st, rc, "sweep trial metrics");
            return -1;
        }
    }
    return 0;
nomem:
    http_reply_nomem(req);
    return -1;
}

static void handle_chart(http_req *req)
{
    store_sweep w = {0};
    chart_state s = {0};
    char title[300];
    const char *view = http_req_query(req, "view");
    const char *metric = http_req_query(req, "metric");
    int curves = view && strcmp(view, "curves") == 0;
    if (view && !curves && strcmp(view, "trials") != 0) {
        json_t *errors = json_array();
        if (errors) http_problem_add(errors, "/view", "must be \"trials\" or \"curves\"");
        http_reply_problem_errors(req, 400, "invalid query parameter view", errors);
        return;
    }
    store *st = http_store(req);
    if (!st) return;
    if (load_sweep(req, st, &w)) return;
    if (!metric) metric = w.metric; /* an empty one is a 400, as ?view= */
    if (strlen(metric) > 100) metric = ""; /* never recorded: answered 400 below */
    if (chart_load(req, st, &w, metric, &s)) goto out;
    /* The objective is always valid (even before the first epoch); anything else
     * must have been recorded by some trial. */
    if (strcmp(metric, w.metric) != 0 && !json_object_get(s.keys, metric)) {
        reply_bad_chart_metric(req, &w, s.keys, http_req_query(req, "metric"));
        goto out;
    }
    snprintf(title, sizeof title, "sweep %s: %s %s", w.name && w.name[0] ? w.name : w.id, metric,
             curves ? "per epoch" : "per trial");
    size_t len = 0;
    char *svg = curves ? chart_curves(&s, metric, title, &len)
                       : chart_trials(&w, &s, metric, title, &len);
    if (!svg) {
        http_reply_nomem(req);
        goto out;
    }
    /* A running sweep's chart changes with every epoch. */
    http_reply_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, "image/svg+xml", svg, len);
out:
    chart_state_free(&s);
    store_sweep_free(&w);
}

/* ---------------------------------------------------------------- routes */

int api_sweeps_register(http_server *srv)
{
    static const char *const chart_query[] = {"view", "metric", NULL};
    const http_route routes[] = {
        {.method = HTTP_POST, .pattern = "/v1/sweeps", .handler = handle_submit,
         .body = HTTP_BODY_BUFFER, .content_types = json_types},
        {.method = HTTP_GET, .pattern = "/v1/sweeps", .handler = handle_list,
         .query = http_page_query},
        {.method = HTTP_GET, .pattern = "/v1/sweeps/{id}", .handler = handle_get},
        {.method = HTTP_DELETE, .pattern = "/v1/sweeps/{id}", .handler = handle_delete},
        {.method = HTTP_POST, .pattern = "/v1/sweeps/{id}/cancel", .handler = handle_cancel},
        {.method = HTTP_GET, .pattern = "/v1/sweeps/{id}/results", .handler = handle_results},
        {.method = HTTP_GET, .pattern = "/v1/sweeps/{id}/chart.svg", .handler = handle_chart,
         .query = chart_query},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
