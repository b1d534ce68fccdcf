/*
 * ops.h — operations support shared by the subcommands (cmd_ops.c), the admin
 * routes (api_admin.c) and serve: folders for files, backup names, and the
 * retention timer (--keep-finished-jobs).
 */
#ifndef FITD_OPS_H
#define FITD_OPS_H

#include <stddef.h>

#include "config.h"

/* mkdir -p of the folder that will hold `path` (0755). 0 or -1 with errno. */
int ops_make_parent_dirs(const char *path);

/* "DIR/fitd-YYYYMMDDTHHMMSSZ-XXXXXXXX.db" (UTC time and 32 random bits) into buf,
 * and the time as RFC 3339 into created_at (>= 32 bytes). 0, or -1 if it does not
 * fit or randomness is unavailable. */
int ops_backup_name(const char *dir, char *buf, size_t len, char *created_at);

/* Delete what backups into `dir` that died half-way (fitd killed during one) left:
 * "fitd-*.db.tmp" files no live backup holds (store_backup keeps a flock on its
 * temporary file, so another fitd's backup in progress is left alone) and their
 * SQLite journals. Returns how many files it removed. */
int ops_backup_leftovers(const char *dir);

/* The retention timer: a thread with its own store connection that deletes
 * finished jobs older than cfg->keep_finished_days (store_jobs_prune) at start and
 * then every hour (the hidden FITD_TEST_RETENTION_INTERVAL_MS shortens the period
 * for tests). Returns NULL when retention is off (keep_finished_days == 0) or the
 * thread could not start (logged). cfg must outlive the timer. */
typedef struct ops_retention ops_retention;
ops_retention *ops_retention_start(const srv_config *cfg);
/* Stop and join the thread (an in-progress prune finishes first). NULL allowed. */
void ops_retention_stop(ops_retention *r);

#endif
