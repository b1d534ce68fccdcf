/*
 * buf.c — the growable text buffer (buf.h).
 */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_add(buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        buf_add(b, tmp, (size_t)n);
        return;
    }
    /* Too long for the stack: format again into a heap copy. */
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_add(b, big, (size_t)n);
    free(big);
}

void buf_json_str(buf *b, const char *s)
{
    if (!s) {
        BUF_LIT(b, "null");
        return;
    }
    BUF_LIT(b, "\"");
    const char *run = s; /* start of the bytes not yet appended */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_add(b, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"': BUF_LIT(b, "\\\""); break;
        case '\\': BUF_LIT(b, "\\\\"); break;
        case '\b': BUF_LIT(b, "\\b"); break;
        case '\f': BUF_LIT(b, "\\f"); break;
        case '\n': BUF_LIT(b, "\\n"); break;
        case '\r': BUF_LIT(b, "\\r"); break;
        case '\t': BUF_LIT(b, "\\t"); break;
        default: buf_printf(b, "\\u%04X", c); /* Jansson's spelling: upper-case hex */
        }
    }
    buf_add(b, run, strlen(run));
    BUF_LIT(b, "\"");
}

void buf_json_real(buf *b, double v)
{
    if (!isfinite(v)) {
        BUF_LIT(b, "null");
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t - 2, "%.9g", v);
    if (n < 0 || (size_t)n >= sizeof t - 2) {
        b->failed = 1;
        return;
    }
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    /* As Jansson: no '+' and no leading zeros in the exponent (1e-05 -> 1e-5). */
    char *e = strchr(t, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-') start++;
        while (*end == '0') end++;
        memmove(start, end, (size_t)(t + n - end) + 1);
        n -= (int)(end - start);
    }
    buf_add(b, t, (size_t)n);
}

void buf_json_floats(buf *b, const float *v, size_t n)
{
    BUF_LIT(b, "[");
    for (size_t i = 0; i < n && !b->failed; i++) {
        if (i) BUF_LIT(b, ",");
        buf_json_real(b, v[i]);
    }
    BUF_LIT(b, "]");
}

void buf_free(buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
