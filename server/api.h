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

struct pool;

/* What every handler can reach through http_req_app(req): filled by main before
 * the server starts, read-only afterwards. */
typedef struct api_ctx {
    const srv_config *cfg; /* limits (max_body_*, max_epochs, ...) and paths */
    struct pool *pool;     /* the worker pool (pool_notify / pool_cancel / pool_progress_get) */
} api_ctx;

/* POST/GET /v1/datasets, GET/DELETE /v1/datasets/{id}. Returns 0 or -1 (OOM). */
int api_datasets_register(http_server *srv);

/* The /v1/jobs routes (server/api_jobs.c). Returns 0 or -1 (OOM). */
int api_jobs_register(http_server *srv);

/* GET /readyz and POST /v1/admin/backup (server/api_admin.c). Returns 0 or -1 (OOM). */
int api_admin_register(http_server *srv);

#endif
