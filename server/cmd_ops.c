/*
 * cmd_ops.c — operator subcommands: `fitd version`, `fitd migrate` and
 * `fitd backup DEST`, plus the helpers in ops.h (the retention timer).
 *
 * migrate and backup take serve's flags and FITD_* environment (config_parse), so
 * `--db` / FITD_DB name the database exactly as for serve.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <sys/prctl.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "ops.h"
#include "store.h"

int ops_make_parent_dirs(const char *path)
{
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
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

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int ops_backup_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    const struct dirent *e;
    while ((e = readdir(d))) {
        char path[1200], journal[1220];
        if (strncmp(e->d_name, "fitd-", 5) != 0 || !has_suffix(e->d_name, ".db.tmp")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(journal, sizeof journal, "%s-journal", path);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* no backup holds it: dead */
            removed += unlink(path) == 0;
            removed += unlink(journal) == 0;
            char q[1300];
            LOG(LOG_INFO, "removed an unfinished backup", "\"path\":%s",
                log_quote(q, sizeof q, path));
        }
        close(fd);
    }
    closedir(d);
    return removed;
}

int ops_backup_name(const char *dir, char *buf, size_t len, char *created_at)
{
    struct timespec ts;
    struct tm tm;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm)) return -1;
    /* strftime: bounded fields (no truncation warnings for out-of-range ints). */
    char secs[24];
    strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(created_at, 32, "%s.%03dZ", secs, (int)(ts.tv_nsec / 1000000));
    char stamp[24];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    int n = snprintf(buf, len, "%s/fitd-%s-%08x.db", dir, stamp, (unsigned)rnd);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---------------------------------------------------------------- subcommands */

int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "fitd: version takes no arguments\n");
        return 2;
    }
    config_version(stdout); /* the same text as fitd --version */
    return 0;
}

/* Parse serve's flags and environment into *cfg: 0 to go on, else the exit code. */
static int parse_flags(srv_config *cfg, int argc, char **argv)
{
    config_defaults(cfg);
    int rc = config_parse(cfg, argc, argv, stdout, stderr);
    if (rc == 1) return 100; /* --help, --version or --print-config was handled: exit 0 */
    return rc == 0 ? 0 : 2;
}

int cmd_migrate(int argc, char **argv)
{
    srv_config cfg;
    char err[512] = "";
    int version = 0, rc = parse_flags(&cfg, argc, argv);
    if (rc == 100) return 0;
    if (rc) return rc;
    if (ops_make_parent_dirs(cfg.db_path) != 0) {
        fprintf(stderr, "fitd: %s: cannot create its folder: %s\n", cfg.db_path, strerror(errno));
        return 1;
    }
    store *st = store_open(cfg.db_path, err, sizeof err);
    if (!st) {
        fprintf(stderr, "fitd: %s\n", err);
        return 1;
    }
    rc = 1;
    if (store_check(st) != STORE_OK || store_migrate(st) != STORE_OK ||
        store_schema_version(st, &version) != STORE_OK) {
        fprintf(stderr, "fitd: migrate: %s\n", store_errmsg(st));
        goto out;
    }
    printf("%s: schema version %d\n", cfg.db_path, version);
    rc = 0;
out:
    store_close(st);
    return rc;
}

int cmd_backup(int argc, char **argv)
{
    srv_config cfg;
    char err[512] = "";
    struct stat sb;
    int64_t bytes = 0;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: fitd backup DEST [--db PATH]: copy the live database to DEST "
                   "(a new file) with SQLite's online backup\n");
            return 0;
        }
        fprintf(stderr, "fitd: usage: fitd backup DEST [--db PATH]\n");
        return 2;
    }
    const char *dest = argv[1];
    /* The flags after DEST, with the command word in front as getopt expects. */
    char **rest = malloc((size_t)argc * sizeof *rest);
    if (!rest) {
        fprintf(stderr, "fitd: out of memory\n");
        return 1;
    }
    rest[0] = argv[0];
    for (int i = 2; i < argc; i++) rest[i - 1] = argv[i];
    rest[argc - 1] = NULL;
    int rc = parse_flags(&cfg, argc - 1, rest);
    free(rest);
    if (rc == 100) return 0;
    if (rc) return rc;
    /* store_open would create a missing database: an empty backup helps nobody. */
    if (stat(cfg.db_path, &sb) != 0) {
        fprintf(stderr, "fitd: backup: no database at %s: %s\n", cfg.db_path, strerror(errno));
        return 1;
    }
    store *st = store_open(cfg.db_path, err, sizeof err);
    if (!st) {
        fprintf(stderr, "fitd: %s\n", err);
        return 1;
    }
    rc = 1;
    store_rc src = store_backup(st, dest, &bytes);
    if (src != STORE_OK) {
        fprintf(stderr, "fitd: backup: %s\n", store_errmsg(st));
        goto out;
    }
    char q[1100];
    printf("{\"path\":%s,\"bytes\":%lld}\n", log_quote(q, sizeof q, dest), (long long)bytes);
    rc = 0;
out:
    store_close(st);
    return rc;
}

/* ---------------------------------------------------------------- retention */

struct ops_retention {
    const srv_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    long interval_ms;
};

static void prune_once(ops_retention *r, store **st)
{
    char err[512] = "", q[600];
    if (!*st) {
        *st = store_open(r->cfg->db_path, err, sizeof err);
        if (!*st) {
            LOG(LOG_WARN, "retention: cannot open the database", "\"error\":%s",
                log_quote(q, sizeof q, err));
            return;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double before = (double)now.tv_sec + (double)now.tv_nsec * 1e-9 -
                    r->cfg->keep_finished_days * 86400.0;
    int64_t n = 0;
    if (store_jobs_prune(*st, before, &n) != STORE_OK)
        LOG(LOG_WARN, "retention: prune failed", "\"error\":%s",
            log_quote(q, sizeof q, store_errmsg(*st)));
    else if (n > 0)
        LOG(LOG_INFO, "retention: pruned finished jobs", "\"count\":%lld,\"keep_days\":%g",
            (long long)n, r->cfg->keep_finished_days);
}

static void *retention_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-retention", 0, 0, 0); /* shown by top -H and in /proc */
    ops_retention *r = arg;
    store *st = NULL;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        prune_once(r, &st);
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_ms / 1000;
        until.tv_nsec += (r->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&r->mu);
    store_close(st);
    return NULL;
}

ops_retention *ops_retention_start(const srv_config *cfg)
{
    if (!(cfg->keep_finished_days > 0)) return NULL;
    ops_retention *r = calloc(1, sizeof *r);
    if (!r) {
        LOG(LOG_WARN, "retention not started: out of memory", NULL);
        return NULL;
    }
    r->cfg = cfg;
    r->interval_ms = 3600L * 1000;
    const char *t = getenv("FITD_TEST_RETENTION_INTERVAL_MS"); /* tests only */
    if (t && atol(t) > 0) r->interval_ms = atol(t);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        LOG(LOG_WARN, "retention not started: cannot create its thread", NULL);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    LOG(LOG_INFO, "retention on", "\"keep_finished_days\":%g,\"interval_ms\":%ld",
        cfg->keep_finished_days, r->interval_ms);
    return r;
}

void ops_retention_stop(ops_retention *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
