/* auth.c — bearer tokens, tenants, the loopback rule and TLS files (see auth.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <nettle/sha2.h>

#include "auth.h"
#include "http.h"
#include "store.h"

#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 4096
#define AUTH_TENANT_MAX STORE_TENANT_MAX /* 63 characters + NUL fit the store's column */
/* Larger PEM files are not certificates we want to read. */
#define AUTH_PEM_MAX ((size_t)1 << 20)

typedef struct auth_entry {
    uint8_t digest[SHA256_DIGEST_SIZE];
    char tenant[AUTH_TENANT_MAX];
} auth_entry;

struct auth_table {
    auth_entry *v;
    size_t n, cap;
    size_t n_tenants;
};

static void sha256_of(const char *s, size_t len, uint8_t out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)s);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    explicit_bzero(&ctx, sizeof ctx);
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token_ok(const char *s, size_t len)
{
    size_t i = 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
            break;
    }
    if (i == 0) return 0;
    while (i < len && s[i] == '=') i++;
    return i == len;
}

static int tenant_ok(const char *s, size_t len)
{
    if (len == 0 || len >= AUTH_TENANT_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void auth_free(auth_table *t)
{
    if (!t) return;
    if (t->v) explicit_bzero(t->v, t->cap * sizeof *t->v);
    free(t->v);
    free(t);
}

size_t auth_token_count(const auth_table *t) { return t ? t->n : 0; }
size_t auth_tenant_count(const auth_table *t) { return t ? t->n_tenants : 0; }

/* Split one line into at most 3 blank-separated fields, stopping at a field that
 * starts with '#'. Returns the number of fields found (3 means "too many"). */
static int split_fields(char *line, char *field[3], size_t flen[3])
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') return n;
        if (n == 3) return n;
        field[n] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        flen[n] = (size_t)(p - field[n]);
        n++;
    }
}

/* Validate and add one "TOKEN TENANT" line. Returns 0, or -1 with the reason. */
static int add_line(auth_table *t, char *line, char *why, size_t why_len, size_t *dup_of,
                    size_t *line_of, size_t lineno)
{
    char *f[3] = {NULL, NULL, NULL};
    size_t fl[3] = {0, 0, 0};
    int n = split_fields(line, f, fl);
    if (n == 0) return 0; /* blank or comment */
    if (n != 2) {
        snprintf(why, why_len, "expected `TOKEN TENANT` (2 fields), found %s",
                 n == 1 ? "1 field" : "more than 2");
        return -1;
    }
    if (fl[0] < AUTH_TOKEN_MIN || fl[0] > AUTH_TOKEN_MAX) {
        snprintf(why, why_len,
                 "the token must have at least %d characters (and at most %d); it has %zu",
                 AUTH_TOKEN_MIN, AUTH_TOKEN_MAX, fl[0]);
        return -1;
    }
    if (!b64token_ok(f[0], fl[0])) {
        snprintf(why, why_len,
                 "the token may hold only A-Z a-z 0-9 - . _ ~ + / (and trailing =)");
        return -1;
    }
    if (!tenant_ok(f[1], fl[1])) {
        snprintf(why, why_len, "the tenant must be 1 to %d characters of A-Z a-z 0-9 . _ -",
                 AUTH_TENANT_MAX - 1);
        return -1;
    }
    auth_entry e;
    memset(&e, 0, sizeof e);
    sha256_of(f[0], fl[0], e.digest);
    memcpy(e.tenant, f[1], fl[1]);
    int new_tenant = 1;
    for (size_t i = 0; i < t->n; i++) {
        if (memcmp(t->v[i].digest, e.digest, sizeof e.digest) == 0) {
            *dup_of = line_of[i];
            snprintf(why, why_len, "this token already appears on line %zu", *dup_of);
            explicit_bzero(&e, sizeof e);
            return -1;
        }
        if (strcmp(t->v[i].tenant, e.tenant) == 0) new_tenant = 0;
    }
    t->v[t->n] = e;
    line_of[t->n] = lineno;
    t->n++;
    t->n_tenants += (size_t)new_tenant;
    explicit_bzero(&e, sizeof e);
    return 0;
}

