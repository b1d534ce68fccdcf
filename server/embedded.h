/*
 * embedded.h — files compiled into the binary (the SQL migrations and
 * api-docs/openapi.yaml), generated at build time by server/embed.sh.
 * The table ends with a {NULL, NULL, 0} entry; data is NUL-terminated.
 */
#ifndef FITD_EMBEDDED_H
#define FITD_EMBEDDED_H
#include <stddef.h>

typedef struct srv_embedded_file {
    const char *path; /* as given to the build, e.g. "migrations/0001_init.sql" */
    const char *data;
    size_t len;
} srv_embedded_file;

extern const srv_embedded_file srv_embedded[];

/* The entry for `path`, or NULL. */
const srv_embedded_file *srv_embedded_find(const char *path);

#endif
