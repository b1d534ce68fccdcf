/* dataset.c — nn_dataset containers and the parsing limits.
 *
 * A dataset owns two row-major float32 matrices (x and y). Views share the
 * parent's memory and must not be freed. The file parsers (csv.c, idx.c) build
 * datasets; this file only describes, slices and frees them. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

nn_limits nn_limits_default(void)
{
    nn_limits l;
    l.max_bytes = (size_t)2 << 30; /* 2 GiB */
    l.max_samples = 10000000;
    l.max_features = 1000000;
    l.max_file_bytes = SIZE_MAX;
    return l;
}

/* Frees x and y and zeroes the struct; NULL-safe. Never call it on a view. */
void nn_dataset_free(nn_dataset *ds)
{
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

/* y_integer: n > 0 and every target is a finite integer in [0, INT_MAX) (an empty
 * dataset proves nothing, so it is not integer). n_classes = max + 1 for a single
 * integer target column; otherwise 0. y_min and y_max: the targets' range. */
void nn_dataset_describe(nn_dataset *ds)
{
    if (!ds) return;
    ds->y_integer = 0;
    ds->n_classes = 0;
    ds->y_min = ds->y_max = NAN;
    if (!ds->y || ds->n == 0 || ds->y_width <= 0) return;
    size_t total = ds->n * (size_t)ds->y_width;
    float lo = ds->y[0], hi = ds->y[0];
    int integer = 1;
    for (size_t i = 0; i < total; i++) {
        float v = ds->y[i];
        if (!isfinite(v)) return; /* parsers refuse these; a range of them means nothing */
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (v < 0.0f || v != floorf(v)) integer = 0;
    }
    ds->y_min = lo;
    ds->y_max = hi;
    /* Integral values past an int are no class labels (they would pass a check
     * against the output width): targets like any other. */
    if (!integer || !((double)hi < (double)INT_MAX)) return;
    ds->y_integer = 1;
    if (ds->y_width == 1) ds->n_classes = (int)hi + 1;
}

/* Rows [from, from + count) clamped to the dataset; the view keeps the parent's
 * y_integer, n_classes and range so that train and validation splits agree on them. */
nn_dataset nn_dataset_view(const nn_dataset *ds, size_t from, size_t count)
{
    nn_dataset v;
    memset(&v, 0, sizeof v);
    if (!ds) return v;
    v = *ds;
    if (from > ds->n) from = ds->n;
    if (count > ds->n - from) count = ds->n - from;
    v.n = count;
    v.x = ds->x ? ds->x + from * (size_t)ds->x_width : NULL;
    v.y = ds->y ? ds->y + from * (size_t)ds->y_width : NULL;
    return v;
}

#define FEED_CHUNK 65536

nn_status nn_feed_file(const char *path, nn_feed_fn feed, void *parser, nn_error *err)
{
    nn_status rc = NN_OK;
    unsigned char *buf = malloc(FEED_CHUNK);
    FILE *f = NULL;
    if (!buf) return nn_error_set(err, NN_ERR_NOMEM, "out of memory reading '%.200s'", path);
    f = fopen(path, "rb");
    if (!f) {
        rc = nn_error_set(err, NN_ERR_IO, "cannot open '%.200s': %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        size_t got = fread(buf, 1, FEED_CHUNK, f);
        if (got && (rc = feed(parser, buf, got, err)) != NN_OK) goto out;
        if (got < FEED_CHUNK) break;
    }
    if (ferror(f)) rc = nn_error_set(err, NN_ERR_IO, "error reading '%.200s'", path);
out:
    if (f) fclose(f);
    free(buf);
    return rc;
}
