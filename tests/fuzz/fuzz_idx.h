/* fuzz_idx.h — the streaming IDX parser (nn_idx_parser_*), plain and gzip.
 *
 * Input: byte 0 seeds the split sizes, the rest is the file. Properties: feeding
 * it at once and in 1..33-byte pieces gives the same verdict, message and array;
 * when it is not gzip already, its gzip compression parses to the same verdict
 * and the same array (the gzip layer is transparent); an array's count is the
 * product of its dims; pairing it with itself (nn_dataset_from_idx) does not
 * crash. */
#ifndef FITD_FUZZ_IDX_H
#define FITD_FUZZ_IDX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz.h"
#include "nn.h"

typedef struct idx_result {
    nn_status rc;
    nn_error err;
    nn_idx_array a;
} idx_result;

static nn_status idx_feed(void *p, const uint8_t *s, size_t n, nn_error *err)
{
    return nn_idx_parser_feed(p, s, n, err);
}

static void idx_run(const uint8_t *s, size_t len, unsigned seed, idx_result *r)
{
    nn_limits lim = {.max_bytes = 16u << 20, .max_samples = 1u << 20, .max_features = 1u << 16};
    memset(r, 0, sizeof *r);
    nn_idx_parser *p = nn_idx_parser_new(&lim, &r->err);
    if (!p) {
        r->rc = r->err.code;
        return;
    }
    r->rc = fuzz_feed_split(p, idx_feed, s, len, seed, 7u, 33, &r->err);
    if (r->rc == NN_OK) r->rc = nn_idx_parser_finish(p, &r->a, &r->err);
    nn_idx_parser_free(p);
}

/* gzip-compress (a member with header and trailer); NULL on failure. */
static uint8_t *gz(const uint8_t *s, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    uLong cap = deflateBound(&zs, (uLong)len) + 32;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)s;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static int same_array(const nn_idx_array *a, const nn_idx_array *b)
{
    return a->ndim == b->ndim && memcmp(a->dims, b->dims, sizeof a->dims) == 0 &&
           a->count == b->count &&
           (a->count == 0 || memcmp(a->data, b->data, a->count * sizeof(float)) == 0);
}

int fuzz_idx(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    idx_result a, b, c;
    int bad = 0;
    memset(&c, 0, sizeof c);
    idx_run(data + 1, size - 1, 0, &a);
    idx_run(data + 1, size - 1, (unsigned)data[0] + 1, &b);
    if (a.rc != b.rc || strcmp(a.err.message, b.err.message) != 0) {
        fprintf(stderr, "fuzz_idx: split changes the verdict: %d '%s' vs %d '%s'\n", a.rc,
                a.err.message, b.rc, b.err.message);
        bad = 1;
    } else if (a.rc == NN_OK && !same_array(&a.a, &b.a)) {
        fprintf(stderr, "fuzz_idx: split changes the array\n");
        bad = 1;
    }
    if (a.rc == NN_OK) {
        size_t prod = 1;
        for (int i = 0; i < a.a.ndim; i++) prod *= a.a.dims[i];
        if (a.a.ndim < 1 || a.a.ndim > 4 || prod != a.a.count) {
            fprintf(stderr, "fuzz_idx: ndim %d, count %zu != product %zu\n", a.a.ndim, a.a.count,
                    prod);
            bad = 1;
        }
    }
    int is_gz = size >= 3 && data[1] == 0x1f && data[2] == 0x8b;
    size_t zlen = 0;
    uint8_t *z = is_gz ? NULL : gz(data + 1, size - 1, &zlen);
    if (z) {
        idx_run(z, zlen, (unsigned)data[0] + 1, &c);
        if (c.rc != a.rc && !(size - 1 < 2 && a.rc != NN_OK && c.rc != NN_OK)) {
            fprintf(stderr, "fuzz_idx: gzip changes the verdict: %d '%s' vs %d '%s'\n", a.rc,
                    a.err.message, c.rc, c.err.message);
            bad = 1;
        } else if (a.rc == NN_OK && !same_array(&a.a, &c.a)) {
            fprintf(stderr, "fuzz_idx: gzip changes the array\n");
            bad = 1;
        }
        free(z);
    }
    if (!bad && a.rc == NN_OK && b.rc == NN_OK) {
        /* Pair the array with its twin: exercises the count check and the move. */
        nn_dataset ds;
        memset(&ds, 0, sizeof ds);
        if (nn_dataset_from_idx(&a.a, &b.a, &ds, NULL) == NN_OK) nn_dataset_free(&ds);
    }
    nn_idx_array_free(&a.a);
    nn_idx_array_free(&b.a);
    nn_idx_array_free(&c.a);
    return bad ? -1 : 0;
}

FUZZ_ENTRY(fuzz_idx)

#endif
