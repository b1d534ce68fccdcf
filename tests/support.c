#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "support.h"

void support_assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                          const char *label, const char *file, int line)
{
    size_t worst = 0, n_bad = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        double excess = isnan(diff) ? INFINITY : diff - (atol + rtol * fabs((double)b[i]));
        if (excess > 0) n_bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (n_bad) {
        cm_print_error("%s: %zu of %zu values differ; worst at [%zu]: %.9g vs %.9g (diff %.3g)\n",
                       label, n_bad, n, worst, (double)a[worst], (double)b[worst],
                       fabs((double)a[worst] - (double)b[worst]));
        _fail(file, line);
    }
}

const char *fixture_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("FITD_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) { free(buf); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}
