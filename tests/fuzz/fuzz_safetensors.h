/* fuzz_safetensors.h — the safetensors reader (nn_st_decode).
 *
 * Properties: a decoded tensor's data lies inside the buffer (every byte is read,
 * so ASan sees any overrun) with 1..4 non-negative dims; names are non-empty and
 * distinct; re-encoding the tensors (nn_st_encode) and decoding that gives the
 * same names, shapes and bytes. */
#ifndef FITD_FUZZ_SAFETENSORS_H
#define FITD_FUZZ_SAFETENSORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nn_int.h"

static size_t st_count(const nn_st_tensor *t)
{
    size_t c = 1;
    for (int d = 0; d < t->ndim; d++) c *= (size_t)t->shape[d];
    return c;
}

int fuzz_safetensors(const uint8_t *data, size_t size)
{
    nn_st_tensor *t = NULL, *t2 = NULL;
    int n = 0, n2 = 0, bad = 0;
    void *enc = NULL;
    size_t enc_len = 0;
    nn_error err = {0};
    /* A private copy: the decoder must not read past `size`. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (nn_st_decode(buf, size, NN_ST_EXACT, &t, &n, &err) != NN_OK) {
        if (!err.message[0]) {
            fprintf(stderr, "fuzz_safetensors: an error without a message\n");
            bad = 1;
        }
        goto out;
    }
    volatile float sink = 0.0f;
    for (int i = 0; i < n && !bad; i++) {
        const uint8_t *p = t[i].data;
        size_t c = st_count(&t[i]);
        if (t[i].ndim < 0 || t[i].ndim > 4 || !t[i].name || !t[i].name[0]) {
            fprintf(stderr, "fuzz_safetensors: tensor %d: ndim %d\n", i, t[i].ndim);
            bad = 1;
            break;
        }
        if (c && (p < buf || p + c * sizeof(float) > buf + size)) {
            fprintf(stderr, "fuzz_safetensors: tensor %s lies outside the buffer\n", t[i].name);
            bad = 1;
            break;
        }
        for (size_t k = 0; k < c * sizeof(float); k++) sink += (float)p[k];
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0) {
                fprintf(stderr, "fuzz_safetensors: duplicate name %s\n", t[i].name);
                bad = 1;
            }
    }
    (void)sink;
    if (bad) goto out;
    if (nn_st_encode(t, n, NULL, 0, &enc, &enc_len, NULL) != NN_OK) goto out; /* e.g. NOMEM */
    err.code = NN_OK;
    if (nn_st_decode(enc, enc_len, NN_ST_EXACT, &t2, &n2, &err) != NN_OK || n2 != n) {
        fprintf(stderr, "fuzz_safetensors: the re-encoding does not decode: %s\n", err.message);
        bad = 1;
        goto out;
    }
    for (int i = 0; i < n && !bad; i++) {
        const nn_st_tensor *b = NULL;
        for (int j = 0; j < n2; j++)
            if (strcmp(t2[j].name, t[i].name) == 0) b = &t2[j];
        if (!b || b->ndim != t[i].ndim ||
            memcmp(b->shape, t[i].shape, (size_t)t[i].ndim * sizeof b->shape[0]) != 0 ||
            (st_count(&t[i]) &&
             memcmp(b->data, t[i].data, st_count(&t[i]) * sizeof(float)) != 0)) {
            fprintf(stderr, "fuzz_safetensors: tensor %s changed in the round trip\n", t[i].name);
            bad = 1;
        }
    }
out:
    nn_st_free_list(t, n);
    nn_st_free_list(t2, n2);
    free(enc);
    free(buf);
    return bad ? -1 : 0;
}

FUZZ_ENTRY(fuzz_safetensors)

#endif
