/* idx.c — a streaming reader for IDX files (the MNIST family's format).
 *
 * Layout: 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dimensions, then
 * product(dims) big-endian elements of the type (0x08 ubyte, 0x09 sbyte, 0x0B
 * int16, 0x0C int32, 0x0D float32, 0x0E float64). Input beginning with the gzip
 * magic 1f 8b is inflated on the fly (concatenated gzip members are joined).
 *
 * Safety against hostile headers: the declared size is checked for overflow and
 * against the limits as soon as the dimensions are known, and the output array
 * grows geometrically with the data actually received (never beyond the declared
 * size), so a header that lies about its size costs no memory. At finish the
 * data must be exactly the declared length. Elements are converted to float as
 * they arrive: ubyte arrays of 2+ dimensions are scaled by 1/255, everything else
 * keeps its value; NaN or Inf in float data is rejected. The first error is
 * sticky. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nn_int.h"

#define IDX_CHUNK 65536 /* inflate output and file read size */

enum { MODE_UNKNOWN = 0, MODE_PLAIN, MODE_GZIP };

struct nn_idx_parser {
    nn_limits lim;
    nn_error err;        /* the sticky first error */
    int mode;
    unsigned char first[2];
    int first_n;         /* bytes held back until the gzip magic is decided */
    z_stream zs;
    int zs_init, gz_end; /* gz_end: the current gzip member is complete */
    unsigned char *zbuf; /* [IDX_CHUNK] inflate output */
    /* header */
    unsigned char hdr[20];
    size_t hdr_n, hdr_need;
    int header_done;
    int type, elem_size, ndim, scale;
    size_t dims[4], count, data_bytes;
    /* data */
    unsigned char part[8];
    int part_n;          /* bytes of an element split across chunks */
    size_t received;     /* data bytes so far */
    float *data;
    size_t n_elems, cap;
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static nn_status idx_fail(nn_idx_parser *p, nn_error *err, nn_status code, const char *fmt, ...)
{
    if (p->err.code == NN_OK) {
        va_list ap;
        va_start(ap, fmt);
        p->err.code = code;
        vsnprintf(p->err.message, sizeof p->err.message, fmt, ap);
        va_end(ap);
    }
    return nn_error_set(err, p->err.code, "%s", p->err.message);
}

nn_idx_parser *nn_idx_parser_new(const nn_limits *limits, nn_error *err)
{
    nn_idx_parser *p = calloc(1, sizeof *p);
    if (!p) {
        nn_error_set(err, NN_ERR_NOMEM, "out of memory creating an IDX parser");
        return NULL;
    }
    p->lim = nn_limits_default();
    if (limits) {
        if (limits->max_bytes) p->lim.max_bytes = limits->max_bytes;
        if (limits->max_samples) p->lim.max_samples = limits->max_samples;
        if (limits->max_features) p->lim.max_features = limits->max_features;
        if (limits->max_file_bytes) p->lim.max_file_bytes = limits->max_file_bytes;
    }
    p->hdr_need = 4;
    return p;
}

void nn_idx_parser_free(nn_idx_parser *p)
{
    if (!p) return;
    if (p->zs_init) inflateEnd(&p->zs);
    free(p->zbuf);
    free(p->data);
    free(p);
}

void nn_idx_array_free(nn_idx_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* The magic, type and ndim (the first 4 bytes). */
static nn_status idx_check_magic(nn_idx_parser *p, nn_error *err)
{
    const unsigned char *h = p->hdr;
    if (h[0] != 0 || h[1] != 0)
        return idx_fail(p, err, NN_ERR_PARSE,
                        "not an IDX file: magic %02x %02x %02x %02x, expected 00 00 <type> <ndim>",
                        h[0], h[1], h[2], h[3]);
    p->type = h[2];
    switch (p->type) {
    case 0x08: case 0x09: p->elem_size = 1; break;
    case 0x0B: p->elem_size = 2; break;
    case 0x0C: case 0x0D: p->elem_size = 4; break;
    case 0x0E: p->elem_size = 8; break;
    default:
        return idx_fail(p, err, NN_ERR_PARSE, "IDX: unknown data type 0x%02x", p->type);
    }
    p->ndim = h[3];
    if (p->ndim < 1 || p->ndim > 4)
        return idx_fail(p, err, NN_ERR_PARSE, "IDX: %d dimensions, expected 1 to 4", p->ndim);
    p->hdr_need = 4 + 4 * (size_t)p->ndim;
    return NN_OK;
}

/* The dimensions: overflow and limits are checked before anything is allocated. */
static nn_status idx_check_dims(nn_idx_parser *p, nn_error *err)
{
    size_t count = 1;
    for (int i = 0; i < p->ndim; i++) {
        uint32_t d = be32(p->hdr + 4 + 4 * i);
        if (d == 0) return idx_fail(p, err, NN_ERR_PARSE, "IDX: dimension %d is zero", i);
        p->dims[i] = d;
        if (count > SIZE_MAX / d)
            return idx_fail(p, err, NN_ERR_LIMIT, "IDX: the declared size overflows");
        count *= d;
    }
    p->count = count;
    if (count > SIZE_MAX / 8)
        return idx_fail(p, err, NN_ERR_LIMIT, "IDX: the declared size overflows");
    p->data_bytes = count * (size_t)p->elem_size;
    if (p->dims[0] > p->lim.max_samples)
        return idx_fail(p, err, NN_ERR_LIMIT, "IDX: %zu items exceed the limit of %zu", p->dims[0],
                        p->lim.max_samples);
    if (count / p->dims[0] > p->lim.max_features)
        return idx_fail(p, err, NN_ERR_LIMIT, "IDX: %zu values per item exceed the limit of %zu",
                        count / p->dims[0], p->lim.max_features);
    if (count > p->lim.max_bytes / sizeof(float) || p->data_bytes > p->lim.max_bytes)
        return idx_fail(p, err, NN_ERR_LIMIT, "IDX: declares %zu values (%zu bytes), over the limit of %zu bytes",
                        count, p->data_bytes, p->lim.max_bytes);
    if (p->hdr_need + p->data_bytes > p->lim.max_file_bytes) /* no overflow: data_bytes <= max_bytes */
        return idx_fail(p, err, NN_ERR_LIMIT, "IDX: the file declares %zu bytes, over the limit of %zu bytes",
                        p->hdr_need + p->data_bytes, p->lim.max_file_bytes);
    p->scale = p->type == 0x08 && p->ndim >= 2;
    p->header_done = 1;
    return NN_OK;
}

/* Convert one big-endian element to float and append it (capacity is ensured). */
static nn_status idx_element(nn_idx_parser *p, const unsigned char *e, nn_error *err)
{
    float v = 0.0f;
    switch (p->type) {
    case 0x08: v = p->scale ? (float)e[0] / 255.0f : (float)e[0]; break;
    case 0x09: v = (float)(e[0] < 0x80 ? (int)e[0] : (int)e[0] - 256); break;
    case 0x0B: {
        unsigned u = (unsigned)e[0] << 8 | e[1];
        v = (float)(u < 0x8000u ? (long)u : (long)u - 0x10000L);
        break;
    }
    case 0x0C: {
        uint32_t u = be32(e);
        v = (float)(u < 0x80000000u ? (int64_t)u : (int64_t)u - ((int64_t)1 << 32));
        break;
    }
    case 0x0D: {
        uint32_t u = be32(e);
        memcpy(&v, &u, sizeof v);
        break;
    }
    case 0x0E: {
        uint64_t u = (uint64_t)be32(e) << 32 | be32(e + 4);
        double d;
        memcpy(&d, &u, sizeof d);
        if (!isfinite(d))
            return idx_fail(p, err, NN_ERR_PARSE, "IDX: element %zu is NaN or Inf", p->n_elems);
        v = (float)d;
        if (!isfinite(v))
            return idx_fail(p, err, NN_ERR_PARSE, "IDX: element %zu is outside the float32 range",
                            p->n_elems);
        break;
    }
    }
    if (!isfinite(v)) return idx_fail(p, err, NN_ERR_PARSE, "IDX: element %zu is NaN or Inf", p->n_elems);
    p->data[p->n_elems++] = v;
    return NN_OK;
}

/* Data bytes: grow the array to what has arrived (capped at the declared count),
 * then convert whole elements, holding back a split one. */
static nn_status idx_data(nn_idx_parser *p, const unsigned char *s, size_t n, nn_error *err)
{
    nn_status rc = NN_OK;
    size_t es = (size_t)p->elem_size;
    if (n > p->data_bytes - p->received) {
        /* Convert the declared bytes first: the error reported is the first one in
         * stream order whatever the split (found by tests/fuzz/fuzz_idx.c). */
        size_t keep = p->data_bytes - p->received;
        if (keep) rc = idx_data(p, s, keep, err);
        if (rc != NN_OK) return rc;
        return idx_fail(p, err, NN_ERR_PARSE, "IDX: trailing data after the declared %zu data bytes",
                        p->data_bytes);
    }
    size_t need = (p->received + n) / es;
    if (need > p->cap) {
        size_t ncap = p->cap * 2 > need ? p->cap * 2 : need;
        if (ncap < 4096) ncap = 4096;
        if (ncap > p->count) ncap = p->count;
        float *nd = realloc(p->data, ncap * sizeof *nd);
        if (!nd) return idx_fail(p, err, NN_ERR_NOMEM, "out of memory reading IDX data");
        p->data = nd;
        p->cap = ncap;
    }
    p->received += n;
    while (n && p->part_n) { /* finish an element split across chunks */
        p->part[p->part_n++] = *s++;
        n--;
        if ((size_t)p->part_n == es) {
            p->part_n = 0;
            rc = idx_element(p, p->part, err);
            if (rc != NN_OK) return rc;
        }
    }
    for (; n >= es; s += es, n -= es) {
        rc = idx_element(p, s, err);
        if (rc != NN_OK) return rc;
    }
    memcpy(p->part + p->part_n, s, n);
    p->part_n += (int)n;
    return NN_OK;
}

/* Decoded (plain or inflated) bytes. */
static nn_status idx_consume(nn_idx_parser *p, const unsigned char *s, size_t n, nn_error *err)
{
    nn_status rc = NN_OK;
    while (n && !p->header_done) {
        size_t take = p->hdr_need - p->hdr_n;
        if (take > n) take = n;
        memcpy(p->hdr + p->hdr_n, s, take);
        p->hdr_n += take;
        s += take;
        n -= take;
        if (p->hdr_n < p->hdr_need) break;
        rc = p->hdr_need == 4 ? idx_check_magic(p, err) : idx_check_dims(p, err);
        if (rc != NN_OK) return rc;
    }
    return n ? idx_data(p, s, n, err) : NN_OK;
}

static nn_status idx_inflate(nn_idx_parser *p, const unsigned char *s, size_t n, nn_error *err)
{
    nn_status rc = NN_OK;
    /* zlib counts in uInt: hand over at most 1 GiB at a time */
    while (n) {
        uInt piece = n > (1u << 30) ? (1u << 30) : (uInt)n;
        p->zs.next_in = (Bytef *)(uintptr_t)s;
        p->zs.avail_in = piece;
        s += piece;
        n -= piece;
        for (;;) {
            if (p->gz_end) { /* another gzip member follows */
                if (p->zs.avail_in == 0) break;
                if (inflateReset(&p->zs) != Z_OK)
                    return idx_fail(p, err, NN_ERR_PARSE, "gzip: cannot reset the stream");
                p->gz_end = 0;
            }
            p->zs.next_out = p->zbuf;
            p->zs.avail_out = IDX_CHUNK;
            int zrc = inflate(&p->zs, Z_NO_FLUSH);
            size_t produced = IDX_CHUNK - p->zs.avail_out;
            if (produced) {
                rc = idx_consume(p, p->zbuf, produced, err);
                if (rc != NN_OK) return rc;
            }
            if (zrc == Z_STREAM_END) {
                p->gz_end = 1;
                continue;
            }
            if (zrc == Z_MEM_ERROR) return idx_fail(p, err, NN_ERR_NOMEM, "out of memory inflating gzip");
            if (zrc == Z_BUF_ERROR && p->zs.avail_in == 0) break; /* needs more input */
            if (zrc != Z_OK)
                return idx_fail(p, err, NN_ERR_PARSE, "gzip: corrupt data (%s)",
                                p->zs.msg ? p->zs.msg : "unknown error");
            if (p->zs.avail_in == 0 && p->zs.avail_out != 0) break;
        }
    }
    return NN_OK;
}

static nn_status idx_route(nn_idx_parser *p, const unsigned char *s, size_t n, nn_error *err)
{
    return p->mode == MODE_GZIP ? idx_inflate(p, s, n, err) : idx_consume(p, s, n, err);
}

/* Decide plain or gzip from the first two bytes. */
static nn_status idx_decide(nn_idx_parser *p, nn_error *err)
{
    if (p->first_n == 2 && p->first[0] == 0x1f && p->first[1] == 0x8b) {
        p->zbuf = malloc(IDX_CHUNK);
        if (!p->zbuf) return idx_fail(p, err, NN_ERR_NOMEM, "out of memory inflating gzip");
        memset(&p->zs, 0, sizeof p->zs);
        int zrc = inflateInit2(&p->zs, 16 + MAX_WBITS); /* gzip wrapper only */
        if (zrc != Z_OK)
            return idx_fail(p, err, zrc == Z_MEM_ERROR ? NN_ERR_NOMEM : NN_ERR_PARSE,
                            "gzip: cannot initialize zlib");
        p->zs_init = 1;
        p->mode = MODE_GZIP;
    } else {
        p->mode = MODE_PLAIN;
    }
    return idx_route(p, p->first, (size_t)p->first_n, err);
}

nn_status nn_idx_parser_feed(nn_idx_parser *p, const void *buf, size_t len, nn_error *err)
{
    const unsigned char *s = buf;
    if (!p || (!buf && len)) return nn_error_set(err, NN_ERR_INVALID, "nn_idx_parser_feed: NULL argument");
    if (p->err.code != NN_OK) return nn_error_set(err, p->err.code, "%s", p->err.message);
    if (p->mode == MODE_UNKNOWN) {
        while (len && p->first_n < 2) {
            p->first[p->first_n++] = *s++;
            len--;
        }
        if (p->first_n < 2) return NN_OK;
        nn_status rc = idx_decide(p, err);
        if (rc != NN_OK) return rc;
    }
    return len ? idx_route(p, s, len, err) : NN_OK;
}

nn_status nn_idx_parser_finish(nn_idx_parser *p, nn_idx_array *out, nn_error *err)
{
    if (!p || !out) return nn_error_set(err, NN_ERR_INVALID, "nn_idx_parser_finish: NULL argument");
    memset(out, 0, sizeof *out);
    if (p->err.code != NN_OK) return nn_error_set(err, p->err.code, "%s", p->err.message);
    if (p->mode == MODE_UNKNOWN) {
        if (p->first_n == 0) return idx_fail(p, err, NN_ERR_PARSE, "IDX: empty input");
        nn_status rc = idx_decide(p, err);
        if (rc != NN_OK) return rc;
    }
    if (p->mode == MODE_GZIP && !p->gz_end)
        return idx_fail(p, err, NN_ERR_PARSE, "gzip: the stream is truncated");
    if (!p->header_done)
        return idx_fail(p, err, NN_ERR_PARSE, "IDX: truncated header: %zu of %zu bytes", p->hdr_n,
                        p->hdr_need);
    if (p->received != p->data_bytes)
        return idx_fail(p, err, NN_ERR_PARSE, "IDX: truncated data: expected %zu bytes, received %zu",
                        p->data_bytes, p->received);
    out->ndim = p->ndim;
    memcpy(out->dims, p->dims, sizeof out->dims);
    out->count = p->count;
    out->data = p->data;
    p->data = NULL;
    p->cap = p->n_elems = 0;
    p->err.code = NN_ERR_INVALID; /* the parser is spent */
    snprintf(p->err.message, sizeof p->err.message, "the IDX parser has already finished");
    return NN_OK;
}

static nn_status idx_feed(void *p, const void *buf, size_t len, nn_error *err)
{
    return nn_idx_parser_feed(p, buf, len, err);
}

nn_status nn_idx_load_file(const char *path, const nn_limits *limits, nn_idx_array *out, nn_error *err)
{
    if (!path || !out) return nn_error_set(err, NN_ERR_INVALID, "nn_idx_load_file: NULL argument");
    memset(out, 0, sizeof *out);
    nn_idx_parser *p = nn_idx_parser_new(limits, err);
    if (!p) return err && err->code ? err->code : NN_ERR_NOMEM;
    nn_status rc = nn_feed_file(path, idx_feed, p, err);
    if (rc == NN_OK) rc = nn_idx_parser_finish(p, out, err);
    nn_idx_parser_free(p);
    return rc;
}

/* Images [n, ...] and labels [n] or [n, k] become x [n, prod(rest)] and y [n, k].
 * On success the arrays' data move into *out and both arrays are zeroed; on
 * failure nothing moves and *out is zeroed. */
nn_status nn_dataset_from_idx(nn_idx_array *x, nn_idx_array *y, nn_dataset *out, nn_error *err)
{
    if (!out) return nn_error_set(err, NN_ERR_INVALID, "nn_dataset_from_idx: NULL output");
    memset(out, 0, sizeof *out);
    if (!x || !y || !x->data || !y->data || x->ndim < 1 || y->ndim < 1 || !x->dims[0] || !y->dims[0])
        return nn_error_set(err, NN_ERR_INVALID, "nn_dataset_from_idx: empty images or labels");
    if (x->dims[0] != y->dims[0])
        return nn_error_set(err, NN_ERR_MISMATCH, "IDX: %zu images but %zu labels", x->dims[0],
                            y->dims[0]);
    if (y->ndim > 2)
        return nn_error_set(err, NN_ERR_MISMATCH, "IDX: labels have %d dimensions, expected [n] or [n, k]",
                            y->ndim);
    size_t xw = x->count / x->dims[0], yw = y->count / y->dims[0];
    if (xw > INT_MAX || yw > INT_MAX)
        return nn_error_set(err, NN_ERR_LIMIT, "IDX: too many values per item");
    out->n = x->dims[0];
    out->x_width = (int)xw;
    out->y_width = (int)yw;
    out->x = x->data;
    out->y = y->data;
    memset(x, 0, sizeof *x);
    memset(y, 0, sizeof *y);
    nn_dataset_describe(out);
    return NN_OK;
}
