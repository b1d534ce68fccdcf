/* fuzz_csv.h — the streaming CSV parser (nn_csv_parser_*), fed in random splits.
 *
 * Input: byte 0 picks the label (bit 7: by name "y", else index (b & 15) - 8),
 * byte 1 seeds the split sizes, the rest is the CSV. Properties: the whole
 * buffer fed at once and the same bytes fed in 1..17-byte pieces give the same
 * verdict, the same message and the same dataset; a dataset has n >= 1 and
 * widths that match its header. */
#ifndef FITD_FUZZ_CSV_H
#define FITD_FUZZ_CSV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nn.h"

typedef struct csv_result {
    nn_status rc;
    nn_error err;
    nn_dataset ds;
} csv_result;

static nn_status csv_feed(void *p, const uint8_t *s, size_t n, nn_error *err)
{
    return nn_csv_parser_feed(p, s, n, err);
}

/* Parse `s` in pieces whose sizes come from `seed` (0: all at once). */
static void csv_run(const uint8_t *s, size_t len, int opt_byte, unsigned seed, csv_result *r)
{
    nn_csv_options opt = nn_csv_default();
    opt.limits.max_bytes = 16u << 20;
    opt.limits.max_samples = 100000;
    opt.limits.max_features = 4096;
    if (opt_byte & 0x80) opt.label_name = "y";
    else opt.label_index = (opt_byte & 15) - 8;
    memset(r, 0, sizeof *r);
    nn_csv_parser *p = nn_csv_parser_new(&opt, &r->err);
    if (!p) {
        r->rc = r->err.code;
        return;
    }
    r->rc = fuzz_feed_split(p, csv_feed, s, len, seed, 1u, 17, &r->err);
    if (r->rc == NN_OK) r->rc = nn_csv_parser_finish(p, &r->ds, &r->err);
    nn_csv_parser_free(p);
}

int fuzz_csv(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    csv_result a, b;
    int bad = 0;
    csv_run(data + 2, size - 2, data[0], 0, &a);
    csv_run(data + 2, size - 2, data[0], (unsigned)data[1] + 1, &b);
    if (a.rc != b.rc || strcmp(a.err.message, b.err.message) != 0) {
        fprintf(stderr, "fuzz_csv: split changes the verdict: %d '%s' vs %d '%s'\n", a.rc,
                a.err.message, b.rc, b.err.message);
        bad = 1;
    } else if (a.rc == NN_OK) {
        if (a.ds.n == 0 || a.ds.x_width < 1 || a.ds.y_width != 1 || a.ds.n != b.ds.n ||
            a.ds.x_width != b.ds.x_width ||
            memcmp(a.ds.x, b.ds.x, a.ds.n * (size_t)a.ds.x_width * sizeof(float)) != 0 ||
            memcmp(a.ds.y, b.ds.y, a.ds.n * sizeof(float)) != 0) {
            fprintf(stderr, "fuzz_csv: split changes the dataset (n %zu/%zu)\n", a.ds.n, b.ds.n);
            bad = 1;
        }
    } else if (a.rc == NN_OK || a.err.message[0] == 0) {
        fprintf(stderr, "fuzz_csv: an error without a message\n");
        bad = 1;
    }
    nn_dataset_free(&a.ds);
    nn_dataset_free(&b.ds);
    return bad ? -1 : 0;
}

FUZZ_ENTRY(fuzz_csv)

#endif
