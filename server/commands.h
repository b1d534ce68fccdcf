/*
 * commands.h — fitd's subcommands. main.c parses the command word and hands the
 * remaining arguments over; each command returns the process exit status.
 */
#ifndef FITD_COMMANDS_H
#define FITD_COMMANDS_H

/* fitd train SPEC.json --train DATA [...]: train in-process, one JSON line per epoch. */
int cmd_train(int argc, char **argv);

/* fitd healthcheck [--url URL] [--timeout S]: GET a running fitd's /healthz (default
 * URL from FITD_LISTEN); 0 on HTTP 200, 1 otherwise, 2 on bad usage. */
int cmd_healthcheck(int argc, char **argv);

/* fitd version: what fitd --version prints (config_version). fitd migrate [--db]:
 * apply migrations, print the schema version, exit 0 (1 on failure). fitd backup
 * DEST [--db]: online backup of the database to the new file DEST (server/cmd_ops.c). */
int cmd_version(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_backup(int argc, char **argv);

#endif
