/*
 * main.c — the fitd program: `fitd [serve] [flags]` (default), `fitd train ...`,
 * `fitd --help`, `fitd --version`.
 *
 * serve's start-up order: parse flags and environment, open the store, migrate,
 * put jobs left running back in the queue, start the worker pool, then the HTTP
 * server. SIGINT/SIGTERM stop it in the reverse order: stop accepting requests
 * (in-flight ones finish), stop the pool (running jobs go back to queued), close.
 * The signals are blocked in every thread and taken with sigwait here, so no
 * handler runs asynchronously.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "api.h"
#include "commands.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "store.h"

/* Create the folder that will hold `path` (mkdir -p of its dirname). */
static int make_parent_dirs(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: a reader never sees a half-written file. */
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static int serve(int argc, char **argv)
{
    srv_config cfg;
    char err[512] = "", q[600];
    int rc = 1;
    store *st = NULL;
    pool *workers = NULL;
    http_server *srv = NULL;
    sigset_t sigs;

    config_defaults(&cfg);
    int prc = config_parse(&cfg, argc, argv, stdout, stderr);
    if (prc == 1) return 0;
    if (prc != 0) return 2;
    log_set_level(cfg.log_level);

    /* Block the stop signals before any thread starts: threads inherit the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (make_parent_dirs(cfg.db_path) != 0) {
        LOG(LOG_ERROR, "cannot create the database folder", "\"db\":%s,\"error\":%s",
            log_quote(q, sizeof q, cfg.db_path), log_quote(err, sizeof err, strerror(errno)));
        return 1;
    }
    st = store_open(cfg.db_path, err, sizeof err);
    if (!st) {
        LOG(LOG_ERROR, "cannot open the database", "\"error\":%s", log_quote(q, sizeof q, err));
        goto out;
    }
    if (store_migrate(st) != STORE_OK) {
        LOG(LOG_ERROR, "migration failed", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    int n_requeued = 0;
    if (store_recover_running(st, &n_requeued) != STORE_OK) {
        LOG(LOG_ERROR, "recovery failed", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    if (n_requeued) LOG(LOG_INFO, "requeued jobs left running", "\"count\":%d", n_requeued);

    pool_options popt = {.workers = cfg.workers, .db_path = cfg.db_path, .blas_threads = 0};
    workers = pool_start(&popt, err, sizeof err);
    if (!workers) {
        LOG(LOG_ERROR, "cannot start the worker pool", "\"error\":%s", log_quote(q, sizeof q, err));
        goto out;
    }

    api_ctx ctx = {.cfg = &cfg, .pool = workers};
    http_config hc = {
        .host = cfg.listen_host,
        .port = cfg.listen_port,
        .n_threads = (unsigned)cfg.http_threads,
        .connection_limit = (unsigned)cfg.connection_limit,
        .connection_timeout_s = (unsigned)cfg.connection_timeout_s,
        .max_body_default = cfg.max_body_json,
        .db_path = cfg.db_path,
        .app = &ctx,
    };
    srv = http_server_new(&hc);
    if (!srv || api_datasets_register(srv) != 0 || api_jobs_register(srv) != 0) {
        LOG(LOG_ERROR, "out of memory", NULL);
        goto out;
    }
    if (http_server_start(srv, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot listen", "\"error\":%s", log_quote(q, sizeof q, err));
        goto out;
    }
    unsigned port = http_server_port(srv);
    if (cfg.port_file[0] && write_port_file(cfg.port_file, port) != 0) {
        LOG(LOG_ERROR, "cannot write the port file", "\"path\":%s",
            log_quote(q, sizeof q, cfg.port_file));
        goto out;
    }
    LOG(LOG_INFO, "listening", "\"host\":%s,\"port\":%u,\"db\":%s,\"workers\":%d",
        log_quote(err, sizeof err, cfg.listen_host), port, log_quote(q, sizeof q, cfg.db_path),
        cfg.workers);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    LOG(LOG_INFO, "stopping", "\"signal\":%d", sig);
    rc = 0;
out:
    http_server_stop(srv); /* no new requests; in-flight ones finish */
    pool_stop(workers);    /* running jobs go back to queued */
    http_server_free(srv);
    store_close(st);
    if (rc == 0) LOG(LOG_INFO, "stopped", NULL);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-') {
        fprintf(stderr, "fitd: unknown command '%s' (see fitd --help)\n", argv[1]);
        return 2;
    }
    return serve(argc, argv);
}
