/* safetensors.c — encode and decode the safetensors format (F32 only).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON header, then
 * the tensor data. The header is one object mapping tensor names to
 *   {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}
 * (offsets relative to the start of the data section) plus an optional
 * "__metadata__" object of string values. We pad the header with spaces to a
 * multiple of 8 and write the tensors contiguously in the order given.
 *
 * The decoder has its own small JSON reader because core/ may not use a JSON
 * library. It accepts exactly this grammar: objects, strings (all JSON escapes,
 * \uXXXX with surrogate pairs; \u0000 rejected), non-negative integers without
 * leading zeros, and arrays of them. Anything else (floats, negatives, booleans,
 * null, unknown keys, duplicates, extra nesting) is NN_ERR_PARSE. Because the
 * grammar is fixed, nesting is bounded at depth 3 by construction and the reader
 * does not recurse. Offsets are checked against the buffer, shapes against
 * offsets, and tensors may not overlap; with NN_ST_EXACT they must cover the data
 * section exactly, as the format requires (a byte that belongs to no tensor would
 * let a file carry anything else besides).
 *
 * Decoded tensors' data pointers point into the caller's buffer at arbitrary
 * byte offsets: they may be unaligned, so readers must memcpy the floats out
 * (and the values are little-endian). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB, as the reference reader */

/* ---------------------------------------------------------------- encode */

typedef struct st_buf {
    char *s;
    size_t len, cap;
    int oom;
} st_buf;

static void sb_put(st_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 256;
        while (n > ncap - b->len) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            ncap *= 2;
        }
        char *ns = realloc(b->s, ncap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

static void sb_puts(st_buf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_u64(st_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped; other bytes
 * (UTF-8) as they are. */
static void sb_json_string(st_buf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Elements of a shape, or 0 with *ok = 0 on a negative dimension or overflow. */
static uint64_t st_count(const int64_t *shape, int ndim, int *ok)
{
    uint64_t c = 1;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && c > (UINT64_MAX / 4) / (uint64_t)shape[i])) {
            *ok = 0;
            return 0;
        }
        c *= (uint64_t)shape[i];
    }
    return c;
}

/* The tensors' data must already be F32 little-endian (host floats on a
 * little-endian machine); it is copied byte for byte. Names must be unique and
 * not "__metadata__". *buf is malloc'ed; the caller frees it. */
nn_status nn_st_encode(const nn_st_tensor *t, int n, const nn_kv *meta, int n_meta, void **buf,
                       size_t *len, nn_error *err)
{
    nn_status rc = NN_OK;
    st_buf h = {0};
    unsigned char *out = NULL;
    uint64_t data_len = 0;
    if (!buf || !len || n < 0 || n_meta < 0 || (n && !t) || (n_meta && !meta))
        return nn_error_set(err, NN_ERR_INVALID, "nn_st_encode: bad arguments");
    *buf = NULL;
    *len = 0;
    for (int i = 0; i < n; i++) {
        int ok;
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0)
            return nn_error_set(err, NN_ERR_INVALID, "safetensors: tensor %d has no valid name", i);
        for (int k = 0; k < i; k++)
            if (strcmp(t[k].name, t[i].name) == 0)
                return nn_error_set(err, NN_ERR_INVALID, "safetensors: duplicate tensor name '%.64s'",
                                    t[i].name);
        if (t[i].ndim < 0 || t[i].ndim > 4)
            return nn_error_set(err, NN_ERR_INVALID, "safetensors: tensor '%.64s' has %d dimensions",
                                t[i].name, t[i].ndim);
        uint64_t bytes = st_count(t[i].shape, t[i].ndim, &ok) * 4;
        if (!ok || bytes > UINT64_MAX / 2 - data_len)
            return nn_error_set(err, NN_ERR_INVALID, "safetensors: tensor '%.64s' has a bad shape",
                                t[i].name);
        if (bytes && !t[i].data)
            return nn_error_set(err, NN_ERR_INVALID, "safetensors: tensor '%.64s' has no data", t[i].name);
        data_len += bytes;
    }
    for (int i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value)
            return nn_error_set(err, NN_ERR_INVALID, "safetensors: metadata entry %d is NULL", i);

    sb_puts(&h, "{");
    if (n_meta) {
        sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(&h, ",");
            sb_json_string(&h, meta[i].key);
            sb_puts(&h, ":");
            sb_json_string(&h, meta[i].value);
        }
        sb_puts(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int ok;
        uint64_t bytes = st_count(t[i].shape, t[i].ndim, &ok) * 4;
        if (i || n_meta) sb_puts(&h, ",");
        sb_json_string(&h, t[i].name);
        sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d) sb_puts(&h, ",");
            sb_u64(&h, (uint64_t)t[i].shape[d]);
        }
        sb_puts(&h, "],\"data_offsets\":[");
        sb_u64(&h, off);
        sb_puts(&h, ",");
        sb_u64(&h, off + bytes);
        sb_puts(&h, "]}");
        off += bytes;
    }
    sb_puts(&h, "}");
    while (!h.oom && h.len % 8) sb_puts(&h, " ");
    if (h.oom) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory encoding safetensors");
        goto out;
    }
    if (data_len > SIZE_MAX - 8 - h.len) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "safetensors: the encoding does not fit in memory");
        goto out;
    }
    size_t total = 8 + h.len + (size_t)data_len;
    out = malloc(total);
    if (!out) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory encoding safetensors");
        goto out;
    }
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    memcpy(out + 8, h.s, h.len);
    unsigned char *d = out + 8 + h.len;
    for (int i = 0; i < n; i++) {
        int ok;
        size_t bytes = (size_t)(st_count(t[i].shape, t[i].ndim, &ok) * 4);
        if (bytes) memcpy(d, t[i].data, bytes);
        d += bytes;
    }
    *buf = out;
    *len = total;
    out = NULL;
