/*
 * api_plots.c — GET /v1/jobs/{id}/metrics.svg: a job's learning curves as an
 * SVG chart (server/svg.c draws it).
 *
 * ?metric= picks the series: "loss" (the default) or a compiled metric draws the
 * training value and its val_ twin, with the gap between them shaded;
 * regularization_loss, learning_rate and seconds draw one series. ?scale=log
 * puts y on a log axis. The best epoch is marked. A running job's x axis spans
 * the planned epochs so the curves grow across it; a job without epochs gets
 * empty axes and a note. The records come from store_job_metrics, as for
 * GET /v1/jobs/{id}/metrics.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "http.h"
#include "store.h"
#include "svg.h"

/* Per-epoch keys with no val_ twin (record.c). */
static const char *const single_series[] = {"regularization_loss", "learning_rate", "seconds"};

typedef struct curve {
    const char *key, *val_key; /* record keys; val_key NULL = one series */
    double *x, *y, *vy;
    int n, cap;
    int failed;
} curve;

static double num_or_nan(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int curve_row(void *user, int epoch, const char *text, size_t len)
{
    curve *c = user;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        double *x = realloc(c->x, (size_t)cap * sizeof *x);
        if (x) c->x = x;
        double *y = realloc(c->y, (size_t)cap * sizeof *y);
        if (y) c->y = y;
        double *vy = realloc(c->vy, (size_t)cap * sizeof *vy);
        if (vy) c->vy = vy;
        if (!x || !y || !vy) return c->failed = 1;
        c->cap = cap;
    }
    json_t *r = json_loadb(text, len, 0, NULL);
    if (!r) return c->failed = 1;
    c->x[c->n] = epoch;
    c->y[c->n] = num_or_nan(json_object_get(r, c->key));
    c->vy[c->n] = c->val_key ? num_or_nan(json_object_get(r, c->val_key)) : NAN;
    c->n++;
    json_decref(r);
    return 0;
}

/* The compiled metric names of the job's stored (resolved) spec: a borrowed
 * array inside *spec (new reference, the caller decrefs; NULL when unreadable). */
static json_t *compiled_metrics(const store_job *j, json_t **spec)
{
    *spec = j->spec_json ? json_loads(j->spec_json, 0, NULL) : NULL;
    return json_object_get(json_object_get(*spec, "compile"), "metrics");
}

/* Is `metric` one the job's records can hold? Sets *paired for a metric with a
 * val_ twin. */
static int metric_known(const store_job *j, const char *metric, int *paired)
{
    *paired = 1;
    if (strcmp(metric, "loss") == 0) return 1;
    for (size_t i = 0; i < sizeof single_series / sizeof single_series[0]; i++)
        if (strcmp(metric, single_series[i]) == 0) return *paired = 0, 1;
    json_t *spec;
    json_t *names = compiled_metrics(j, &spec);
    size_t i;
    json_t *v;
    int found = 0;
    json_array_foreach(names, i, v) if (json_is_string(v) && strcmp(json_string_value(v), metric) == 0) found = 1;
    json_decref(spec);
    return found;
}

/* 400 naming ?metric=, listing what the job offers. */
static void reply_bad_metric(http_req *req, const store_job *j, const char *metric)
{
    char list[512] = "loss";
    size_t n = strlen(list);
    json_t *spec;
    json_t *names = compiled_metrics(j, &spec);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) if (json_is_string(v) && n < sizeof list)
        n += (size_t)snprintf(list + n, sizeof list - n, ", %s", json_string_value(v));
    for (i = 0; i < sizeof single_series / sizeof single_series[0] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, ", %s", single_series[i]);
    json_decref(spec);
    json_t *errors = json_array();
    if (errors)
        http_problem_add(errors, "/metric", "unknown metric \"%.100s\"; this job records: %s",
                         metric, list);
    http_reply_problem_errors(req, 400, "invalid query parameter metric", errors);
}

static void handle_metrics_svg(http_req *req)
{
    store_job j = {0};
    curve c = {0};
    char *svg = NULL;
    char title[400], val_key[128], mark[64];
    const char *metric = http_req_query(req, "metric");
    const char *scale = http_req_query(req, "scale");
    if (!metric || !*metric) metric = "loss";
    if (scale && strcmp(scale, "log") != 0 && strcmp(scale, "linear") != 0) {
        json_t *errors = json_array();
        if (errors) http_problem_add(errors, "/scale", "must be \"linear\" or \"log\"");
        http_reply_problem_errors(req, 400, "invalid query parameter scale", errors);
        return;
    }
    store *st = http_store(req);
    if (!st) return;
    if (api_job_load(req, st, &j) != 0) goto out; /* 404 unless it exists and is ours */
    int paired = 0;
    if (strlen(metric) > 100 || !metric_known(&j, metric, &paired)) {
        reply_bad_metric(req, &j, metric);
        goto out;
    }
    snprintf(val_key, sizeof val_key, "val_%s", metric);
    c.key = metric;
    c.val_key = paired ? val_key : NULL;
    store_rc rc = store_job_metrics(st, j.id, 0, curve_row, &c);
    if (c.failed) { /* the walk stopped: out of memory */
        http_reply_problem(req, 503, "out of memory");
        goto out;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, rc);
        goto out;
    }

    int has_val = 0;
    for (int i = 0; i < c.n; i++) has_val |= isfinite(c.vy[i]);
    svg_series series[2] = {
        {.name = metric, .x = c.x, .y = c.y, .n = c.n, .color = 0, .dash = 0},
        {.name = val_key, .x = c.x, .y = c.vy, .n = c.n, .color = 1, .dash = 1},
    };
    /* A finished job shows its epochs; an unfinished one the whole plan. */
    int finished = store_job_status_finished(j.status);
    snprintf(title, sizeof title, "%s: %s", j.name && j.name[0] ? j.name : j.id, metric);
    snprintf(mark, sizeof mark, "best epoch %d", j.best_epoch);
    svg_chart chart = {
        .title = title,
        .x_label = "epoch",
        .y_label = metric,
        .log_y = scale && strcmp(scale, "log") == 0,
        .x_integer = 1,
        .x_fixed = !finished && j.epochs > 0,
        .x_lo = 1,
        .x_hi = j.epochs > c.n ? j.epochs : c.n,
        .note = finished ? "no epochs recorded" : "no epochs yet",
        .has_mark = j.best_epoch > 0,
        .mark_x = j.best_epoch,
        .mark_label = mark,
        .fill_a = 0,
        .fill_b = has_val ? 1 : 0,
    };
    size_t len = 0;
    svg = svg_line_chart(&chart, series, has_val ? 2 : 1, &len);
    if (!svg) {
        http_reply_problem(req, 503, "out of memory");
        goto out;
    }
    /* A running job's chart changes with every epoch. */
    http_reply_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, "image/svg+xml", svg, len);
    svg = NULL;
out:
    free(svg);
    free(c.x);
    free(c.y);
    free(c.vy);
    store_job_free(&j);
}

int api_plots_register(http_server *srv)
{
    http_route r = {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/metrics.svg",
                    .handler = handle_metrics_svg};
    return http_route_add(srv, &r, 1);
}
