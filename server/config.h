/*
 * config.h — fitd serve's settings: command-line flags, each with an environment
 * twin (FITD_*), parsed with getopt_long. Flags win over the environment, the
 * environment over the defaults. `fitd --help` prints every flag, its twin and
 * its default (config_usage).
 *
 * The struct is filled once in main before any thread starts and read-only
 * afterwards, so every thread may read it without locks (http handlers reach it
 * through http_req_app()).
 */
#ifndef FITD_CONFIG_H
#define FITD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

typedef struct srv_config {
    char listen_host[64];     /* --listen HOST:PORT  [127.0.0.1:8080] */
    uint16_t listen_port;     /* 0 = ephemeral */
    char db_path[1024];       /* --db [./var/fitd.db] */
    char port_file[1024];     /* --port-file: write the bound port there ("" = off) */
    char auth_tokens[1024];   /* --auth-tokens FILE: "TOKEN TENANT" lines ("" = no auth) */
    char tls_cert[1024];      /* --tls-cert FILE: PEM certificate chain ("" = plain HTTP) */
    char tls_key[1024];       /* --tls-key FILE: PEM private key (with --tls-cert) */
    char admin_tenant[64];    /* --admin-tenant: with auth, the tenant allowed /v1/admin ("" = none) */
    char backup_dir[1024];    /* --backup-dir: where POST /v1/admin/backup writes ("" = off) */
    double keep_finished_days; /* --keep-finished-jobs DAYS: prune older finished jobs (0 = off) */
    int workers;              /* --workers [number of cores] */
    int http_threads;         /* --http-threads [4] */
    int connection_limit;     /* --max-connections [1024] */
    int connection_timeout_s; /* --connection-timeout [30] */
    int shutdown_timeout_s;   /* --shutdown-timeout [10]: SIGTERM to exit, at most */
    int crash_limit;          /* --crash-limit [3]: deaths under a job before it fails */
    size_t max_body_json;     /* --max-body-json bytes [1 MiB]: job specs, predict, JSON */
    size_t max_body_dataset;  /* --max-body-dataset bytes [512 MiB]: dataset uploads */
    int max_queued;           /* --max-queued [10000]: queued jobs before POST /v1/jobs gets 429 */
    int max_epochs;           /* --max-epochs [10000] */
    int max_layers;           /* --max-layers [64] */
    int max_units;            /* --max-units [65536] per layer */
    int max_input_dim;        /* --max-input-dim [1,000,000] features */
    int64_t max_params;       /* --max-params [50,000,000] */
    int max_batch_size;       /* --max-batch-size [65536] */
    size_t max_job_memory;    /* --max-job-memory bytes [4 GiB]: estimated training memory */
    int request_timeout_s;    /* --request-timeout [300]: to receive one request, in total */
    int max_event_streams;    /* --max-event-streams [64]: open GET /v1/jobs/{id}/events streams */
    log_level log_level;      /* --log-level debug|info|warn|error [info] */
} srv_config;

/* The defaults (workers = online cores). */
void config_defaults(srv_config *cfg);

/* Parse argv (after the command word; argv[0] is the program/command name) and
 * the FITD_* environment into *cfg (start from config_defaults). Returns 0 to run,
 * 1 when --help or --version was handled (output on `out`), 2 on a bad flag or
 * value (a message on `err`): main exits with that code. */
int config_parse(srv_config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Print the usage text: every flag, its env twin and its default. */
void config_usage(FILE *out);

/* Print the effective configuration, one `key = value` line per flag (key = the
 * flag without "--"), as `fitd serve --print-config` does. Only paths and values
 * are printed, never the contents of the token or key files. */
void config_print(const srv_config *cfg, FILE *out);

/* Print version, git revision and the library versions. */
void config_version(FILE *out);

#endif