out:
    free(out);
    free(h.s);
    return rc;
}

/* ---------------------------------------------------------------- decode */

typedef struct st_entry {
    size_t name_off; /* into the name block */
    int ndim;
    int64_t shape[4];
    uint64_t begin, end;
} st_entry;

typedef struct st_reader {
    const unsigned char *s;
    size_t pos, len;  /* the JSON header */
    char *names;      /* decoded strings; committed names end at `used` */
    size_t used, cap;
    nn_error *err;
} st_reader;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static nn_status st_fail(st_reader *r, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_error_set(r->err, NN_ERR_PARSE, "safetensors header, byte %zu: %s", r->pos, msg);
}

static void st_ws(st_reader *r)
{
    while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\n' ||
                               r->s[r->pos] == '\r'))
        r->pos++;
}

/* Skip whitespace; consume `c` if it is next (returns 1), else leave it (0). */
static int st_accept(st_reader *r, char c)
{
    st_ws(r);
    if (r->pos < r->len && r->s[r->pos] == (unsigned char)c) {
        r->pos++;
        return 1;
    }
    return 0;
}

static nn_status st_expect(st_reader *r, char c)
{
    return st_accept(r, c) ? NN_OK : st_fail(r, "expected '%c'", c);
}

static int st_hex4(const unsigned char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

/* A JSON string, decoded NUL-terminated at names + used (not committed: the caller
 * advances `used` to keep it). *out points at it. */
static nn_status st_string(st_reader *r, const char **out)
{
    size_t o = r->used;
    if (!st_accept(r, '"')) return st_fail(r, "expected a string");
    for (;;) {
        if (r->pos >= r->len) return st_fail(r, "unterminated string");
        unsigned c = r->s[r->pos++];
        if (c == '"') break;
        if (c < 0x20) return st_fail(r, "control character in a string");
        if (c == '\\') {
            if (r->pos >= r->len) return st_fail(r, "unterminated string");
            c = r->s[r->pos++];
            switch (c) {
            case '"': case '\\': case '/': break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (r->len - r->pos < 4 || !st_hex4(r->s + r->pos, &cp)) return st_fail(r, "bad \\u escape");
                r->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return st_fail(r, "lone low surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (r->len - r->pos < 6 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u' ||
                        !st_hex4(r->s + r->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return st_fail(r, "lone high surrogate");
                    r->pos += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0) return st_fail(r, "\\u0000 is not allowed");
                unsigned char u[4];
                size_t n;
                if (cp < 0x80) u[0] = (unsigned char)cp, n = 1;
                else if (cp < 0x800) u[0] = (unsigned char)(0xC0 | cp >> 6), n = 2;
                else if (cp < 0x10000) u[0] = (unsigned char)(0xE0 | cp >> 12), n = 3;
                else u[0] = (unsigned char)(0xF0 | cp >> 18), n = 4;
                for (size_t k = 1; k < n; k++)
                    u[k] = (unsigned char)(0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3F));
                if (r->cap - o < n + 1) return st_fail(r, "string buffer overflow");
                memcpy(r->names + o, u, n);
                o += n;
                continue;
            }
            default: return st_fail(r, "bad escape '\\%c'", c >= 0x20 && c < 0x7F ? (char)c : '?');
            }
        }
        if (c >= 0x80) { /* a raw multi-byte character: copied whole if it is UTF-8 */
            size_t n = nn_utf8_char_len(r->s + r->pos - 1, r->len - r->pos + 1);
            if (n == 0) return st_fail(r, "a string is not valid UTF-8");
            if (r->cap - o < n + 1) return st_fail(r, "string buffer overflow");
            memcpy(r->names + o, r->s + r->pos - 1, n);
            o += n;
            r->pos += n - 1;
            continue;
        }
        if (r->cap - o < 2) return st_fail(r, "string buffer overflow");
        r->names[o++] = (char)c;
    }
    r->names[o] = 0;
    *out = r->names + r->used;
    return NN_OK;
}

