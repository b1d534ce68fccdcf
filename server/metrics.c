/* metrics.c — Prometheus counters, histograms and GET /metrics (see metrics.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "api.h"
#include "buf.h"
#include "metrics.h"
#include "pool.h"
#include "store.h"

/* metrics.h cannot name the store's enum; the gauge array must match it. */
_Static_assert(sizeof ((metrics_gauges *)0)->jobs / sizeof(int64_t) == STORE_JOB_STATUS_COUNT,
               "metrics_gauges.jobs has one slot per store_job_status");

#define ROUTE_MAX 96
#define RATE_WINDOW_S 60 /* fitd_training_samples_per_second averages over this */
#define RATE_SLOTS 64    /* one-second slots, >= RATE_WINDOW_S */

/* Upper bounds (seconds) of the histogram buckets; +Inf is implied. */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5, 10};
#define N_LAT ((int)(sizeof latency_bounds / sizeof latency_bounds[0]))
static const double epoch_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900};
#define N_EPOCH ((int)(sizeof epoch_bounds / sizeof epoch_bounds[0]))

typedef struct req_series {
    char route[ROUTE_MAX]; /* "" = unused slot */
    char method[8];
    unsigned status;
    uint64_t count;
} req_series;

typedef struct histogram {
    uint64_t buckets[16]; /* cumulative counts are made at render time */
    uint64_t count;
    double sum;
} histogram;

struct metrics {
    pthread_mutex_t mu; /* guards everything below */
    req_series reqs[METRICS_MAX_SERIES];
    uint64_t overflow; /* requests of triples beyond the table */
    histogram latency;
    histogram epochs;
    uint64_t samples_total;
    int64_t rate_sec[RATE_SLOTS];
    uint64_t rate_samples[RATE_SLOTS];
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void hist_add(histogram *h, const double *bounds, int n, double v)
{
    int i = 0;
    while (i < n && v > bounds[i]) i++;
    h->buckets[i]++; /* i == n: only +Inf holds it */
    h->count++;
    h->sum += v;
}

void metrics_on_request(void *ctx, const char *route, const char *method, unsigned status,
                        double seconds)
{
    metrics *m = ctx;
    if (!m) return;
    const char *r = route ? route : "none";
    if (!method) method = "";
    if (!(seconds >= 0)) seconds = 0;
    pthread_mutex_lock(&m->mu);
    req_series *hit = NULL;
    /* Linear search: a few dozen live series; a hash would not pay off. */
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        req_series *s = &m->reqs[i];
        if (!s->route[0]) { /* first free slot: this triple is new */
            snprintf(s->route, sizeof s->route, "%s", r);
            snprintf(s->method, sizeof s->method, "%s", method);
            s->status = status;
            hit = s;
            break;
        }
        if (s->status == status && strcmp(s->method, method) == 0 && strcmp(s->route, r) == 0) {
            hit = s;
            break;
        }
    }
    if (hit) hit->count++;
    else m->overflow++;
    hist_add(&m->latency, latency_bounds, N_LAT, seconds);
    pthread_mutex_unlock(&m->mu);
}

void metrics_on_epoch(metrics *m, double seconds, int64_t samples)
{
    if (!m) return;
    if (!(seconds >= 0)) seconds = 0;
    if (samples < 0) samples = 0;
    int64_t now = (int64_t)clock_mono_s();
    int slot = (int)(now % RATE_SLOTS);
    pthread_mutex_lock(&m->mu);
    hist_add(&m->epochs, epoch_bounds, N_EPOCH, seconds);
    m->samples_total += (uint64_t)samples;
    if (m->rate_sec[slot] != now) {
        m->rate_sec[slot] = now;
        m->rate_samples[slot] = 0;
    }
    m->rate_samples[slot] += (uint64_t)samples;
    pthread_mutex_unlock(&m->mu);
}

/* ---------------------------------------------------------------- exposition */

/* A label value with \, " and newline escaped (the format's rules). */
static void label_value(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') dst[n++] = '\\', dst[n++] = *s;
        else if (*s == '\n') dst[n++] = '\\', dst[n++] = 'n';
        else dst[n++] = *s;
    }
    dst[n] = 0;
}

