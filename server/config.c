/* config.c — flags and their FITD_* environment twins (see config.h). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <zlib.h>

#include "config.h"
#include "par.h"
#include "nn.h"

typedef enum opt_kind { OPT_STR, OPT_INT, OPT_I64, OPT_SIZE, OPT_LISTEN, OPT_LEVEL, OPT_DAYS } opt_kind;

typedef struct opt_def {
    const char *flag; /* long option name */
    const char *env;  /* its environment twin */
    opt_kind kind;
    size_t offset;    /* into srv_config */
    size_t size;      /* OPT_STR: buffer size */
    int64_t min, max; /* numeric bounds (inclusive) */
    const char *dflt; /* shown by --help */
    const char *help;
} opt_def;

#define OFF(f) offsetof(srv_config, f)
#define SZ(f) sizeof(((srv_config *)0)->f)

static const opt_def opts[] = {
    {"listen", "FITD_LISTEN", OPT_LISTEN, 0, 0, 0, 0, "127.0.0.1:8080",
     "address and port to listen on (port 0: any free port)"},
    {"db", "FITD_DB", OPT_STR, OFF(db_path), SZ(db_path), 0, 0, "./var/fitd.db",
     "SQLite database file (its folder is created if missing)"},
    {"port-file", "FITD_PORT_FILE", OPT_STR, OFF(port_file), SZ(port_file), 0, 0, "(none)",
     "write the bound port to this file once listening"},
    {"auth-tokens", "FITD_AUTH_TOKENS", OPT_STR, OFF(auth_tokens), SZ(auth_tokens), 0, 0,
     "(none: no auth)", "file of 'TOKEN TENANT' lines; then /v1 needs a bearer token"},
    {"tls-cert", "FITD_TLS_CERT", OPT_STR, OFF(tls_cert), SZ(tls_cert), 0, 0, "(none)",
     "PEM certificate (chain): serve HTTPS (needs --tls-key)"},
    {"tls-key", "FITD_TLS_KEY", OPT_STR, OFF(tls_key), SZ(tls_key), 0, 0, "(none)",
     "PEM private key of --tls-cert"},
    {"admin-tenant", "FITD_ADMIN_TENANT", OPT_STR, OFF(admin_tenant), SZ(admin_tenant), 0, 0,
     "(none)", "with --auth-tokens: the tenant whose tokens may call /v1/admin"},
    {"backup-dir", "FITD_BACKUP_DIR", OPT_STR, OFF(backup_dir), SZ(backup_dir), 0, 0,
     "(none: backups answer 409)", "folder where POST /v1/admin/backup writes backups"},
    {"keep-finished-jobs", "FITD_KEEP_FINISHED_JOBS", OPT_DAYS, OFF(keep_finished_days), 0, 0,
     36500, "0 (keep forever)", "days to keep finished jobs; older ones are pruned hourly"},
    {"workers", "FITD_WORKERS", OPT_INT, OFF(workers), 0, 1, 1024, "number of cores",
     "training worker threads"},
    {"http-threads", "FITD_HTTP_THREADS", OPT_INT, OFF(http_threads), 0, 1, 256, "4",
     "HTTP request threads (predictions and backups run on at most all but one)"},
    {"max-connections", "FITD_MAX_CONNECTIONS", OPT_INT, OFF(connection_limit), 0, 1, 100000,
     "1024", "concurrent HTTP connections (the open-file limit is raised to match, up to the hard limit)"},
    {"connection-timeout", "FITD_CONNECTION_TIMEOUT", OPT_INT, OFF(connection_timeout_s), 0, 1,
     86400, "30", "seconds before an idle connection is closed"},
    {"shutdown-timeout", "FITD_SHUTDOWN_TIMEOUT", OPT_INT, OFF(shutdown_timeout_s), 0, 1, 3600,
     "10", "seconds from SIGTERM/SIGINT to exit (jobs checkpoint and requeue)"},
    {"crash-limit", "FITD_CRASH_LIMIT", OPT_INT, OFF(crash_limit), 0, 0, 1000000, "3",
     "deaths of fitd (crash, kill, out of memory) under a running job since its last epoch "
     "before the next start fails the job instead of requeuing it (0: no limit)"},
    {"max-body-json", "FITD_MAX_BODY_JSON", OPT_SIZE, OFF(max_body_json), 0, 1024,
     INT64_C(1) << 32, "1MiB", "largest JSON request body (job specs, predict, datasets as JSON)"},
    {"max-body-dataset", "FITD_MAX_BODY_DATASET", OPT_SIZE, OFF(max_body_dataset), 0, 1024,
     INT64_C(1) << 40, "512MiB", "largest dataset upload (CSV, multipart IDX)"},
    {"max-queued", "FITD_MAX_QUEUED", OPT_INT, OFF(max_queued), 0, 1, 100000000, "10000",
     "queued jobs accepted before submissions are refused"},
    {"max-epochs", "FITD_MAX_EPOCHS", OPT_INT, OFF(max_epochs), 0, 1, 100000000, "10000",
     "epochs per job"},
    {"max-layers", "FITD_MAX_LAYERS", OPT_INT, OFF(max_layers), 0, 1, 100000, "64",
     "layers per model"},
    {"max-units", "FITD_MAX_UNITS", OPT_INT, OFF(max_units), 0, 1, 100000000, "65536",
     "units per dense layer"},
    {"max-input-dim", "FITD_MAX_INPUT_DIM", OPT_INT, OFF(max_input_dim), 0, 1, 100000000,
     "1000000", "input features per sample"},
    {"max-params", "FITD_MAX_PARAMS", OPT_I64, OFF(max_params), 0, 1, INT64_C(1) << 40,
     "50000000", "parameters per model"},
    {"max-batch-size", "FITD_MAX_BATCH_SIZE", OPT_INT, OFF(max_batch_size), 0, 1, 100000000,
     "65536", "samples per batch"},
    {"max-job-memory", "FITD_MAX_JOB_MEMORY", OPT_SIZE, OFF(max_job_memory), 0, 1024,
     INT64_C(1) << 50, "4GiB", "estimated training memory per job (submissions over it get 422)"},
    {"request-timeout", "FITD_REQUEST_TIMEOUT", OPT_INT, OFF(request_timeout_s), 0, 1, 86400,
     "300", "seconds a client may take to send one request's headers and body"},
    {"max-event-streams", "FITD_MAX_EVENT_STREAMS", OPT_INT, OFF(max_event_streams), 0, 1, 100000,
     "64", "open job event streams (SSE); more get 503"},
    {"log-level", "FITD_LOG_LEVEL", OPT_LEVEL, OFF(log_level), 0, 0, 0, "info",
     "debug, info, warn or error"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

enum { OPT_HELP = 1000, OPT_VERSION, OPT_PRINT_CONFIG };

void config_defaults(srv_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    snprintf(cfg->db_path, sizeof cfg->db_path, "./var/fitd.db");
    cfg->workers = par_cores();
    cfg->http_threads = 4;
    cfg->connection_limit = 1024;
    cfg->connection_timeout_s = 30;
    cfg->shutdown_timeout_s = 10;
    cfg->crash_limit = 3;
    cfg->max_body_json = (size_t)1 << 20;
    cfg->max_body_dataset = (size_t)512 << 20;
    cfg->max_queued = 10000;
    cfg->max_epochs = 10000;
    cfg->max_layers = 64;
    cfg->max_units = 65536;
    cfg->max_input_dim = 1000000;
    cfg->max_params = 50000000;
    cfg->max_batch_size = 65536;
    cfg->max_job_memory = (size_t)4 << 30;
    cfg->request_timeout_s = 300;
    cfg->max_event_streams = 64;
    cfg->log_level = LOG_INFO;
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT". */
static int parse_listen(srv_config *cfg, const char *v, char *why, size_t why_len)
{
    const char *colon = strrchr(v, ':');
    const char *host = v;
    size_t host_len;
    if (!colon) {
        snprintf(why, why_len, "expected HOST:PORT");
        return -1;
    }
    host_len = (size_t)(colon - v);
    if (host_len >= 2 && v[0] == '[' && v[host_len - 1] == ']') {
        host = v + 1;
        host_len -= 2;
    }
    if (host_len == 0) {
        host = "127.0.0.1";
        host_len = strlen(host);
    }
    if (host_len >= sizeof cfg->listen_host) {
        snprintf(why, why_len, "host too long");
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(why, why_len, "port must be 0..65535");
        return -1;
    }
    memcpy(cfg->listen_host, host, host_len);
    cfg->listen_host[host_len] = 0;
    cfg->listen_port = (uint16_t)port;
    return 0;
}

/* An integer with an optional K/M/G suffix (powers of 1024, "KiB"/"KB" also). */
static int parse_int(const char *v, int allow_suffix, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v) return -1;
    int64_t mul = 1;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mul = INT64_C(1) << 10; break;
        case 'm': case 'M': mul = INT64_C(1) << 20; break;
        case 'g': case 'G': mul = INT64_C(1) << 30; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
    }
    if (*end) return -1;
    if (n < 0 || (mul > 1 && n > INT64_MAX / mul)) return -1;
    *out = (int64_t)n * mul;
    return 0;
}

/* Apply one value; on failure writes a message naming `source` to err. */
static int apply(srv_config *cfg, const opt_def *o, const char *v, const char *source, FILE *err)
{
    char why[128] = "";
    char *base = (char *)cfg;
    int64_t n = 0;
    switch (o->kind) {
    case OPT_LISTEN:
        if (parse_listen(cfg, v, why, sizeof why) == 0) return 0;
        break;
    case OPT_STR:
        if (strlen(v) < o->size) {
            snprintf(base + o->offset, o->size, "%s", v);
            return 0;
        }
        snprintf(why, sizeof why, "longer than %zu characters", o->size - 1);
        break;
    case OPT_DAYS: {
        char *end = NULL;
        errno = 0;
        double d = strtod(v, &end);
        if (!errno && end != v && !*end && d >= (double)o->min && d <= (double)o->max) {
            *(double *)(void *)(base + o->offset) = d;
            return 0;
        }
        snprintf(why, sizeof why, "expected a number of days from %lld to %lld (fractions allowed)",
                 (long long)o->min, (long long)o->max);
        break;
    }
    case OPT_LEVEL:
        if (log_level_from_name(v, (log_level *)(void *)(base + o->offset)) == 0) return 0;
        snprintf(why, sizeof why, "expected debug, info, warn or error");
        break;
    case OPT_INT:
    case OPT_I64:
    case OPT_SIZE:
        if (parse_int(v, o->kind == OPT_SIZE, &n) != 0) {
            snprintf(why, sizeof why, o->kind == OPT_SIZE ? "expected a byte count such as 1048576 or 1MiB"
                                                          : "expected an integer");
            break;
        }
        if (n < o->min || n > o->max) {
            snprintf(why, sizeof why, "must be between %lld and %lld", (long long)o->min,
                     (long long)o->max);
            break;
        }
        if (o->kind == OPT_INT) *(int *)(void *)(base + o->offset) = (int)n;
        else if (o->kind == OPT_I64) *(int64_t *)(void *)(base + o->offset) = n;
        else *(size_t *)(void *)(base + o->offset) = (size_t)n;
        return 0;
    }
    fprintf(err, "fitd: invalid value '%s' for %s: %s\n", v, source, why);
    return -1;
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: fitd [serve] [flags]      run the HTTP service (the default command)\n"
            "       fitd train SPEC.json --train DATA [...]   train in-process (fitd train --help)\n"
            "       fitd migrate [--db PATH]     apply the database migrations and exit\n"
            "       fitd backup DEST [--db PATH] online copy of the database to the new file DEST\n"
            "       fitd healthcheck [--url URL] ask a running fitd's /healthz (exit 0/1)\n"
            "       fitd version | --help | --version | serve --print-config\n\n"
            "flags (each has an environment twin; a flag wins over its variable):\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s", opts[i].flag);
        fprintf(out, "  %-22s %-26s %s [default: %s]\n", left, opts[i].env, opts[i].help,
                 opts[i].dflt);
    }
    fprintf(out, "  %-22s %-26s %s\n", "--help", "", "print this help and exit");
    fprintf(out, "  %-22s %-26s %s\n", "--version", "", "print versions and exit");
    fprintf(out, "  %-22s %-26s %s\n", "--print-config", "",
            "print the effective configuration (key = value) and exit");
    fprintf(out, "\nsizes accept K, M, G suffixes (powers of 1024), e.g. 64MiB.\n");
}