/* A non-negative JSON integer without leading zeros. */
static nn_status st_uint(st_reader *r, uint64_t *v)
{
    st_ws(r);
    size_t start = r->pos;
    *v = 0;
    if (r->pos < r->len && r->s[r->pos] == '-') return st_fail(r, "negative number");
    while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
        unsigned d = r->s[r->pos] - '0';
        if (*v > (UINT64_MAX - d) / 10) return st_fail(r, "integer too large");
        *v = *v * 10 + d;
        r->pos++;
    }
    if (r->pos == start) return st_fail(r, "expected an integer");
    if (r->s[start] == '0' && r->pos - start > 1) return st_fail(r, "leading zero in an integer");
    if (r->pos < r->len && (r->s[r->pos] == '.' || r->s[r->pos] == 'e' || r->s[r->pos] == 'E'))
        return st_fail(r, "expected an integer, found a fraction or exponent");
    return NN_OK;
}

/* [u, u, ...] with at most `max` elements. */
static nn_status st_uint_array(st_reader *r, uint64_t *v, int max, int *n, const char *what)
{
    nn_status rc = st_expect(r, '[');
    *n = 0;
    if (rc != NN_OK || st_accept(r, ']')) return rc;
    do {
        if (*n == max) return st_fail(r, "%s has more than %d elements", what, max);
        rc = st_uint(r, &v[(*n)++]);
        if (rc != NN_OK) return rc;
    } while (st_accept(r, ','));
    return st_expect(r, ']');
}

/* "__metadata__": an object of string values (validated, not returned). */
static nn_status st_metadata(st_reader *r)
{
    const char *s;
    nn_status rc = st_expect(r, '{');
    if (rc != NN_OK || st_accept(r, '}')) return rc;
    do {
        if ((rc = st_string(r, &s)) != NN_OK || (rc = st_expect(r, ':')) != NN_OK) return rc;
        st_ws(r);
        if (r->pos < r->len && r->s[r->pos] != '"') return st_fail(r, "__metadata__ values must be strings");
        if ((rc = st_string(r, &s)) != NN_OK) return rc;
    } while (st_accept(r, ','));
    return st_expect(r, '}');
}

/* One tensor's object; the name is committed already. */
static nn_status st_tensor(st_reader *r, st_entry *e, const char *name)
{
    int seen_dtype = 0, seen_shape = 0, seen_offsets = 0, n;
    char dtype[16] = "";
    const char *key;
    uint64_t v[4];
    nn_status rc = st_expect(r, '{');
    if (rc != NN_OK) return rc;
    if (st_accept(r, '}')) return st_fail(r, "tensor '%.64s' is empty", name);
    do {
        if ((rc = st_string(r, &key)) != NN_OK || (rc = st_expect(r, ':')) != NN_OK) return rc;
        if (strcmp(key, "dtype") == 0 && !seen_dtype) {
            const char *s;
            seen_dtype = 1;
            if ((rc = st_string(r, &s)) != NN_OK) return rc;
            snprintf(dtype, sizeof dtype, "%s", s);
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            if ((rc = st_uint_array(r, v, 4, &n, "shape")) != NN_OK) return rc;
            e->ndim = n;
            for (int i = 0; i < n; i++) {
                if (v[i] > (uint64_t)INT64_MAX) return st_fail(r, "dimension too large");
                e->shape[i] = (int64_t)v[i];
            }
        } else if (strcmp(key, "data_offsets") == 0 && !seen_offsets) {
            seen_offsets = 1;
            if ((rc = st_uint_array(r, v, 2, &n, "data_offsets")) != NN_OK) return rc;
            if (n != 2) return st_fail(r, "data_offsets needs 2 integers");
            e->begin = v[0];
            e->end = v[1];
        } else {
            return st_fail(r, "unexpected or repeated key '%.32s' in tensor '%.64s'", key, name);
        }
    } while (st_accept(r, ','));
    if ((rc = st_expect(r, '}')) != NN_OK) return rc;
    if (!seen_dtype || !seen_shape || !seen_offsets)
        return st_fail(r, "tensor '%.64s' lacks %s", name,
                       !seen_dtype ? "dtype" : !seen_shape ? "shape" : "data_offsets");
    if (strcmp(dtype, "F32") != 0)
        return nn_error_set(r->err, NN_ERR_PARSE, "safetensors: tensor '%.64s' has dtype '%s'; only F32 is supported",
                            name, dtype);
    return NN_OK;
}

