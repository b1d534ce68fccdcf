/*
 * api_admin.c — GET /readyz and POST /v1/admin/backup.
 *
 * Readiness: the HTTP server starts only after the store was checked, migrated
 * and running jobs were recovered (main.c's start-up order), so answering at all
 * means those finished; GET /readyz then answers 200 while the database answers,
 * and 503 with Retry-After while shutting down (http.c's drain answers every route
 * so) or when the database does not answer. /healthz stays the liveness probe.
 *
 * Admin: with --auth-tokens, the /v1/admin routes are for the tenant named by
 * --admin-tenant only (403 for every other valid token; 403 for everyone when no
 * admin tenant is set). Without authentication fitd serves loopback only by
 * default, and the admin routes are open like every other route.
 *
 * Backup: written into --backup-dir (409 when it is not set) under a generated
 * name, never a path from the request; one backup at a time (503 + Retry-After
 * while one runs). The copy is store_backup's consistent snapshot.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "http.h"
#include "ops.h"
#include "store.h"

static atomic_int backup_running; /* one backup at a time, per process */

static void handle_readyz(http_req *req)
{
    store *st = http_store(req);
    if (!st) return;
    if (store_ping(st) != STORE_OK) {
        http_reply_header(req, "Retry-After", "5");
        http_reply_problem(req, 503, "database unreachable: %s", store_errmsg(st));
        return;
    }
    json_t *body = json_pack("{s:s}", "status", "ready");
    http_reply_json(req, 200, body); /* NULL: 503 out of memory */
}

/* 0 when the caller may use the admin routes, else replies 403 and returns -1. */
static int require_admin(http_req *req, const srv_config *cfg)
{
    if (!cfg->auth_tokens[0]) return 0; /* no authentication: nobody is told apart */
    if (cfg->admin_tenant[0] && strcmp(http_req_tenant(req), cfg->admin_tenant) == 0) return 0;
    http_reply_problem(req, 403, cfg->admin_tenant[0]
                                     ? "this token's tenant is not the admin tenant"
                                     : "no admin tenant is configured (see --admin-tenant)");
    return -1;
}

static void handle_backup(http_req *req)
{
    const api_ctx *ctx = http_req_app(req);
    const srv_config *cfg = ctx->cfg;
    char path[1200], created_at[32];
    int64_t bytes = 0;
    if (require_admin(req, cfg) != 0) return;
    if (!cfg->backup_dir[0]) {
        http_reply_problem(req, 409, "backups are not configured: start fitd with --backup-dir");
        return;
    }
    int idle = 0;
    if (!atomic_compare_exchange_strong(&backup_running, &idle, 1)) {
        http_reply_header(req, "Retry-After", "10");
        http_reply_problem(req, 503, "a backup is already running; retry later");
        return;
    }
    store *st = http_store(req);
    if (!st) goto out;
    ops_backup_leftovers(cfg->backup_dir);
    if (ops_backup_name(cfg->backup_dir, path, sizeof path, created_at) != 0) {
        http_reply_problem(req, 500, "cannot name the backup file");
        goto out;
    }
    if (ops_make_parent_dirs(path) != 0) {
        http_reply_problem(req, errno == ENOSPC ? 507 : 500, "cannot create the backup folder: %s",
                           strerror(errno));
        goto out;
    }
    store_rc rc = store_backup(st, path, &bytes);
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, rc);
        goto out;
    }
    json_t *body = json_pack("{s:s, s:I, s:s}", "path", path, "bytes", (json_int_t)bytes,
                             "created_at", created_at);
    http_reply_json(req, 200, body); /* NULL: 503 out of memory */
out:
    atomic_store(&backup_running, 0);
}

int api_admin_register(http_server *srv)
{
    const http_route routes[] = {
        {.method = HTTP_GET, .pattern = "/readyz", .handler = handle_readyz, .any_query = 1},
        {.method = HTTP_POST, .pattern = "/v1/admin/backup", .handler = handle_backup, .heavy = 1},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