static void header(buf *o, const char *name, const char *type, const char *help)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_hist(buf *o, const char *name, const histogram *h, const double *bounds, int n)
{
    uint64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += h->buckets[i];
        buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
         (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len)
{
    buf o = {0};
    if (g && g->have_jobs) {
        header(&o, "fitd_jobs", "gauge", "Jobs in the database by state.");
        for (int i = 0; i < STORE_JOB_STATUS_COUNT; i++)
            buf_printf(&o, "fitd_jobs{state=\"%s\"} %lld\n",
                       store_job_status_name((store_job_status)i), (long long)g->jobs[i]);
        header(&o, "fitd_queue_depth", "gauge", "Jobs waiting for a worker.");
        buf_printf(&o, "fitd_queue_depth %lld\n", (long long)g->jobs[STORE_JOB_QUEUED]);
    }
    if (g) {
        header(&o, "fitd_workers", "gauge", "Training worker threads.");
        buf_printf(&o, "fitd_workers %d\n", g->workers);
        header(&o, "fitd_workers_busy", "gauge", "Workers running a job now.");
        buf_printf(&o, "fitd_workers_busy %d\n", g->workers_busy);
        if (g->db_bytes >= 0) {
            header(&o, "fitd_database_size_bytes", "gauge",
                   "Size of the SQLite database (page_count x page_size).");
            buf_printf(&o, "fitd_database_size_bytes %lld\n", (long long)g->db_bytes);
        }
    }
    if (m) {
        char route[2 * ROUTE_MAX], method[20];
        int64_t now = (int64_t)clock_mono_s();
        pthread_mutex_lock(&m->mu);
        uint64_t recent = 0;
        for (int i = 0; i < RATE_SLOTS; i++)
            if (m->rate_samples[i] && now - m->rate_sec[i] < RATE_WINDOW_S)
                recent += m->rate_samples[i];
        header(&o, "fitd_training_samples_total", "counter",
               "Training samples processed in committed epochs.");
        buf_printf(&o, "fitd_training_samples_total %llu\n", (unsigned long long)m->samples_total);
        header(&o, "fitd_training_samples_per_second", "gauge",
               "Training samples per second over the last 60 s (all workers).");
        buf_printf(&o, "fitd_training_samples_per_second %.6g\n", (double)recent / RATE_WINDOW_S);
        header(&o, "fitd_epoch_duration_seconds", "histogram", "Wall-clock time of one epoch.");
        render_hist(&o, "fitd_epoch_duration_seconds", &m->epochs, epoch_bounds, N_EPOCH);
        header(&o, "fitd_http_requests_total", "counter",
               "HTTP requests by route pattern, method and status (status 0: no reply sent).");
        for (int i = 0; i < METRICS_MAX_SERIES && m->reqs[i].route[0]; i++) {
            const req_series *s = &m->reqs[i];
            label_value(route, sizeof route, s->route);
            label_value(method, sizeof method, s->method);
            buf_printf(&o, "fitd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n",
                 route, method, s->status, (unsigned long long)s->count);
        }
        if (m->overflow)
            buf_printf(&o, "fitd_http_requests_total{route=\"other\",method=\"other\",status=\"other\"} "
                     "%llu\n", (unsigned long long)m->overflow);
        header(&o, "fitd_http_request_duration_seconds", "histogram",
               "Time from a request's first byte to its end.");
        render_hist(&o, "fitd_http_request_duration_seconds", &m->latency, latency_bounds, N_LAT);
        pthread_mutex_unlock(&m->mu);
    }
    if (o.failed || !o.data) {
        buf_free(&o);
        return NULL;
    }
    if (len) *len = o.len;
    return o.data;
}

/* ---------------------------------------------------------------- GET /metrics */

static void handle_metrics(http_req *req)
{
    const api_ctx *ctx = http_req_app(req);
    metrics_gauges g = {.db_bytes = -1};
    store *st = http_store(req);
    if (!st) return;
    g.have_jobs = 1;
    for (int i = 0; i < STORE_JOB_STATUS_COUNT && g.have_jobs; i++)
        if (store_job_count(st, (store_job_status)i, &g.jobs[i]) != STORE_OK) g.have_jobs = 0;
    if (store_db_bytes(st, &g.db_bytes) != STORE_OK) g.db_bytes = -1;
    if (ctx) pool_busy(ctx->pool, &g.workers_busy, &g.workers);
    size_t len = 0;
    char *text = metrics_render(ctx ? ctx->metrics : NULL, &g, &len);
    if (!text) {
        http_reply_nomem(req);
        return;
    }
    http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

int api_metrics_register(http_server *srv)
{
    http_route r = {.method = HTTP_GET, .pattern = "/metrics", .handler = handle_metrics,
                    .any_query = 1};
    return http_route_add(srv, &r, 1);
}