typedef struct st_range {
    uint64_t begin, end;
    size_t idx;
} st_range;

static int st_range_cmp(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int st_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Offsets within the data section, shapes matching offsets, no overlaps, unique
 * names; when exact, the tensors tiling the data section (in offset order each
 * begins where the one before ended, the last ends at its end). */
static nn_status st_validate(const st_entry *e, size_t n, const char *names, uint64_t data_len,
                             int exact, nn_error *err)
{
    nn_status rc = NN_OK;
    st_range *rg = malloc((n ? n : 1) * sizeof *rg);
    const char **nm = malloc((n ? n : 1) * sizeof *nm);
    if (!rg || !nm) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory decoding safetensors");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = names + e[i].name_off;
        int ok;
        uint64_t count = st_count(e[i].shape, e[i].ndim, &ok);
        if (e[i].begin > e[i].end || e[i].end > data_len) {
            rc = nn_error_set(err, NN_ERR_PARSE,
                              "safetensors: tensor '%.64s': data_offsets [%llu, %llu] outside the %llu data bytes",
                              name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                              (unsigned long long)data_len);
            goto out;
        }
        if (!ok) {
            rc = nn_error_set(err, NN_ERR_PARSE, "safetensors: tensor '%.64s': its shape is too large", name);
            goto out;
        }
        if (count * 4 != e[i].end - e[i].begin) {
            rc = nn_error_set(err, NN_ERR_PARSE,
                              "safetensors: tensor '%.64s': its shape needs %llu bytes but data_offsets span %llu",
                              name, (unsigned long long)count * 4,
                              (unsigned long long)(e[i].end - e[i].begin));
            goto out;
        }
        rg[i].begin = e[i].begin;
        rg[i].end = e[i].end;
        rg[i].idx = i;
        nm[i] = name;
    }
    qsort(nm, n, sizeof *nm, st_name_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(nm[i - 1], nm[i]) == 0) {
            rc = nn_error_set(err, NN_ERR_PARSE, "safetensors: duplicate tensor name '%.64s'", nm[i]);
            goto out;
        }
    }
    qsort(rg, n, sizeof *rg, st_range_cmp);
    const st_range *prev = NULL;
    uint64_t at = 0; /* where the tensors so far end */
    for (size_t i = 0; i < n; i++) {
        /* An empty tensor overlaps nothing; exact, it still sits where the last ended. */
        if (!exact && rg[i].begin == rg[i].end) continue;
        if (prev && rg[i].begin < at) {
            rc = nn_error_set(err, NN_ERR_PARSE, "safetensors: tensors '%.64s' and '%.64s' overlap",
                              names + e[prev->idx].name_off, names + e[rg[i].idx].name_off);
            goto out;
        }
        if (exact && rg[i].begin > at) {
            rc = nn_error_set(err, NN_ERR_PARSE,
                              "safetensors: data bytes [%llu, %llu) belong to no tensor",
                              (unsigned long long)at, (unsigned long long)rg[i].begin);
            goto out;
        }
        at = rg[i].end;
        prev = &rg[i];
    }
    if (exact && at != data_len)
        rc = nn_error_set(err, NN_ERR_PARSE, "safetensors: data bytes [%llu, %llu) belong to no tensor",
                          (unsigned long long)at, (unsigned long long)data_len);
out:
    free(rg);
    free(nm);
    return rc;
}

