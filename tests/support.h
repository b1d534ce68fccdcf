/*
 * support.h — helpers shared by the unit and integration tests (cmocka).
 *
 * Include after <stdarg.h>, <stddef.h>, <setjmp.h> and <cmocka.h>.
 */
#ifndef FITD_TEST_SUPPORT_H
#define FITD_TEST_SUPPORT_H

#include <stddef.h>

/* Fail the test unless |a[i] - b[i]| <= atol + rtol * |b[i]| for every i; the
 * message names `label`, the worst index and its difference. */
#define assert_close(a, b, n, atol, rtol, label) \
    support_assert_close((a), (b), (n), (atol), (rtol), (label), __FILE__, __LINE__)
void support_assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                          const char *label, const char *file, int line);

/* Path of a file under tests/fixtures/ (static buffer, valid until the next call).
 * Tests run from the repository root; FITD_FIXTURES overrides the folder. */
const char *fixture_path(const char *name);

/* Read a whole file into a malloc'ed, NUL-terminated buffer; NULL on failure. */
char *read_file(const char *path, size_t *len);

#endif
