/*
 * api.h — the v1 resources. Each api_* module registers its routes on the HTTP
 * server (before http_server_start); main calls every function here. Handlers are
 * thin (STYLE rule 13): validate, persist, signal, reply, using http.h's reply
 * and problem helpers and the per-thread store from http_store().
 */
#ifndef FITD_API_H
#define FITD_API_H

#include "config.h"
#include "http.h"
#include "spec.h"
#include "store.h"

struct pool;

/* What every handler can reach through http_req_app(req): filled by main before
 * the server starts, read-only afterwards. */
typedef struct api_ctx {
    const srv_config *cfg; /* limits (max_body_*, max_epochs, ...) and paths */
    struct pool *pool;     /* the worker pool (pool_notify / pool_cancel / pool_progress_get) */
    struct metrics *metrics; /* Prometheus counters (server/metrics.h); NULL = none */
} api_ctx;

/* POST/GET /v1/datasets, GET/DELETE /v1/datasets/{id}. Returns 0 or -1 (OOM). */
int api_datasets_register(http_server *srv);

/* The /v1/jobs routes (server/api_jobs.c). Returns 0 or -1 (OOM). */
int api_jobs_register(http_server *srv);

/* GET /v1/jobs/{id}/metrics.svg, the learning-curve chart (server/api_plots.c).
 * Returns 0 or -1 (OOM). */
int api_plots_register(http_server *srv);

/* GET /metrics, Prometheus text format (server/metrics.c); open with
 * --auth-tokens, like /healthz. Returns 0 or -1 (OOM). */
int api_metrics_register(http_server *srv);

/* A job spec that passed every check POST /v1/jobs makes: the parsed spec and
 * its resolved text (every default written out), ready to store. */
typedef struct api_job_draft {
    spec_job job;
    char *spec_text; /* malloc'ed */
} api_job_draft;

/* The ONE validation of a job spec (server/api_jobs.c), used by POST /v1/jobs and
 * POST /v1/sweeps: spec parse with the configured limits, datasets exist for the
 * caller's tenant and fit the model, memory estimate. Problems are appended to
 * `errors` (pointers into `spec`). Returns 0 with *d filled (free with
 * api_job_draft_free), 1 when problems were added (*d empty), or -1 after
 * replying (out of memory, store failure). */
int api_job_prepare(http_req *req, store *st, const json_t *spec, json_t *errors,
                    api_job_draft *d);
void api_job_draft_free(api_job_draft *d);
/* The store row for a draft: tenant, name, spec, datasets, epochs and the
 * --max-queued cap (strings borrowed from d and req). */
store_job_new api_job_draft_row(http_req *req, const api_job_draft *d);

/* Does the request's Accept header ask for text/csv? (server/api_jobs.c) */
int api_accepts_csv(http_req *req);
/* Answer a failed store call as the job routes do (404, 409, 429 for the queue
 * limit, 503, 507, 500; `what` names the resource). (server/api_jobs.c) */
void api_reply_store_error(http_req *req, store *st, store_rc rc, const char *what);

/* The job named by the route's {id} into *out (freed with store_job_free): 0, or
 * -1 after replying 404 (absent, or another tenant's: the same answer) or the
 * store's error. */
int api_job_load(http_req *req, store *st, store_job *out);

/* A resource name (datasets, weights): 1 to 255 bytes of valid UTF-8 without
 * control characters (names are echoed in JSON). */
int api_name_ok(const char *s);

/* The list routes' shared steps (server/api_jobs.c). api_list_query: the page
 * asked for (?limit=&cursor=, the caller's tenant) into *q; 0, or -1 after a 400.
 * api_reply_list_error: a failed store_*_list call, 400 naming /cursor for a
 * cursor the store rejected, else as api_reply_store_error. api_reply_list:
 * 200 {"items": items, "next_cursor": next or null}; steals items, and a NULL
 * items (out of memory building them) answers 503. */
int api_list_query(http_req *req, store_list_query *q);
void api_reply_list_error(http_req *req, store *st, store_rc rc, const char *what);
void api_reply_list(http_req *req, json_t *items, const char *next);

/* The /v1/sweeps routes (server/api_sweeps.c). Returns 0 or -1 (OOM). */
int api_sweeps_register(http_server *srv);

/* POST/GET /v1/weights, GET/DELETE /v1/weights/{id}: safetensors uploads for warm
 * starts (server/api_weights.c). Returns 0 or -1 (OOM). */
int api_weights_register(http_server *srv);

/* GET /readyz and POST /v1/admin/backup (server/api_admin.c). Returns 0 or -1 (OOM). */
int api_admin_register(http_server *srv);

/* GET /v1/jobs/{id}/events: a job's live progress as Server-Sent Events
 * (server/api_events.c). Returns 0 or -1 (OOM). */
int api_events_register(http_server *srv);

/* The dashboard: GET / and GET /ui/{file}, open without a token (server/api_web.c).
 * Returns 0 or -1 (OOM). */
int api_web_register(http_server *srv);

#endif
