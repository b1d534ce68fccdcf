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
#include "record.h"
#include "store.h"
#include "svg.h"

/* The compiled metric names of the job's stored (resolved) spec, borrowed from
 * *spec (a new reference the caller decrefs; NULL when unreadable). */
static int job_metric_names(const store_job *j, json_t **spec, const char *names[NN_MAX_METRICS])
{
    *spec = j->spec_json ? json_loads(j->spec_json, 0, NULL) : NULL;
    json_t *arr = json_object_get(json_object_get(*spec, "compile"), "metrics");
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach(arr, i, v) if (json_is_string(v) && n < NN_MAX_METRICS) names[n++] = json_string_value(v);
    return n;
}

/* 400 naming ?metric=, listing what the job records. */
static void reply_bad_metric(http_req *req, const char *metric, const char *const *names, int n)
{
    char list[512];
    record_keys_list(list, sizeof list, names, n);
    json_t *errors = json_array();
    if (errors)
        http_problem_add(errors, "/metric", "unknown metric \"%.100s\"; this job records: %s",
                         metric, list);
    http_reply_problem_errors(req, 400, "invalid query parameter metric", errors);
}

static void handle_metrics_svg(http_req *req)
{
    store_job j = {0};
    record_curve c = {0};
    char *svg = NULL;
    char title[400], val_key[128], mark[64];
    const char *metric = http_req_query(req, "metric");
    const char *scale = http_req_query(req, "scale");
    if (!metric) metric = "loss"; /* an empty one is a 400 naming /metric, as ?scale= */
    if (scale && strcmp(scale, "log") != 0 && strcmp(scale, "linear") != 0) {
        json_t *errors = json_array();
        if (errors) http_problem_add(errors, "/scale", "must be \"linear\" or \"log\"");
        http_reply_problem_errors(req, 400, "invalid query parameter scale", errors);
        return;
    }
    store *st = http_store(req);
    if (!st) return;
    if (api_job_load(req, st, &j) != 0) goto out; /* 404 unless it exists and is ours */
    const char *names[NN_MAX_METRICS];
    json_t *spec;
    int n_names = job_metric_names(&j, &spec, names);
    /* A val_ twin is drawn with its training series, so it is not a series itself. */
    record_key_kind kind = strlen(metric) > 100 ? RECORD_KEY_UNKNOWN : record_key(metric, names, n_names);
    int bad = kind == RECORD_KEY_UNKNOWN || kind == RECORD_KEY_VAL;
    if (bad) reply_bad_metric(req, metric, names, n_names); /* names borrow from spec */
    json_decref(spec);
    if (bad) goto out;
    snprintf(val_key, sizeof val_key, "val_%s", metric);
    c.keys[0] = metric;
    c.keys[1] = val_key;
    c.n_keys = kind == RECORD_KEY_TRAIN ? 2 : 1;
    store_rc rc = store_job_metrics(st, j.id, 0, record_curve_row, &c);
    if (c.failed) { /* the walk stopped: out of memory */
        http_reply_nomem(req);
        goto out;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, rc);
        goto out;
    }

    int has_val = 0;
    for (int i = 0; c.n_keys == 2 && i < c.n; i++) has_val |= isfinite(c.y[1][i]);
    svg_series series[2] = {
        {.name = metric, .x = c.x, .y = c.y[0], .n = c.n, .color = 0, .dash = 0},
        {.name = val_key, .x = c.x, .y = c.y[1], .n = c.n, .color = 1, .dash = 1},
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
        http_reply_nomem(req);
        goto out;
    }
    /* A running job's chart changes with every epoch. */
    http_reply_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, "image/svg+xml", svg, len);
    svg = NULL;
out:
    free(svg);
    record_curve_free(&c);
    store_job_free(&j);
}

int api_plots_register(http_server *srv)
{
    static const char *const query[] = {"metric", "scale", NULL};
    http_route r = {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/metrics.svg",
                    .handler = handle_metrics_svg, .query = query};
    return http_route_add(srv, &r, 1);
}
