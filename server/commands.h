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

#endif
