/*
 * test_readme.c — the README's quickstart, run as written: the shell block after
 * the "quickstart" marker is extracted, its FITD= line pointed at a real fitd on
 * an ephemeral port, and run with bash from the repository root. The docs cannot
 * drift from the service without this test failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

static void test_quickstart_runs_as_written(void **state)
{
    (void)state;
    it_server s = {0};
    assert_int_equal(it_start(&s, NULL), 0);
    char *out = it_run_readme_block(&s, "<!-- quickstart");
    /* What a reader is told to expect. */
    const char *expect[] = {"\"n_samples\":1797", "\"status\":\"succeeded\"", "\"val_accuracy\"",
                            "epoch,loss,accuracy,val_loss,val_accuracy,regularization_loss", "\"dense/kernel\"",
                            "\"classes\":[0]"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(out, expect[i])) fail_msg("quickstart output lacks %s:\n%s", expect[i], out);
    char wpath[700];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", s.dir);
    size_t wlen = 0;
    char *w = read_file(wpath, &wlen);
    assert_non_null(w);
    assert_true(wlen > 64 * 64 * 4);
    free(w);
    free(out);
    assert_int_equal(it_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quickstart_runs_as_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
