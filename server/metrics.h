/*
 * metrics.h — fitd's Prometheus metrics: counters fed while the server runs,
 * gauges read when scraped, and the text exposition format (version 0.0.4)
 * served at GET /metrics.
 *
 * What it does: counts HTTP requests by route pattern, method and status, with
 * a latency histogram (fed by http.c's request-end hook, http_config.on_request),
 * and finished epochs with an epoch-duration histogram and the samples trained
 * (fed by the worker pool once per committed epoch). At scrape time it adds the
 * gauges that live elsewhere: jobs by state and the queue depth
 * (store_job_count), busy and total workers (pool_busy), the database size in
 * bytes (store_db_bytes).
 *
 * Route labels are patterns ("/v1/jobs/{id}"), never raw paths, so the label
 * set stays bounded: at most METRICS_MAX_SERIES (route, method, status) triples
 * are kept; further ones are counted in one series labelled "other".
 *
 * GET /metrics (registered by api_metrics_register, api.h; the handler reaches
 * this handle, the pool and the store through the api_ctx) is open even with
 * --auth-tokens, like /healthz: it holds aggregate counts only, no tenant, job
 * or dataset names.
 *
 * Threads and memory: one metrics handle per process (made by main, passed to
 * http and the pool as a context pointer — no global state). Every call is
 * thread-safe (one mutex; nothing is allocated per request or per epoch).
 */
#ifndef FITD_METRICS_H
#define FITD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 256

typedef struct metrics metrics;

/* A new, zeroed set of counters; NULL on out of memory. Free with metrics_free. */
metrics *metrics_new(void);
void metrics_free(metrics *m); /* NULL allowed */

/* One finished request: the matched route's pattern (NULL when none matched),
 * the method name, the status sent (0 = none: the client went away) and the
 * seconds from the first byte to the end. Matches http_config.on_request
 * (ctx = the metrics handle). */
void metrics_on_request(void *ctx, const char *route, const char *method, unsigned status,
                        double seconds);

/* One committed epoch: its wall-clock seconds and the training samples it went
 * through. NULL m ignored. */
void metrics_on_epoch(metrics *m, double seconds, int64_t samples);

/* The gauges a scrape reads from the store and the pool. */
typedef struct metrics_gauges {
    int64_t jobs[5];      /* by store_job_status: queued, running, succeeded, failed, cancelled */
    int have_jobs;
    int workers, workers_busy;
    int64_t db_bytes;     /* < 0 = unknown */
} metrics_gauges;

/* The exposition text (malloc'ed, free()) with the counters and `g` (may be
 * NULL); *len its length (may be NULL). NULL on out of memory. */
char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len);

#endif
