/*
 * auth.h — who may call fitd, and over what: bearer tokens mapped to tenants
 * (--auth-tokens), the loopback rule for unauthenticated servers, and the TLS
 * certificate and key read at start-up (--tls-cert / --tls-key).
 *
 * The token file. One `TOKEN TENANT` pair per line, separated by spaces or tabs.
 * A line whose first non-blank character is `#` is a comment, blank lines are
 * ignored, and `#` after the two fields starts a trailing comment. A TOKEN has
 * 16 to 4096 characters from RFC 6750's b64token set (A-Z a-z 0-9 - . _ ~ + /,
 * then optional trailing =); a TENANT has 1 to 63 characters of A-Z a-z 0-9 . _ -.
 * Several tokens may name one tenant (rotation); a token may appear once. Any
 * other line makes auth_load fail naming the file and line — never the token.
 *
 * What it does not: store anything per tenant (the store's tenant column does, and
 * the api_* handlers compare it with http_req_tenant), or rate-limit guesses.
 *
 * Secrets. The table keeps SHA-256 digests of the tokens, not the tokens. A
 * presented token is hashed and compared with EVERY digest using a loop without
 * data-dependent branches, so the time taken does not depend on which token
 * matched, on how much of one matched, or on the stored tokens' lengths. Tokens
 * are never logged; error messages name line numbers only.
 *
 * Threads: auth_load and auth_setup_load run once in main before threads start;
 * afterwards the table is read-only and auth_check / auth_http_authenticate may
 * run on any number of threads at once.
 */
#ifndef FITD_AUTH_H
#define FITD_AUTH_H

#include <stddef.h>

#include "config.h"
#include "http.h"

typedef struct auth_table auth_table;

/* Read and validate the token file at `path`. Returns the table (free with
 * auth_free), or NULL with "PATH:LINE: reason" (or "PATH: reason") in errbuf: an
 * unreadable file, a malformed line, a duplicate token, or no token at all. */
auth_table *auth_load(const char *path, char *errbuf, size_t errlen);
/* Release the table (digests are wiped). NULL allowed. */
void auth_free(auth_table *t);
/* Tokens and distinct tenants in the table. */
size_t auth_token_count(const auth_table *t);
size_t auth_tenant_count(const auth_table *t);

typedef enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,      /* no Authorization header */
    AUTH_BAD_SCHEME,   /* an Authorization header that is not `Bearer <token>` */
    AUTH_INVALID_TOKEN /* a bearer token that is empty, malformed or unknown */
} auth_result;

/* Check an Authorization header value (NULL = absent). On AUTH_OK *tenant
 * receives the token's tenant (borrowed from the table). Constant time in the
 * table's contents (see above). */
auth_result auth_check(const auth_table *t, const char *authorization, const char **tenant);

/* The http_config.authenticate hook (auth_ctx = the auth_table). Requests whose
 * path starts with "/v1/" need a valid bearer token: it sets the request's
 * tenant and returns 0, or replies 401 problem+json with
 * `WWW-Authenticate: Bearer realm="fitd"` (plus `error="invalid_token"` when a
 * bearer token was given) and returns -1. Other paths (/healthz) pass. */
int auth_http_authenticate(http_req *req, void *auth_ctx);

/* 1 when `host` (a numeric address, as in --listen) is a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.x.y.z), else 0. */
int auth_host_is_loopback(const char *host);

/* What main needs from the config before it starts serving. */
typedef struct auth_setup {
    auth_table *tokens; /* NULL without --auth-tokens */
    char *tls_cert;     /* PEM text, NUL-terminated; NULL without TLS */
    char *tls_key;      /* PEM text, NUL-terminated; wiped by auth_setup_free */
    size_t tls_key_len;
} auth_setup;

/* Load cfg->auth_tokens and cfg->tls_cert / tls_key (both or neither). Returns 0,
 * or -1 with a message naming the flag and the file in errbuf (then *s holds
 * nothing). */
int auth_setup_load(auth_setup *s, const srv_config *cfg, char *errbuf, size_t errlen);
/* Release everything (the key text is wiped first). NULL allowed. */
void auth_setup_free(auth_setup *s);

#endif