/* On NN_OK, *tensors is one malloc'ed block holding the n entries and their names
 * (free it with nn_st_free_list); data pointers point into buf (unaligned
 * possibly: memcpy the floats out). On failure *tensors is NULL and *n is 0. */
nn_status nn_st_decode(const void *buf, size_t len, unsigned flags, nn_st_tensor **tensors, int *n,
                       nn_error *err)
{
    const unsigned char *b = buf;
    st_reader r;
    st_entry *ents = NULL;
    size_t n_ent = 0, cap_ent = 0;
    nn_st_tensor *res = NULL;
    int seen_meta = 0;
    nn_status rc = NN_OK;
    memset(&r, 0, sizeof r);
    if (!tensors || !n || (!buf && len))
        return nn_error_set(err, NN_ERR_INVALID, "nn_st_decode: NULL argument");
    *tensors = NULL;
    *n = 0;
    if (len < 8)
        return nn_error_set(err, NN_ERR_PARSE, "safetensors: %zu bytes is too short for a header", len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    if (hl > ST_MAX_HEADER)
        return nn_error_set(err, NN_ERR_LIMIT, "safetensors: header length %llu exceeds 100 MiB",
                            (unsigned long long)hl);
    if (hl > len - 8)
        return nn_error_set(err, NN_ERR_PARSE,
                            "safetensors: header length %llu exceeds the %zu bytes that follow it",
                            (unsigned long long)hl, len - 8);
    r.s = b + 8;
    r.len = (size_t)hl;
    r.cap = (size_t)hl + 1; /* a decoded string is never longer than its JSON form */
    r.err = err;
    r.names = malloc(r.cap);
    if (!r.names) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory decoding safetensors");
        goto out;
    }
    if ((rc = st_expect(&r, '{')) != NN_OK) goto out;
    if (!st_accept(&r, '}')) {
        do {
            const char *key;
            if ((rc = st_string(&r, &key)) != NN_OK || (rc = st_expect(&r, ':')) != NN_OK) goto out;
            if (strcmp(key, "__metadata__") == 0) {
                if (seen_meta) {
                    rc = st_fail(&r, "duplicate __metadata__");
                    goto out;
                }
                seen_meta = 1;
                rc = st_metadata(&r);
            } else if (!key[0]) {
                rc = st_fail(&r, "a tensor has an empty name");
            } else {
                if (n_ent == cap_ent) {
                    size_t ncap = cap_ent ? cap_ent * 2 : 16;
                    st_entry *ne = realloc(ents, ncap * sizeof *ne);
                    if (!ne) {
                        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory decoding safetensors");
                        goto out;
                    }
                    ents = ne;
                    cap_ent = ncap;
                }
                st_entry *e = &ents[n_ent++];
                memset(e, 0, sizeof *e);
                e->name_off = r.used;
                r.used += strlen(key) + 1; /* commit the name */
                rc = st_tensor(&r, e, r.names + e->name_off);
            }
            if (rc != NN_OK) goto out;
        } while (st_accept(&r, ','));
        if ((rc = st_expect(&r, '}')) != NN_OK) goto out;
    }
    st_ws(&r);
    if (r.pos != r.len) {
        rc = st_fail(&r, "unexpected characters after the header object");
        goto out;
    }
    if (n_ent > INT32_MAX) {
        rc = nn_error_set(err, NN_ERR_LIMIT, "safetensors: too many tensors");
        goto out;
    }
    rc = st_validate(ents, n_ent, r.names, (uint64_t)(len - 8 - r.len), (flags & NN_ST_EXACT) != 0, err);
    if (rc != NN_OK) goto out;
    res = malloc(n_ent * sizeof *res + r.used + 1);
    if (!res) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory decoding safetensors");
        goto out;
    }
    char *nb = (char *)(res + n_ent);
    memcpy(nb, r.names, r.used);
    for (size_t i = 0; i < n_ent; i++) {
        res[i].name = nb + ents[i].name_off;
        res[i].ndim = ents[i].ndim;
        memcpy(res[i].shape, ents[i].shape, sizeof res[i].shape);
        res[i].data = b + 8 + r.len + ents[i].begin;
    }
    *tensors = res;
    *n = (int)n_ent;
    res = NULL;
out:
    free(res);
    free(ents);
    free(r.names);
    return rc;
}

/* Frees a list from nn_st_decode (names included: one block). NULL-safe. */
void nn_st_free_list(nn_st_tensor *tensors, int n)
{
    (void)n;
    free(tensors);
}
