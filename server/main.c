/*
 * main.c — the fitd program: `fitd [serve] [flags]` (default), `fitd train ...`,
 * `fitd --help`, `fitd --version`.
 *
 * serve's start-up order: parse flags and environment, open the store, check it
 * (a damaged file, or one from a newer fitd, is refused), migrate, put jobs left
 * running back in the queue, start the worker pool, then the HTTP server.
 * SIGINT/SIGTERM stop it within --shutdown-timeout: requests get 503 + Retry-After,
 * the pool stops (running jobs checkpoint at their next batch boundary and go back
 * to queued), in-flight requests finish, close; a second signal or the timeout
 * ends the process at once (see watchdog_main).
 * The signals are blocked in every thread and taken with sigwait here, so no
 * handler runs asynchronously.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <jansson.h>

#include "clock.h"
#include "api.h"
#include "auth.h"
#include "commands.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "pool.h"
#include "store.h"

/* Every connection holds a descriptor: raise the soft open-file limit to what
 * --max-connections needs besides the rest (a database connection, its file and
 * WAL, per worker and per HTTP thread, each HTTP thread's epoll and wake-up
 * descriptors, and 64 for the listening socket, logs, stdio and the like), as
 * far as the hard limit allows, and warn when that is short (accept() then
 * pauses until connections close, /healthz included). */
