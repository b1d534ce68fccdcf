/*
 * test_crash.c — the short crash test in `make test`: runs tests/crash/crash_test.sh
 * (8 kills -9 at random moments while datasets upload and jobs train; after each,
 * everything acknowledged must be in the database, intact; at the end every job
 * must succeed with the weights of an uninterrupted run) against FITD_BIN, and
 * fails if the script reports any failure. The long version is `make crash-test`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "support.h"

static void test_crash_short(void **state)
{
    (void)state;
    char cmd[1024];
    int sanitized = getenv("FITD_TEST_SANITIZED") != NULL;
    snprintf(cmd, sizeof cmd,
             "FITD_BIN='%s' bash tests/crash/crash_test.sh --kills 8 --max-seconds %d --jobs %d"
             " 2>&1",
             it_fitd_bin(), sanitized ? 170 : 60, sanitized ? 8 : 16);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[2048];
    int summary = 0;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stderr);
        if (strncmp(line, "crash_test: kills=", 18) == 0) summary = 1;
    }
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) skip(); /* a needed tool (curl, sqlite3) is missing */
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(summary);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
