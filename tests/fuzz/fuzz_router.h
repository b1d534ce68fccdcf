/* fuzz_router.h — the request router and the checks every route shares, on the
 * whole dispatch of an in-process server (fuzz_server.c): route matching with
 * {id} capture, 404/405/415/413, query parameters (limit, cursor, name, label,
 * format), the handlers' id lookups.
 *
 * Input: byte 0 picks the method; the rest is split at '\n': the first line is
 * the request target (path and query; bytes outside 0x21..0x7e are sent
 * %-encoded, so MHD hands the router any byte, NUL cuts included), each further
 * line "Name: value" is a header (at most 16). Headers that frame the message
 * (Content-Length, Transfer-Encoding, Connection, Expect) are dropped: the
 * requests carry no body, and the target must not wait on a body it never sends.
 *
 * Property: every reply is a 2xx, 3xx or 4xx (never a 5xx, a dropped connection
 * or a hang). */
#ifndef FITD_FUZZ_ROUTER_H
#define FITD_FUZZ_ROUTER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "fuzz_server.h"

static const char *const router_methods[] = {"GET",   "POST", "PUT",     "DELETE",
                                             "PATCH", "HEAD", "OPTIONS", "TRACE"};

static int framing_header(const uint8_t *s, size_t n)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection",
                                        "expect", "host"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t k = strlen(names[i]);
        if (n >= k && strncasecmp((const char *)s, names[i], k) == 0) return 1;
    }
    return 0;
}

int fuzz_router(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    /* Worst case: every target byte becomes 3 bytes. */
    size_t cap = 3 * size + 256;
    char *req = malloc(cap), *body = NULL;
    if (!req) return 0;
    size_t len = (size_t)snprintf(req, cap, "%s ", router_methods[data[0] & 7]);
    size_t i = 1, start = len;
    for (; i < size && data[i] != '\n'; i++) {
        unsigned c = data[i];
        if (c <= 0x20 || c >= 0x7f) len += (size_t)snprintf(req + len, cap - len, "%%%02X", c);
        else req[len++] = (char)c;
    }
    if (len == start) req[len++] = '/';
    len += (size_t)snprintf(req + len, cap - len, " HTTP/1.1\r\nHost: fuzz\r\n");
    int n_headers = 0;
    while (i < size && n_headers < 16) {
        size_t b = ++i; /* skip the '\n' */
        while (i < size && data[i] != '\n') i++;
        size_t n = i - b;
        const uint8_t *h = data + b;
        const uint8_t *colon = memchr(h, ':', n);
        if (!colon || colon == h || framing_header(h, n)) continue;
        int ok = 1;
        for (const uint8_t *q = h; q < colon && ok; q++) ok = *q > 0x20 && *q < 0x7f;
        if (!ok) continue;
        for (size_t k = 0; k < n; k++) {
            unsigned char c = h[k];
            if (c == '\r' || c == 0 || (c < 0x20 && c != '\t')) c = ' ';
            req[len++] = (char)c;
        }
        req[len++] = '\r';
        req[len++] = '\n';
        n_headers++;
    }
    len += (size_t)snprintf(req + len, cap - len, "Connection: close\r\n\r\n");
    int status = fuzz_http(req, len, &body);
    int bad = 0;
    if (status < 200 || status >= 500) {
        fprintf(stderr, "fuzz_router: status %d for %.*s: %s\n", status, (int)(len > 300 ? 300 : len),
                req, body ? body : "");
        bad = 1;
    }
    free(body);
    free(req);
    return bad ? -1 : 0;
}

FUZZ_ENTRY(fuzz_router)

#endif