auth_table *auth_load(const char *path, char *errbuf, size_t errlen)
{
    FILE *f = NULL;
    char *line = NULL;
    size_t line_cap = 0, *line_of = NULL, lineno = 0, dup_of = 0;
    auth_table *t = NULL;
    char why[160] = "";
    int ok = 0;

    f = fopen(path, "r");
    if (!f) {
        if (errbuf) snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    t = calloc(1, sizeof *t);
    if (!t) goto oom;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &line_cap, f);
        if (got < 0) {
            if (ferror(f)) {
                if (errbuf)
                    snprintf(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (strlen(line) != len) {
            if (errbuf) snprintf(errbuf, errlen, "%s:%zu: a NUL byte in the line", path, lineno);
            goto out;
        }
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 16;
            auth_entry *nv = calloc(ncap, sizeof *nv);
            size_t *nl = realloc(line_of, ncap * sizeof *nl);
            if (!nv || !nl) {
                free(nv);
                if (nl) line_of = nl;
                goto oom;
            }
            line_of = nl;
            if (t->v) {
                memcpy(nv, t->v, t->n * sizeof *nv);
                explicit_bzero(t->v, t->cap * sizeof *t->v);
                free(t->v);
            }
            t->v = nv;
            t->cap = ncap;
        }
        if (add_line(t, line, why, sizeof why, &dup_of, line_of, lineno) != 0) {
            if (errbuf) snprintf(errbuf, errlen, "%s:%zu: %s", path, lineno, why);
            goto out;
        }
    }
    if (t->n == 0) {
        if (errbuf)
            snprintf(errbuf, errlen, "%s: no tokens (every line is blank or a comment)", path);
        goto out;
    }
    ok = 1;
    goto out;
oom:
    if (errbuf) snprintf(errbuf, errlen, "%s: out of memory", path);
out:
    if (line) explicit_bzero(line, line_cap);
    free(line);
    free(line_of);
    if (f) fclose(f);
    if (!ok) {
        auth_free(t);
        t = NULL;
    }
    return t;
}

auth_result auth_check(const auth_table *t, const char *authorization, const char **tenant)
{
    *tenant = NULL;
    if (!authorization) return AUTH_MISSING;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t') p++;
    /* The scheme is case-insensitive (RFC 9110 section 11.1). */
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] && p[6] != ' ' && p[6] != '\t'))
        return AUTH_BAD_SCHEME;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX || !b64token_ok(p, len))
        return AUTH_INVALID_TOKEN; /* cannot be in the table: nothing to compare */

    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_of(p, len, d);
    /* Compare with every entry, without a branch on the data: `hit` and `found`
     * are updated through masks, so the loop's time is the same whichever entry
     * (if any) matches. Tokens are unique, so at most one entry matches. */
    size_t found = 0;
    unsigned hit = 0;
    for (size_t i = 0; i < t->n; i++) {
        unsigned diff = 0;
        for (size_t k = 0; k < SHA256_DIGEST_SIZE; k++)
            diff |= (unsigned)(d[k] ^ t->v[i].digest[k]);
        unsigned eq = ((diff - 1u) >> 8) & 1u; /* diff is 0..255: 1 iff diff == 0 */
        size_t mask = (size_t)0 - (size_t)eq;
        found = (found & ~mask) | (i & mask);
        hit |= eq;
    }
    explicit_bzero(d, sizeof d);
    if (!hit) return AUTH_INVALID_TOKEN;
    *tenant = t->v[found].tenant;
    return AUTH_OK;
}

int auth_http_authenticate(http_req *req, void *auth_ctx)
{
    const auth_table *t = auth_ctx;
    const char *path = http_req_path(req);
    if (!t || strncmp(path, "/v1/", 4) != 0) return 0;
    const char *tenant = NULL;
    auth_result r = auth_check(t, http_req_header(req, "Authorization"), &tenant);
    if (r == AUTH_OK) {
        http_req_set_tenant(req, tenant);
        return 0;
    }
    if (r == AUTH_INVALID_TOKEN)
        http_reply_header(req, "WWW-Authenticate",
                          "Bearer realm=\"fitd\", error=\"invalid_token\"");
    else
        http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"fitd\"");
    switch (r) {
    case AUTH_MISSING:
        http_reply_problem(req, 401, "this route needs an Authorization: Bearer <token> header");
        break;
    case AUTH_BAD_SCHEME:
        http_reply_problem(req, 401, "the Authorization header must use the Bearer scheme");
        break;
    default:
        http_reply_problem(req, 401, "the bearer token is not valid");
        break;
    }
    return -1;
}

int auth_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

/* Read a PEM file into a NUL-terminated malloc'ed buffer. */
static char *read_pem(const char *flag, const char *path, size_t *len, char *errbuf,
                      size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat sb;
    if (!f) {
        snprintf(errbuf, errlen, "%s %s: cannot open: %s", flag, path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (size_t)sb.st_size > AUTH_PEM_MAX) {
        snprintf(errbuf, errlen, "%s %s: not a regular, non-empty file of at most %zu bytes",
                 flag, path, AUTH_PEM_MAX);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n + 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        snprintf(errbuf, errlen, "%s %s: cannot read: %s", flag, path,
                 buf ? strerror(errno ? errno : EIO) : "out of memory");
        if (buf) explicit_bzero(buf, n + 1);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (strlen(buf) != n || !strstr(buf, "-----BEGIN ")) {
        snprintf(errbuf, errlen, "%s %s: not a PEM file (no -----BEGIN line)", flag, path);
        explicit_bzero(buf, n + 1);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int auth_setup_load(auth_setup *s, const srv_config *cfg, char *errbuf, size_t errlen)
{
    char why[600] = "";
    size_t cert_len = 0;
    memset(s, 0, sizeof *s);
    if (cfg->auth_tokens[0]) {
        s->tokens = auth_load(cfg->auth_tokens, why, sizeof why);
        if (!s->tokens) {
            snprintf(errbuf, errlen, "--auth-tokens %s", why);
            goto fail;
        }
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(errbuf, errlen, "%s is given without %s: HTTPS needs both",
                 cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                 cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        goto fail;
    }
    if (cfg->tls_cert[0]) {
        s->tls_cert = read_pem("--tls-cert", cfg->tls_cert, &cert_len, errbuf, errlen);
        if (!s->tls_cert) goto fail;
        s->tls_key = read_pem("--tls-key", cfg->tls_key, &s->tls_key_len, errbuf, errlen);
        if (!s->tls_key) goto fail;
    }
    return 0;
fail:
    auth_setup_free(s);
    return -1;
}

void auth_setup_free(auth_setup *s)
{
    if (!s) return;
    auth_free(s->tokens);
    free(s->tls_cert);
    if (s->tls_key) explicit_bzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    memset(s, 0, sizeof *s);
}