static void fit_fd_limit(const srv_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = (rlim_t)cfg->connection_limit + 64 + 2 * ((rlim_t)cfg->workers + 1) +
                  4 * (rlim_t)cfg->http_threads;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return;
    struct rlimit up = {rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max,
                        rl.rlim_max};
    if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = up.rlim_cur;
    if (rl.rlim_cur < want)
        LOG(LOG_WARN, "the open-file limit is below --max-connections: past it new connections "
            "wait until others close", "\"limit\":%llu,\"needed\":%llu",
            (unsigned long long)rl.rlim_cur, (unsigned long long)want);
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

/* SIGINT/SIGTERM taken by a thread that does not block them (one a library started
 * before main): there is no safe way to begin a graceful stop from a handler, so it
 * acts as the second signal does. Async-signal-safe: write and _exit only. */
static void on_foreign_signal(int sig)
{
    static const char msg[] = "{\"level\":\"warn\",\"msg\":\"stop signal outside the "
                              "graceful path: exiting at once\"}\n";
    (void)sig;
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

static void wake_streams(void *srv) { http_server_wake_streams(srv); }

/* The shutdown bound. Once the stop signal arrived, this thread waits for a second
 * one or for the timeout and then ends the process at once: whatever is still
 * running is abandoned exactly as in a crash, which the store survives (every write
 * is one transaction; running jobs are requeued at the next start). _exit, not
 * exit: the other threads are still running and must not race atexit handlers. */
typedef struct watchdog {
    sigset_t sigs;
    double deadline;
    int timeout_s;
} watchdog;
static watchdog the_watchdog; /* static: outlives serve's frame if need be */

static void *watchdog_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-watchdog", 0, 0, 0); /* shown by top -H and in /proc */
    const watchdog *w = arg;
    for (;;) {
        double left = w->deadline - clock_mono_s();
        if (left <= 0) break;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        siginfo_t info;
        int sig = sigtimedwait(&w->sigs, &info, &ts);
        if (sig > 0) {
            LOG(LOG_WARN, "second stop signal: exiting at once", "\"signal\":%d", sig);
            _exit(1);
        }
        if (errno != EINTR && errno != EAGAIN) break;
    }
    LOG(LOG_ERROR, "shutdown timeout: exiting with work unfinished (jobs resume from their last "
        "checkpoint at the next start)", "\"timeout_s\":%d", w->timeout_s);
    _exit(1);
    return NULL;
}

static void watchdog_start(const sigset_t *sigs, int timeout_s)
{
    pthread_t th;
    the_watchdog.sigs = *sigs;
    the_watchdog.timeout_s = timeout_s;
    the_watchdog.deadline = clock_mono_s() + timeout_s;
    if (pthread_create(&th, NULL, watchdog_main, &the_watchdog) != 0) {
        LOG(LOG_WARN, "shutdown watchdog not started: the shutdown is not bounded", NULL);
        return;
    }
    pthread_detach(th);
}

/* Graceful shutdown within timeout_s: new and not yet handled requests get 503;
 * the workers stop at their next batch boundary, checkpoint and requeue their jobs
 * (pool_stop; the pool is freed only after the HTTP server stopped, since requests
 * in flight still use it); in-flight requests get until shortly before the
 * deadline to finish, then the caller stops the HTTP server. */
static void drain(http_server *srv, pool *workers, int timeout_s)
{
    double t0 = clock_mono_s();
    double margin = timeout_s >= 4 ? 1.0 : 0.25 * timeout_s;
    http_server_drain(srv);
    pool_stop(workers);
    LOG(LOG_INFO, "workers stopped", "\"ms\":%.0f", (clock_mono_s() - t0) * 1000);
    while (http_server_inflight(srv) > 0 && clock_mono_s() < t0 + timeout_s - margin) {
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

static int serve(int argc, char **argv)
{
    srv_config cfg;
    char err[512] = "", q[600];
    int rc = 1;
    store *st = NULL;
    pool *workers = NULL;
    http_server *srv = NULL;
    ops_retention *retention = NULL;
    metrics *counters = NULL;
    sigset_t sigs;

    config_defaults(&cfg);
    int prc = config_parse(&cfg, argc, argv, stdout, stderr);
    if (prc == 1) return 0;
    if (prc != 0) return 2;
    log_set_level(cfg.log_level);
    /* Tokens and TLS files are read, and refused, before anything starts. */
    auth_setup sec;
    if (auth_setup_load(&sec, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fitd: %s\n", err);
        return 2;
    }

    /* Jansson's hashtable seed is fixed before the workers, the log flusher and
     * the HTTP threads create objects. */
    json_object_seed(0);
    /* Block the stop signals before any thread starts: threads inherit the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Threads started before main (OpenBLAS' pool) do not block them: a signal the
     * kernel hands to one of those (when no thread of ours waits for it) must not
     * kill the process silently. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_foreign_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (ops_make_parent_dirs(cfg.db_path) != 0) {
        LOG(LOG_ERROR, "cannot create the database folder", "\"db\":%s,\"error\":%s",
            log_quote(q, sizeof q, cfg.db_path), log_quote(err, sizeof err, strerror(errno)));
        auth_setup_free(&sec);
        return 1;
    }
    /* Tests only, deliberately not a flag: FITD_TEST_MAX_PAGES caps every database
     * connection at that many pages (PRAGMA max_page_count), a disk that is full. */
    const char *test_pages = getenv("FITD_TEST_MAX_PAGES");
    if (test_pages && *test_pages) {
        long long n = strtoll(test_pages, NULL, 10);
        store_test_set_open_max_pages(n);
        LOG(LOG_WARN, "test mode: database capped", "\"max_pages\":%lld", n);
    }
    st = store_open(cfg.db_path, err, sizeof err);
    if (!st) {
        LOG(LOG_ERROR, "cannot open the database", "\"error\":%s", log_quote(q, sizeof q, err));
        goto out;
    }
    if (store_lock_serving(st) != STORE_OK) {
        LOG(LOG_ERROR, "cannot serve this database", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    /* A damaged file is refused before anything writes to it. The check reads the
     * whole file (seconds for gigabytes): said, so that a slow start is explained. */
    LOG(LOG_INFO, "checking the database", "\"db\":%s", log_quote(q, sizeof q, cfg.db_path));
    double check_t0 = clock_mono_s();
    if (store_check(st) != STORE_OK) {
        LOG(LOG_ERROR, "the database is damaged", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    LOG(LOG_INFO, "database checked", "\"seconds\":%.3f", clock_mono_s() - check_t0);
    if (store_migrate(st) != STORE_OK) {
        LOG(LOG_ERROR, "migration failed", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    int n_requeued = 0, n_failed = 0;
    if (store_recover_running(st, cfg.crash_limit, &n_requeued, &n_failed) != STORE_OK) {
        LOG(LOG_ERROR, "recovery failed", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(st)));
        goto out;
    }
    if (n_requeued) LOG(LOG_INFO, "requeued jobs left running", "\"count\":%d", n_requeued);
    if (n_failed)
        LOG(LOG_WARN, "failed jobs that fitd died under --crash-limit times", "\"count\":%d",
            n_failed);

    counters = metrics_new(); /* GET /metrics; fed by http and the pool */
    if (!counters) {
        LOG(LOG_ERROR, "out of memory", NULL);
        goto out;
    }
    pool_options popt = {.workers = cfg.workers, .db_path = cfg.db_path, .threads_per_job = 0,
                         .metrics = counters};
    workers = pool_start(&popt, err, sizeof err);
    if (!workers) {
        LOG(LOG_ERROR, "cannot start the worker pool", "\"error\":%s", log_quote(q, sizeof q, err));
        goto out;
    }

    api_ctx ctx = {.cfg = &cfg, .pool = workers, .metrics = counters};
    http_config hc = {
        .host = cfg.listen_host,
        .port = cfg.listen_port,
        .n_threads = (unsigned)cfg.http_threads,
        .connection_limit = (unsigned)cfg.connection_limit,
        .connection_timeout_s = (unsigned)cfg.connection_timeout_s,
        .request_timeout_s = (unsigned)cfg.request_timeout_s,
        .max_streams = (unsigned)cfg.max_event_streams,
        .max_body_default = cfg.max_body_json,
        .db_path = cfg.db_path,
        .app = &ctx,
        .authenticate = sec.tokens ? auth_http_authenticate : NULL,
        .auth_ctx = sec.tokens,
        .tls_cert_pem = sec.tls_cert,
        .tls_key_pem = sec.tls_key,
        .on_request = metrics_on_request,
        .on_request_ctx = counters,
    };
    fit_fd_limit(&cfg);
    srv = http_server_new(&hc);
    if (!srv || api_datasets_register(srv) != 0 || api_jobs_register(srv) != 0 ||
        api_sweeps_register(srv) != 0 ||
        api_admin_register(srv) != 0 || api_web_register(srv) != 0 ||
        api_events_register(srv) != 0 || api_weights_register(srv) != 0 ||
        api_metrics_register(srv) != 0 || api_plots_register(srv) != 0) {
        LOG(LOG_ERROR, "out of memory", NULL);
        goto out;
    }
    pool_on_news(workers, wake_streams, srv); /* event streams hear of epochs at once */
    if (log_batch_start() != 0) LOG(LOG_WARN, "access log unbatched (no thread)", NULL);
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
    if (sec.tokens)
        LOG(LOG_INFO, "authentication on", "\"tokens\":%zu,\"tenants\":%zu",
            auth_token_count(sec.tokens), auth_tenant_count(sec.tokens));
    if (!auth_host_is_loopback(cfg.listen_host)) {
        if (!sec.tokens)
            LOG(LOG_WARN, "listening beyond loopback without authentication: anyone who can "
                "reach this address can use fitd (see --auth-tokens)",
                "\"host\":%s", log_quote(q, sizeof q, cfg.listen_host));
        else if (!sec.tls_cert)
            LOG(LOG_WARN, "listening beyond loopback without TLS: bearer tokens cross the "
                "network in clear text (see --tls-cert)",
                "\"host\":%s", log_quote(q, sizeof q, cfg.listen_host));
    }

    retention = ops_retention_start(&cfg); /* NULL when --keep-finished-jobs is off */

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    LOG(LOG_INFO, "stopping", "\"signal\":%d,\"timeout_s\":%d", sig, cfg.shutdown_timeout_s);
    watchdog_start(&sigs, cfg.shutdown_timeout_s);
    drain(srv, workers, cfg.shutdown_timeout_s);
    rc = 0;
out:
    http_server_stop(srv); /* no new requests; in-flight ones finish */
    pool_free(workers);    /* running jobs go back to queued (if drain did not already) */
    http_server_free(srv);
    ops_retention_stop(retention);
    auth_setup_free(&sec); /* after the server: it borrowed the table and the PEM texts */
    store_close(st);
    metrics_free(counters); /* after the server and the pool that fed it */
    log_batch_stop();       /* after the last request's line */
    if (rc == 0) LOG(LOG_INFO, "stopped", NULL);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "healthcheck") == 0)
        return cmd_healthcheck(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "version") == 0) return cmd_version(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "migrate") == 0) return cmd_migrate(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "backup") == 0) return cmd_backup(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-') {
        fprintf(stderr, "fitd: unknown command '%s' (see fitd --help)\n", argv[1]);
        return 2;
    }
    return serve(argc, argv);
}