void config_version(FILE *out)
{
    const char *core = nn_blas_core();
    fprintf(out, "fitd %s (git %s)\n", FITD_VERSION, FITD_GIT_REV);
    fprintf(out, "libmicrohttpd %s\n", MHD_get_version());
    fprintf(out, "jansson %s\n", JANSSON_VERSION);
    fprintf(out, "sqlite %s\n", sqlite3_libversion());
    fprintf(out, "zlib %s\n", zlibVersion());
    fprintf(out, "openblas core %s\n", core && core[0] ? core : "unknown");
}

int config_parse(srv_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[N_OPTS + 4];
    for (size_t i = 0; i < N_OPTS; i++)
        longopts[i] = (struct option){opts[i].flag, required_argument, NULL, (int)i};
    longopts[N_OPTS] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[N_OPTS + 1] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    longopts[N_OPTS + 2] = (struct option){"print-config", no_argument, NULL, OPT_PRINT_CONFIG};
    longopts[N_OPTS + 3] = (struct option){NULL, 0, NULL, 0};
    int print_config = 0;

    /* The environment first, so that flags override it. */
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && apply(cfg, &opts[i], v, opts[i].env, err) != 0) return 2;
    }
    optind = 1;
    opterr = 0;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, ":", longopts, &idx);
        if (c == -1) break;
        if (c == OPT_HELP) {
            config_usage(out);
            return 1;
        }
        if (c == OPT_VERSION) {
            config_version(out);
            return 1;
        }
        if (c == OPT_PRINT_CONFIG) {
            print_config = 1; /* after every flag: it shows the effective values */
            continue;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1] ? argv[optind - 1] : "?";
            if (c == ':') fprintf(err, "fitd: option %s needs a value\n", bad);
            else fprintf(err, "fitd: unknown option %s (see fitd --help)\n", bad);
            return 2;
        }
        char source[64];
        snprintf(source, sizeof source, "--%s", opts[c].flag);
        if (apply(cfg, &opts[c], optarg, source, err) != 0) return 2;
    }
    if (optind < argc) {
        fprintf(err, "fitd: unexpected argument '%s' (see fitd --help)\n", argv[optind]);
        return 2;
    }
    if (print_config) {
        config_print(cfg, out);
        return 1;
    }
    return 0;
}

void config_print(const srv_config *cfg, FILE *out)
{
    const char *base = (const char *)cfg;
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *o = &opts[i];
        const void *p = base + o->offset;
        fprintf(out, "%s = ", o->flag);
        switch (o->kind) {
        case OPT_LISTEN:
            if (strchr(cfg->listen_host, ':')) fprintf(out, "[%s]:%u", cfg->listen_host, cfg->listen_port);
            else fprintf(out, "%s:%u", cfg->listen_host, cfg->listen_port);
            break;
        /* Strings are paths and names only: file contents (tokens, keys) never. */
        case OPT_STR: fprintf(out, "%s", (const char *)p); break;
        case OPT_INT: fprintf(out, "%d", *(const int *)p); break;
        case OPT_I64: fprintf(out, "%lld", (long long)*(const int64_t *)p); break;
        case OPT_SIZE: fprintf(out, "%zu", *(const size_t *)p); break;
        case OPT_LEVEL: fprintf(out, "%s", log_level_name(*(const log_level *)p)); break;
        case OPT_DAYS: fprintf(out, "%g", *(const double *)p); break;
        }
        fputc('\n', out);
    }
}
